"""Compute-device selection and mixed precision (CUDA > MPS > CPU).

Every decision is a pure function of what torch reports, so the logic is tested on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["pick_device", "autocast", "autocast_dtype"]


def pick_device(preference: str | None = None) -> str:
    """Return the device to run models on.

    Parameters
    ----------
    preference : str or None
        ``None`` or ``"auto"`` picks ``cuda`` > ``mps`` > ``cpu``. Otherwise a torch device string
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) that is validated.

    Returns
    -------
    str
        A torch device string.

    Raises
    ------
    dendrosam.errors.ConfigError
        If the requested device is unknown or not available on this machine.
    """
    import torch

    from dendrosam.errors import ConfigError

    if preference is None or preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    try:
        dev = torch.device(preference)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"--device: {preference!r} is not a torch device ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device: {preference!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device: {preference!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"--device: {preference!r} requested but MPS is not available")
    elif dev.type != "cpu":
        raise ConfigError(f"--device: {preference!r} is not supported (use cpu, cuda[:N] or mps)")
    return str(dev)


def autocast_dtype(device: str) -> Any:
    """The reduced-precision dtype for ``device``: bf16 (fp16 on old GPUs) on CUDA, else ``None``."""
    import torch

    if not str(device).startswith("cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: str, enabled: bool = True) -> Iterator[None]:
    """Inference context: ``torch.inference_mode`` plus autocast on CUDA only.

    On the CPU and MPS the models run in float32 (CPU autocast is slower for these networks).
    """
    import torch

    dtype = autocast_dtype(device) if enabled else None
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type="cuda", dtype=dtype):
                yield
