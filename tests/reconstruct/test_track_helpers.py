"""Synthetic tubes with exact answers for the tracker tests."""

from __future__ import annotations

import numpy as np


def disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean disk of radius ``r`` pixels centred at ``(cy, cx)``."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def tubes(depth: int, shape: tuple[int, int], paths: list[list[tuple[int, float, float, float]]]) -> np.ndarray:
    """3D ground truth: object ``k + 1`` is the union of disks ``(z, cy, cx, r)`` of ``paths[k]``."""
    vol = np.zeros((depth, *shape), dtype=np.uint32)
    for k, path in enumerate(paths):
        for z, cy, cx, r in path:
            vol[z][disk(shape, cy, cx, r)] = k + 1
    return vol


def scramble(vol3d: np.ndarray, seed: int = 0) -> np.ndarray:
    """Per-section labels as a 2D segmenter gives them: every 2D connected piece of every
    section gets its own id, drawn from a random permutation (ids mean nothing across z)."""
    import cc3d

    rng = np.random.default_rng(seed)
    out = np.zeros_like(vol3d)
    for z in range(vol3d.shape[0]):
        pieces = cc3d.connected_components(vol3d[z], connectivity=4)
        n = int(pieces.max())
        lut = np.r_[0, rng.permutation(np.arange(100, 100 + n))].astype(vol3d.dtype)
        out[z] = lut[pieces]
    return out


def canonical(vol: np.ndarray) -> np.ndarray:
    """Relabel ``vol`` 1..K in order of each object's first voxel (C order), 0 kept."""
    ids, first = np.unique(vol.ravel(), return_index=True)
    keep = ids != 0
    ids, first = ids[keep], first[keep]
    order = np.argsort(first)
    lut_ids = ids[order]
    out = np.zeros(vol.shape, dtype=np.uint32)
    idx = np.searchsorted(ids, vol.ravel())
    rank = np.empty(ids.size, dtype=np.uint32)
    rank[order] = np.arange(1, ids.size + 1, dtype=np.uint32)
    fg = vol.ravel() != 0
    out.ravel()[fg] = rank[idx[fg]]
    del lut_ids
    return out
