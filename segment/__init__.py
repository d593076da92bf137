"""dendrosam.segment: per-section prompts (YOLO or ground truth) -> Segment Anything masks.

Names are imported lazily (module ``__getattr__``) so ``import dendrosam.segment`` stays fast
and does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "SamModel": "sam",
    "load_sam": "sam",
    "save_sam_checkpoint": "sam",
    "infer_arch": "sam",
    "SamArch": "registry",
    "SAM_ARCHS": "registry",
    "build_sam": "registry",
    "get_arch": "registry",
    "pick_device": "device",
    "PromptedMasks": "predict",
    "predict_masks": "predict",
    "masks_to_labels": "masks",
    "GTPrompts": "prompts",
    "prompts_from_gt": "prompts",
    "Detector": "detector",
    "Boxes": "detector",
    "load_detector": "detector",
    "detect": "detector",
    "SegmentConfig": "api",
    "SegmentationResult": "api",
    "segment_slices": "api",
    "normalize_section": "preprocess",
    "to_rgb": "preprocess",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'dendrosam.segment' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"dendrosam.segment.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
