"""Tiles with a halo for the classic SAM path on large sections (SBF-SEM slices of 8k x 8k).

A section is covered by overlapping square windows of ``tile_size`` pixels (stride
``tile_size - 2 * halo``). Each prompt is routed to the one window that contains its box grown
by ``halo`` (clipped to the section), the window whose centre is nearest the prompt's centre
when several do; its mask is decoded against that window's embedding only and pasted back, so
there are no seams: a mask never comes from two tiles. Prompts too large for any window get a
window of their own, which the encoder sees downscaled.

All boxes here are ``(x0, y0, x1, y1)`` in section pixels with exclusive ``x1``/``y1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Window", "tile_starts", "tile_windows", "route_prompts"]


@dataclass(frozen=True)
class Window:
    """A region of the section embedded once.

    Attributes
    ----------
    y0, x0, y1, x1 : int
        Region in section pixels (exclusive ends).
    long_side : int
        Length, in encoder pixels, its longer side is resized to (``<= img_size``).
    """

    y0: int
    x0: int
    y1: int
    x1: int
    long_side: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in section pixels."""
        return self.y1 - self.y0, self.x1 - self.x0


def tile_starts(length: int, tile: int, halo: int) -> np.ndarray:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with overlap ``2 * halo``.

    >>> tile_starts(1000, 512, 64).tolist()
    [0, 384, 488]
    """
    if tile >= length:
        return np.zeros(1, np.int64)
    stride = max(tile - 2 * halo, 1)
    starts = np.arange(0, length - tile + stride, stride, dtype=np.int64)
    return np.unique(np.minimum(starts, length - tile))


def tile_windows(shape: tuple[int, int], tile_size: int, halo: int, img_size: int) -> list[Window]:
    """The regular grid of windows over a section of ``shape`` (row-major order).

    Every full window is resized by the same factor ``img_size / tile_size``, so all tiles see
    the section at one scale; a section smaller than a tile is one window.
    """
    ny, nx = int(shape[0]), int(shape[1])
    scale = img_size / float(tile_size)
    out = []
    for y0 in tile_starts(ny, tile_size, halo):
        for x0 in tile_starts(nx, tile_size, halo):
            y1, x1 = min(int(y0) + tile_size, ny), min(int(x0) + tile_size, nx)
            long_side = min(img_size, int(max(y1 - y0, x1 - x0) * scale + 0.5))
            out.append(Window(int(y0), int(x0), y1, x1, max(long_side, 1)))
    return out


def route_prompts(
    extents: np.ndarray, windows: list[Window], shape: tuple[int, int], halo: int, img_size: int
) -> tuple[list[Window], np.ndarray]:
    """Assign each prompt to one window (adding own windows for oversized prompts).

    Parameters
    ----------
    extents : ndarray, shape (N, 4)
        ``(x0, y0, x1, y1)`` extent of each prompt (box, or bounding box of its points).
    windows : list of Window
        The regular grid from :func:`tile_windows`.
    shape : (int, int)
        Section shape.
    halo : int
        Context required around each prompt.
    img_size : int
        Encoder input side (for the extra windows).

    Returns
    -------
    windows : list of Window
        The grid plus one extra window per oversized prompt.
    assignment : ndarray of int, shape (N,)
        Index into ``windows`` for each prompt.
    """
    ext = np.asarray(extents, np.float64).reshape(-1, 4)
    ny, nx = shape
    need = np.stack(
        [
            np.clip(np.floor(ext[:, 0]) - halo, 0, nx),
            np.clip(np.floor(ext[:, 1]) - halo, 0, ny),
            np.clip(np.ceil(ext[:, 2]) + halo, 0, nx),
            np.clip(np.ceil(ext[:, 3]) + halo, 0, ny),
        ],
        axis=1,
    )
    win = np.array([[w.x0, w.y0, w.x1, w.y1] for w in windows], np.float64).reshape(-1, 4)
    inside = (
        (win[None, :, 0] <= need[:, None, 0])
        & (win[None, :, 1] <= need[:, None, 1])
        & (win[None, :, 2] >= need[:, None, 2])
        & (win[None, :, 3] >= need[:, None, 3])
    )
    centre = (ext[:, :2] + ext[:, 2:]) / 2
    wcentre = (win[:, :2] + win[:, 2:]) / 2
    dist = ((centre[:, None, :] - wcentre[None, :, :]) ** 2).sum(-1)
    dist = np.where(inside, dist, np.inf)
    assignment = np.argmin(dist, axis=1) if len(windows) else np.zeros(len(ext), np.int64)
    windows = list(windows)
    for i in np.flatnonzero(~inside.any(axis=1)):
        x0, y0, x1, y1 = need[i]
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        wx0 = int(np.clip(np.floor(cx - side / 2), 0, max(nx - side, 0)))
        wy0 = int(np.clip(np.floor(cy - side / 2), 0, max(ny - side, 0)))
        wx1, wy1 = int(min(wx0 + side, nx)), int(min(wy0 + side, ny))
        windows.append(Window(wy0, wx0, wy1, wx1, img_size))
        assignment[i] = len(windows) - 1
    return windows, assignment.astype(np.int64)
