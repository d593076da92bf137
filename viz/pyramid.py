"""Multiscale pyramids: per-level downsampling factors, block means for images, modes for labels.

The factor rule is the usual one for anisotropic EM: halve x and y while they are finer than
z, then halve all axes together once the voxels are (nearly) isotropic. Arrays are (Z, Y, X).
"""

from __future__ import annotations

import numpy as np

__all__ = ["pyramid_factors", "downsample_mean", "downsample_mode", "iter_pyramid_blocks"]


def pyramid_factors(
    shape: tuple[int, int, int],
    voxel_size: tuple[float, float, float],
    *,
    min_size: int = 32,
    max_levels: int = 8,
) -> list[tuple[int, int, int]]:
    """Per-level downsampling factors (z, y, x) relative to the previous level.

    Parameters
    ----------
    shape : tuple of int
        (Z, Y, X) shape of level 0.
    voxel_size : tuple of float
        (z, y, x) voxel size in nm of level 0.
    min_size : int
        Stop once the next level would have y or x smaller than this.
    max_levels : int
        At most this many levels besides level 0.

    Returns
    -------
    list of tuple of int
        One (fz, fy, fx) per extra level; empty if the volume is already small.

    Examples
    --------
    >>> pyramid_factors((64, 512, 512), (40.0, 10.0, 10.0), min_size=64)
    [(1, 2, 2), (1, 2, 2), (2, 2, 2)]
    """
    res = np.asarray(voxel_size, dtype=float)
    size = np.asarray(shape, dtype=float)
    out: list[tuple[int, int, int]] = []
    while len(out) < max_levels:
        coarsest = res.max()
        factor = np.where(res * 2 <= coarsest * 1.5, 2, 1)  # halve every axis finer than the coarsest
        if (factor == 1).all():  # isotropic: halve everything
            factor = np.full(3, 2)
        new = np.ceil(size / factor)
        if new[1] < min_size or new[2] < min_size:
            break
        if factor[0] == 2 and new[0] < 1:
            factor[0] = 1
            new[0] = size[0]
        out.append(tuple(int(f) for f in factor))
        res, size = res * factor, new
    return out


def _blocks(arr: np.ndarray, factor: tuple[int, int, int]) -> np.ndarray:
    """Pad with edge values to a multiple of ``factor`` and view as (z, y, x, fz*fy*fx) blocks."""
    fz, fy, fx = factor
    pad = [(0, (-n) % f) for n, f in zip(arr.shape, factor)]
    if any(p for _, p in pad):
        arr = np.pad(arr, pad, mode="edge")
    z, y, x = (n // f for n, f in zip(arr.shape, factor))
    b = arr.reshape(z, fz, y, fy, x, fx).transpose(0, 2, 4, 1, 3, 5)
    return b.reshape(z, y, x, fz * fy * fx)


def downsample_mean(img: np.ndarray, factor: tuple[int, int, int]) -> np.ndarray:
    """Block mean of an image (edges padded by replication), rounded back to the input dtype.

    Parameters
    ----------
    img : numpy.ndarray
        (Z, Y, X) image.
    factor : tuple of int
        (fz, fy, fx) downsampling factors.

    Returns
    -------
    numpy.ndarray
        ``ceil(shape / factor)`` image of the same dtype.
    """
    img = np.asarray(img)
    mean = _blocks(img, factor).mean(axis=-1, dtype=np.float64)
    if np.issubdtype(img.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(img.dtype)


def downsample_mode(labels: np.ndarray, factor: tuple[int, int, int]) -> np.ndarray:
    """Most frequent label per block (edges padded by replication).

    Ties go to the larger id, so background (0) never wins a tie against an object and thin
    objects survive downsampling as long as they own as many voxels of a block as any other.

    Parameters
    ----------
    labels : numpy.ndarray
        (Z, Y, X) integer labels.
    factor : tuple of int
        (fz, fy, fx) downsampling factors.

    Returns
    -------
    numpy.ndarray
        ``ceil(shape / factor)`` labels of the same dtype.
    """
    labels = np.asarray(labels)
    if tuple(factor) == (1, 1, 1):
        return labels.copy()
    b = np.sort(_blocks(labels, factor), axis=-1)[..., ::-1]  # descending: larger ids first
    counts = (b[..., :, None] == b[..., None, :]).sum(axis=-1, dtype=np.uint8)
    pick = counts.argmax(axis=-1)  # first maximum = the largest id among the most frequent
    return np.take_along_axis(b, pick[..., None], axis=-1)[..., 0]


def iter_pyramid_blocks(data, factors, chunk_z: int, dtype, seg: bool):
    """Stream a volume through its pyramid in z-blocks aligned to chunks at every level.

    Yields ``(level, z_start, block)`` with ``block`` the (z, y, x) data of that level starting at
    section ``z_start``; level 0 is ``data`` itself, level m+1 is level m downsampled by
    ``factors[m]`` (mode for segmentations, mean for images). Only one z-block of level 0 is in
    memory at a time.
    """
    z_per_level = np.cumprod([1] + [f[0] for f in factors])
    block = int(chunk_z * z_per_level[-1])
    down = downsample_mode if seg else downsample_mean
    for z0 in range(0, data.shape[0], block):
        arr = np.asarray(data[z0 : min(z0 + block, data.shape[0])]).astype(dtype, copy=False)
        for m in range(len(factors) + 1):
            if m:
                arr = down(arr, factors[m - 1])
            yield m, z0 // int(z_per_level[m]), arr
