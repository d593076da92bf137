"""Compute-device selection and mixed precision (CUDA > MPS > CPU).

Every decision is a pure function of what torch reports, so the logic is tested on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["PRECISIONS", "pick_device", "autocast", "autocast_dtype"]


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


#: Accepted values of the ``precision`` option.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def autocast_dtype(device: str, precision: str = "auto") -> Any:
    """The reduced-precision dtype the models run in on ``device``, or ``None`` for float32.

    Parameters
    ----------
    device : str
        Torch device string.
    precision : {"auto", "float32", "bfloat16", "float16"}
        ``"auto"``: bf16 (fp16 on GPUs without bf16) on CUDA, float32 elsewhere. ``"bfloat16"``
        on the CPU is 2-3x faster for SAM where the CPU has native bf16 (AVX512-BF16 / AMX)
        and changes masks only at their edges; ``"float16"`` is CUDA only.

    Returns
    -------
    torch.dtype or None
    """
    import torch

    from dendrosam.errors import ConfigError

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    cuda = str(device).startswith("cuda")
    if precision == "float32" or (precision == "auto" and not cuda):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "float16" and not cuda:
        raise ConfigError(f"--precision float16 needs a CUDA device, not {device!r}")
    if str(device).startswith("mps"):
        raise ConfigError("--precision bfloat16 is not supported on MPS; use float32")
    return getattr(torch, precision)


@contextlib.contextmanager
def autocast(device: str, enabled: bool = True, precision: str = "auto") -> Iterator[None]:
    """Inference context: ``torch.inference_mode`` plus autocast per :func:`autocast_dtype`."""
    import torch

    dtype = autocast_dtype(device, precision) if enabled else None
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=str(device).split(":")[0], dtype=dtype):
                yield
