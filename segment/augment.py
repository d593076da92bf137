"""Test-time augmentation for the zoom path: the eight symmetries of a square crop.

A square crop of side ``S`` and its prompt box can be flipped and rotated by multiples of 90°
without resampling, so a prompt can be answered in several orientations and the answers brought
back and averaged (:func:`dendrosam.segment.predict.predict_masks` with ``tta > 1``). EM
sections have no preferred orientation, and the shipped models are trained with flips and
rotations, so every orientation is a valid view of the same profile.

A symmetry is ``(flip, k)``: mirror the columns when ``flip``, then rotate by ``k`` quarter turns
(:func:`torch.rot90` over the last two axes). Continuous coordinates ``(x, y)`` in ``[0, S]``
follow pixel centres exactly: mirroring maps ``x -> S - x``, one quarter turn maps
``(x, y) -> (y, S - x)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SYMMETRIES", "TTA_VIEWS", "symmetries", "transform_image", "invert_image", "transform_points",
           "transform_boxes"]

#: All eight symmetries of the square, identity first; the first ``n`` are the views of ``tta=n``
#: (see :func:`symmetries`).
SYMMETRIES: tuple[tuple[bool, int], ...] = (
    (False, 0), (True, 0), (False, 2), (True, 2), (False, 1), (True, 1), (False, 3), (True, 3),
)
#: The numbers of views ``tta`` may take.
TTA_VIEWS: tuple[int, ...] = (1, 2, 4, 8)


def symmetries(n: int) -> tuple[tuple[bool, int], ...]:
    """The first ``n`` of :data:`SYMMETRIES` (1, 2, 4 or 8 views).

    With 2 the views are the identity and the column mirror; with 4 also the half turn and the
    row mirror (the half turn of the column mirror), all of which keep a crop's axes; 8 adds the
    four with quarter turns.
    """
    if n not in TTA_VIEWS:
        from dendrosam.errors import ConfigError

        raise ConfigError(f"tta must be 1, 2, 4 or 8 views, got {n!r}")
    return SYMMETRIES[:n]


def transform_image(x: Any, sym: tuple[bool, int]) -> Any:
    """Apply a symmetry to the last two (square) axes of a tensor."""
    import torch

    flip, k = sym
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1)) if k % 4 else x


def invert_image(x: Any, sym: tuple[bool, int]) -> Any:
    """Undo :func:`transform_image` (on any square resolution of the same crop)."""
    import torch

    flip, k = sym
    if k % 4:
        x = torch.rot90(x, -k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


def transform_points(xy: np.ndarray, sym: tuple[bool, int], side: float) -> np.ndarray:
    """Map continuous crop coordinates ``(..., 2)`` ``(x, y)`` through a symmetry."""
    flip, k = sym
    out = np.array(xy, np.float64, copy=True)
    if flip:
        out[..., 0] = side - out[..., 0]
    for _ in range(k % 4):
        out = np.stack([out[..., 1], side - out[..., 0]], axis=-1)
    return out


def transform_boxes(boxes: np.ndarray, sym: tuple[bool, int], side: float) -> np.ndarray:
    """Map ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` in crop coordinates through a symmetry."""
    corners = np.asarray(boxes, np.float64).reshape(-1, 2, 2)  # (N, [lo, hi], [x, y])
    mapped = transform_points(corners, sym, side)
    return np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)
