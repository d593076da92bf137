"""Loading and saving SAM checkpoints: Meta ``.pth``, micro-sam/DendriteSAM exports, our format.

Three kinds of file load into the same ``segment_anything.modeling.Sam`` classes:

1. **Meta SAM state dicts** (``sam_vit_b_01ec64.pth`` ...): a flat ``{name: tensor}`` dict with
   keys ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``. The architecture is
   inferred from the tensor shapes when ``model_type`` is not given.
2. **micro-sam / DendriteSAM exports** (``micro_sam.util.export_custom_sam_model`` and torch_em
   training checkpoints): a dict with ``model_state`` (keys possibly prefixed ``sam.``), maybe
   ``model_type`` / ``config`` / ``init``, and an optional ``decoder_state`` (micro-sam's
   instance-segmentation decoder), which is kept in :attr:`SamModel.extra`.
3. **dendrosam checkpoints** written by :func:`save_sam_checkpoint`::

       {"format": "dendrosam-sam", "format_version": 1, "arch": SamArch.to_dict(),
        "model_state": state_dict, "card": {...json-able model card...}}

   They carry their architecture, so they load without ``model_type``.

Files are always read with ``torch.load(..., weights_only=True)``: a pickle that would run code
is refused, never executed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dendrosam.errors import CheckpointError
from dendrosam.segment.registry import SAM_ARCHS, SamArch, build_sam, get_arch

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DEFAULT_SAM_PATH",
    "PIECES_SAM_PATH",
    "PER_ID_SAM_PATH",
    "SHIPPED_SAMS",
    "SamModel",
    "load_sam",
    "save_sam_checkpoint",
    "infer_arch",
]

FORMAT_NAME = "dendrosam-sam"
FORMAT_VERSION = 1
#: The shipped SAM trained from scratch on one object per GT id (``train_default_models.py --only sam``);
#: the base of the per-profile fine-tune, and the default until that replaced it (README).
PER_ID_SAM_PATH = Path(__file__).resolve().parent / "models" / "dendrosam_sam_per_id.pt"
#: Its fine-tune on one object per 4-connected profile (``--only sam-pieces``): the shipped default.
PIECES_SAM_PATH = PER_ID_SAM_PATH.with_name("dendrosam_sam_pieces.pt")
DEFAULT_SAM_PATH = PIECES_SAM_PATH
#: Names that ``load_sam`` (and ``segment.sam`` / ``--sam``) accept for the shipped checkpoints.
SHIPPED_SAMS = {"default": DEFAULT_SAM_PATH, "pieces": PIECES_SAM_PATH, "per-id": PER_ID_SAM_PATH}
_SAM_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


@dataclass(frozen=True)
class SamModel:
    """A loaded SAM ready for inference.

    Attributes
    ----------
    model : segment_anything.modeling.Sam
        The network, in eval mode, on :attr:`device`.
    arch : SamArch
        Its architecture (decides the classic or the zoom inference path).
    card : dict
        Model card (training data, command, metrics, date); ``{}`` when the file has none.
    device : str
        Torch device string.
    source : str
        Where it came from: the file path, or ``"<memory>"``.
    extra : dict
        Anything else the file held that is worth keeping, e.g. micro-sam's ``decoder_state``.
    """

    model: Any
    arch: SamArch
    card: dict = field(default_factory=dict)
    device: str = "cpu"
    source: str = "<memory>"
    extra: dict = field(default_factory=dict)


def _is_ultralytics_file(path: Path) -> bool:
    """True when a torch zip archive pickles ultralytics classes (a YOLO ``.pt``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
            return pkl is not None and b"ultralytics" in zf.read(pkl)
    except (zipfile.BadZipFile, OSError):
        return False


def _read(path: Path) -> Any:
    """``torch.load`` a file safely, turning every failure into one clear CheckpointError."""
    import torch

    if not path.exists():
        raise CheckpointError(f"SAM checkpoint {path}: file not found")
    if path.is_dir():
        raise CheckpointError(f"SAM checkpoint {path}: is a folder, expected a .pt/.pth file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _is_ultralytics_file(path):
            raise CheckpointError(
                f"SAM checkpoint {path}: this is an ultralytics/YOLO detector file, not a SAM "
                "model (pass it with --detector)"
            ) from None
        if "GLOBAL" in str(exc) or "global" in str(exc).split("WeightsUnpickler error:")[-1]:
            raise CheckpointError(
                f"SAM checkpoint {path}: refused: the file contains Python objects that would "
                "run code on load (only plain tensors/dicts are accepted)"
            ) from None
        raise CheckpointError(
            f"SAM checkpoint {path}: not a readable torch checkpoint (unpickling failed)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - whatever torch raises on a non-checkpoint file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"SAM checkpoint {path}: not a readable torch checkpoint ({msg})"
        ) from None


def _strip(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def _unpack(obj: Any, path: Path) -> tuple[dict, str | None, dict, dict, str]:
    """Split a loaded object into (state_dict, model_type, card, extra, kind)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"SAM checkpoint {path}: expected a dict of tensors, found {type(obj).__name__}"
        )
    if obj.get("format") == FORMAT_NAME:
        version = obj.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"SAM checkpoint {path}: dendrosam format version {version!r} is not supported "
                f"(this version reads {FORMAT_VERSION})"
            )
        try:
            arch = SamArch.from_dict(obj["arch"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"SAM checkpoint {path}: invalid 'arch' entry ({exc})") from None
        return dict(obj["model_state"]), arch, dict(obj.get("card") or {}), {}, "dendrosam"
    if "train_args" in obj or ("model" in obj and "ema" in obj):
        raise CheckpointError(
            f"SAM checkpoint {path}: this is an ultralytics/YOLO detector file, not a SAM model"
        )
    if "model_state" in obj:  # micro-sam export / torch_em trainer checkpoint
        state = _strip(obj["model_state"], "sam.")
        model_type = obj.get("model_type")
        config = obj.get("config")
        if model_type is None and isinstance(config, Mapping):
            model_type = config.get("model_type")
        init = obj.get("init")
        if model_type is None and isinstance(init, Mapping):
            model_type = (init.get("model_kwargs") or {}).get("model_type")
        extra = {k: obj[k] for k in ("decoder_state",) if k in obj}
        return dict(state), model_type, {}, extra, "micro-sam"
    for key in ("state_dict", "model"):  # common wrappers of a plain state dict
        if isinstance(obj.get(key), Mapping):
            return _strip(obj[key], "sam."), None, {}, {}, "state-dict"
    return _strip(obj, "sam."), None, {}, {}, "meta"


def _count(state: Mapping[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return max(idx) + 1 if idx else 0


def _shape_signature(state: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture fields that can be read off tensor shapes (those present)."""
    sig: dict[str, Any] = {}
    w = state.get("image_encoder.patch_embed.proj.weight")
    if w is not None:
        sig["embed_dim"] = int(w.shape[0])
        sig["patch_size"] = int(w.shape[-1])
    pos = state.get("image_encoder.pos_embed")
    if pos is not None and "patch_size" in sig:
        sig["img_size"] = int(pos.shape[1]) * sig["patch_size"]
    depth = _count(state, r"image_encoder\.blocks\.(\d+)\.")
    if depth:
        sig["depth"] = depth
    neck = state.get("image_encoder.neck.0.weight")
    if neck is not None:
        sig["prompt_embed_dim"] = int(neck.shape[0])
    dec_depth = _count(state, r"mask_decoder\.transformer\.layers\.(\d+)\.")
    if dec_depth:
        sig["decoder_depth"] = dec_depth
    lin1 = state.get("mask_decoder.transformer.layers.0.mlp.lin1.weight")
    if lin1 is not None:
        sig["decoder_mlp_dim"] = int(lin1.shape[0])
    rel = state.get("image_encoder.blocks.0.attn.rel_pos_h")
    if rel is not None and "embed_dim" in sig:
        sig["num_heads"] = sig["embed_dim"] // int(rel.shape[1])
    if "img_size" in sig and depth:
        grid = sig["img_size"] // sig["patch_size"]
        sizes = [state.get(f"image_encoder.blocks.{i}.attn.rel_pos_h") for i in range(depth)]
        if all(s is not None for s in sizes):
            spans = [(int(s.shape[0]) + 1) // 2 for s in sizes]
            windows = {s for s in spans if s != grid}
            sig["global_attn_indexes"] = tuple(i for i, s in enumerate(spans) if s == grid)
            if len(windows) == 1:
                sig["window_size"] = windows.pop()
    return sig


def _describe(sig: Mapping[str, Any]) -> str:
    keys = ("embed_dim", "depth", "img_size", "patch_size", "prompt_embed_dim")
    return ", ".join(f"{k} {sig[k]}" for k in keys if k in sig)


def _matches(arch: SamArch, sig: Mapping[str, Any]) -> bool:
    return all(getattr(arch, k) == v for k, v in sig.items())


def infer_arch(state: Mapping[str, Any]) -> SamArch:
    """Infer a registered architecture from a SAM state dict's tensor shapes.

    Parameters
    ----------
    state : mapping of str to tensor
        A SAM state dict (prefix ``sam.`` already stripped).

    Returns
    -------
    SamArch
        The unique registry entry whose shapes match.

    Raises
    ------
    CheckpointError
        When no registered architecture (or more than one) matches.
    """
    sig = _shape_signature(state)
    if "embed_dim" not in sig:
        raise CheckpointError(
            "not a SAM state dict: no 'image_encoder.patch_embed.proj.weight' tensor"
        )
    found = [a for a in SAM_ARCHS.values() if _matches(a, sig)]
    if len(found) == 1:
        return found[0]
    what = "several" if found else "no"
    raise CheckpointError(
        f"cannot infer the SAM architecture ({_describe(sig)}): {what} registered type matches; "
        "pass model_type (--sam-type)"
    )


def _resolve_arch(state: dict, model_type: Any, path: Path) -> SamArch:
    sig = _shape_signature(state)
    if "embed_dim" not in sig:
        keys = ", ".join(sorted(state)[:3]) or "none"
        raise CheckpointError(
            f"SAM checkpoint {path}: no SAM image encoder found (expected keys "
            f"'image_encoder.*', 'prompt_encoder.*', 'mask_decoder.*'; first keys: {keys})"
        )
    if model_type is None:
        try:
            return infer_arch(state)
        except CheckpointError as exc:
            raise CheckpointError(f"SAM checkpoint {path}: {exc}") from None
    arch = get_arch(model_type)
    if not _matches(arch, sig):
        try:
            other = f"a {infer_arch(state).name} model"
        except CheckpointError:
            other = "another architecture"
        diff = ", ".join(
            f"{k} {v} (expected {getattr(arch, k)})" for k, v in sig.items() if getattr(arch, k) != v
        )
        raise CheckpointError(
            f"SAM checkpoint {path}: architecture mismatch: model_type {arch.name!r} was given but "
            f"the weights are {other} ({diff})"
        )
    return arch


def load_sam(
    checkpoint: str | os.PathLike | None = None,
    model_type: str | SamArch | None = None,
    device: str | None = None,
) -> SamModel:
    """Load a SAM checkpoint of any supported kind (see the module docstring).

    Parameters
    ----------
    checkpoint : path or None
        ``.pt``/``.pth`` file; ``None``, ``"default"`` or ``"pieces"`` loads the shipped default model
        (the per-profile fine-tune), ``"per-id"`` its per-GT-id base (:data:`SHIPPED_SAMS`).
    model_type : str, SamArch or None
        Registry name (``vit_b``, ``vit_l``, ``vit_h``, ``tiny``, ...). ``None`` infers it from
        the file (our format stores it; Meta/micro-sam files are matched by tensor shapes).
    device : str or None
        Torch device; ``None`` picks CUDA > MPS > CPU.

    Returns
    -------
    SamModel

    Raises
    ------
    CheckpointError
        Missing/unreadable file, unsafe pickle, YOLO file, architecture mismatch, missing keys.
    """
    from dendrosam.segment.device import pick_device

    if checkpoint is None:
        if not DEFAULT_SAM_PATH.exists():
            raise CheckpointError(
                "no default SAM model is installed (expected "
                f"{DEFAULT_SAM_PATH.name} in the dendrosam.segment models folder); "
                "pass a checkpoint with --sam or train one with 'dendrosam train-sam'"
            )
        checkpoint = DEFAULT_SAM_PATH
    path = SHIPPED_SAMS.get(checkpoint, Path(checkpoint)) if isinstance(checkpoint, str) else Path(checkpoint)
    obj = _read(path)
    state, model_type_in_file, card, extra, kind = _unpack(obj, path)
    if isinstance(model_type_in_file, SamArch):  # our format: the file is authoritative
        arch = model_type_in_file
        if model_type is not None and get_arch(model_type).name != arch.name:
            raise CheckpointError(
                f"SAM checkpoint {path}: architecture mismatch: model_type "
                f"{get_arch(model_type).name!r} was given but the file holds a {arch.name!r} model"
            )
        _resolve_arch(state, arch, path)
    else:
        if model_type is None and isinstance(model_type_in_file, str):
            model_type = model_type_in_file[:5] if model_type_in_file[:5] in SAM_ARCHS else (
                model_type_in_file
            )
        if isinstance(model_type, str) and model_type.startswith("vit_t"):
            raise CheckpointError(
                f"SAM checkpoint {path}: vit_t (MobileSAM) models are not supported"
            )
        arch = _resolve_arch(state, model_type, path)
    model = build_sam(arch, seed=None)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys]
    unexpected = [k for k in result.unexpected_keys]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]!r}")
        raise CheckpointError(
            f"SAM checkpoint {path}: weights do not fit a {arch.name!r} SAM: " + "; ".join(parts)
        )
    dev = pick_device(device)
    model.to(dev).eval()
    extra = dict(extra, format=kind)
    return SamModel(model=model, arch=arch, card=card, device=dev, source=str(path), extra=extra)


def save_sam_checkpoint(
    path: str | os.PathLike, model: Any, arch: SamArch, card: Mapping[str, Any] | None = None
) -> Path:
    """Write a SAM in the dendrosam checkpoint format (atomic: temp file + rename).

    Parameters
    ----------
    path : path
        Destination ``.pt`` file.
    model : Sam or SamModel
        The network (its ``state_dict`` is saved on the CPU).
    arch : SamArch
        Its architecture (stored, so the file loads without ``model_type``).
    card : mapping or None
        JSON-able model card: data, command, metrics, date.

    Returns
    -------
    Path
        The written file.
    """
    import torch

    net = model.model if isinstance(model, SamModel) else model
    card = dict(card or {})
    try:
        json.dumps(card)
    except TypeError as exc:
        raise ValueError(f"model card must be JSON-able: {exc}") from None
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": arch.to_dict(),
        "model_state": state,
        "card": card,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path
