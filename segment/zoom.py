"""Zoom geometry: one square crop per prompt, shared by inference and training.

For architectures with ``zoom_margin`` every prompt box gets its own window: a square centred on
the box whose side is ``max(w, h) * (1 + 2 * margin)`` (at least ``min_side`` pixels). The window
is resampled to ``size x size`` pixels (bilinear, :func:`torchvision.ops.roi_align`), so each
object is seen by the network at the same scale whatever its size in the section.

Coordinates
-----------
All coordinates are *continuous* section pixels, ``(x, y)`` order as in SAM: pixel ``i`` covers
``[i, i + 1)``, so a box ``(x0, y0, x1, y1)`` with exclusive ends covers exactly its pixels.
A window ``(wx0, wy0, wx1, wy1)`` maps to crop coordinates by ``(p - w0) * size / side``; crop
pixel ``j`` covers section ``[wx0 + j * side / size, wx0 + (j + 1) * side / size)``.

Outside the section
-------------------
Windows may reach beyond the section. Crop pixels there are **0** (zero padding; the bilinear
sampler replicates the edge pixel for at most one pixel beyond the border, then returns 0), the
same in training and inference. Crops hold **raw intensities** (0-255 for the uint8 output of
:func:`dendrosam.segment.preprocess.normalize_section`); ``Sam.preprocess`` normalises them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "POINT_WINDOW",
    "zoom_windows",
    "point_windows",
    "crop_windows",
    "to_crop_coords",
    "to_section_coords",
    "paste_logits",
    "paste_masks",
]

#: Side (section pixels) of the window around a points-only prompt, before the margin.
POINT_WINDOW = 32


def zoom_windows(extents: np.ndarray, margin: float, min_side: float = 8.0) -> np.ndarray:
    """Square windows ``(x0, y0, x1, y1)`` (float64, section pixels) centred on prompt boxes.

    Parameters
    ----------
    extents : ndarray, shape (N, 4)
        Prompt boxes ``(x0, y0, x1, y1)``, exclusive ends.
    margin : float
        Fraction of the box's longer side added on each side.
    min_side : float
        Smallest window side in pixels (tiny or degenerate boxes).

    Returns
    -------
    ndarray of float64, shape (N, 4)

    Examples
    --------
    >>> zoom_windows(np.array([[10., 20., 30., 30.]]), 0.25).tolist()
    [[5.0, 10.0, 35.0, 40.0]]
    """
    ext = np.asarray(extents, np.float64).reshape(-1, 4)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    side = np.maximum((ext[:, 2:] - ext[:, :2]).max(axis=1) * (1 + 2 * margin), min_side)
    centre = (ext[:, :2] + ext[:, 2:]) / 2
    return np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], axis=1)


def point_windows(points: np.ndarray, margin: float, window: float = POINT_WINDOW) -> np.ndarray:
    """Windows for points-only prompts: the points' extent, at least ``window`` pixels, plus margin.

    Parameters
    ----------
    points : ndarray, shape (N, P, 2)
        ``(x, y)`` pixel indices (a point covers ``[x, x + 1)``).
    margin : float
        As in :func:`zoom_windows`.
    window : float
        Smallest side of the points' extent before the margin.

    Returns
    -------
    ndarray of float64, shape (N, 4)
    """
    pts = np.asarray(points, np.float64).reshape(len(points), -1, 2)
    lo, hi = pts.min(axis=1), pts.max(axis=1) + 1
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo).max(axis=1), window) / 2
    ext = np.concatenate([centre - half[:, None], centre + half[:, None]], axis=1)
    return zoom_windows(ext, margin)


def crop_windows(
    image: Any, windows: np.ndarray, size: int, index: np.ndarray | None = None
) -> Any:
    """Resample each window of an image (stack) to a ``size x size`` crop.

    Parameters
    ----------
    image : ndarray or torch.Tensor, shape (Y, X) or (B, Y, X)
        Section(s); any numeric dtype (computed in float32 on the tensor's device).
    windows : ndarray, shape (N, 4)
        ``(x0, y0, x1, y1)`` section pixels, e.g. from :func:`zoom_windows`.
    size : int
        Crop side in pixels (``arch.img_size``).
    index : ndarray of int, shape (N,), optional
        For a stack: which image each window is cut from (default all 0).

    Returns
    -------
    torch.Tensor of float32, shape (N, 1, size, size)
        Raw intensities, 0 outside the image (see the module docstring).
    """
    import torch
    from torchvision.ops import roi_align

    img = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
    img = img.to(torch.float32)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise ValueError(f"expected an image (Y, X) or stack (B, Y, X), got shape {tuple(img.shape)}")
    wins = np.asarray(windows, np.float64).reshape(-1, 4)
    idx = np.zeros(len(wins)) if index is None else np.asarray(index, np.float64).reshape(-1)
    rois = torch.as_tensor(np.concatenate([idx[:, None], wins], axis=1), dtype=torch.float32,
                           device=img.device)
    if len(wins) == 0:
        return torch.zeros((0, 1, size, size), dtype=torch.float32, device=img.device)
    return roi_align(img[:, None], rois, (size, size), 1.0, sampling_ratio=2, aligned=True)


def to_crop_coords(xy: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Section ``(x, y)`` coordinates -> crop coordinates of each prompt's window.

    Parameters
    ----------
    xy : ndarray, shape (N, ..., 2) or (N, 4)
        Points ``(x, y)`` or boxes ``(x0, y0, x1, y1)`` (last axis 4 is read as two points).
    windows : ndarray, shape (N, 4)
    size : int

    Returns
    -------
    ndarray of float64, same shape as ``xy``

    Examples
    --------
    >>> to_crop_coords(np.array([[10., 20., 30., 30.]]), np.array([[5., 10., 35., 40.]]), 120)
    array([[ 20.,  40., 100.,  80.]])
    """
    arr = np.asarray(xy, np.float64)
    wins = np.asarray(windows, np.float64).reshape(-1, 4)
    pts = arr.reshape(len(wins), -1, 2)
    scale = size / (wins[:, 2] - wins[:, 0])
    return ((pts - wins[:, None, :2]) * scale[:, None, None]).reshape(arr.shape)


def to_section_coords(xy: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Inverse of :func:`to_crop_coords`."""
    arr = np.asarray(xy, np.float64)
    wins = np.asarray(windows, np.float64).reshape(-1, 4)
    pts = arr.reshape(len(wins), -1, 2)
    scale = (wins[:, 2] - wins[:, 0]) / size
    return (pts * scale[:, None, None] + wins[:, None, :2]).reshape(arr.shape)


def paste_logits(
    logits: Any, windows: np.ndarray, image_shape: tuple[int, int]
) -> list[tuple[tuple[int, int, int, int], Any]]:
    """Resample crop logits back onto the section pixels each window covers.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, 1, h, w) or (N, h, w)
        Any resolution (SAM's low-res ``4 * grid`` masks or full crops); they span the window.
    windows : ndarray, shape (N, 4)
    image_shape : (int, int)
        Section ``(Y, X)``; windows are clipped to it.

    Returns
    -------
    list of ((y0, x0, y1, x1), torch.Tensor (y1 - y0, x1 - x0))
        Per prompt: the clipped window's pixel bounds (exclusive ends) and the logits there
        (bilinear). An empty ``(0, 0)`` tensor when the window misses the section.
    """
    import torch
    import torch.nn.functional as F

    lg = logits if logits.ndim == 4 else logits[:, None]
    ny, nx = int(image_shape[0]), int(image_shape[1])
    out = []
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(windows, np.float64).reshape(-1, 4)):
        px0, py0 = int(max(np.floor(x0), 0)), int(max(np.floor(y0), 0))
        px1, py1 = int(min(np.ceil(x1), nx)), int(min(np.ceil(y1), ny))
        if px1 <= px0 or py1 <= py0:
            out.append(((py0, px0, py0, px0), lg.new_zeros((0, 0))))
            continue
        gx = ((torch.arange(px0, px1, device=lg.device) + 0.5 - x0) / (x1 - x0)) * 2 - 1
        gy = ((torch.arange(py0, py1, device=lg.device) + 0.5 - y0) / (y1 - y0)) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        res = F.grid_sample(lg[k:k + 1].float(), grid.to(torch.float32), mode="bilinear",
                            align_corners=False)
        out.append(((py0, px0, py1, px1), res[0, 0]))
    return out


def paste_masks(
    logits: Any, windows: np.ndarray, image_shape: tuple[int, int], threshold: float = 0.0
) -> np.ndarray:
    """Dense form of :func:`paste_logits`: ``(N, Y, X)`` bool masks ``logits > threshold``."""
    ny, nx = int(image_shape[0]), int(image_shape[1])
    masks = np.zeros((len(windows), ny, nx), bool)
    for k, ((y0, x0, y1, x1), lg) in enumerate(paste_logits(logits, windows, image_shape)):
        if y1 > y0 and x1 > x0:
            masks[k, y0:y1, x0:x1] = (lg > threshold).cpu().numpy()
    return masks
