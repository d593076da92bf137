"""Translation between two sections, estimated from their label images.

Serial sections drift or jump (a section re-mounted, a stage hiccup). The tracker only needs a
whole-pixel translation per section pair, and the label images already carry the structure that
matters: their object boundaries. Phase correlation of the two boundary maps (normalised cross
power spectrum, numpy FFT) gives the shift; the tracker keeps it only when it really increases
the overlap between the sections' objects.

Two estimators give candidates: phase correlation (whitened spectrum: a sharp peak for a pure
translation of the same picture) and plain cross-correlation of Gaussian-smoothed boundary maps
(a broad peak that survives the non-rigid changes between real sections, where the whitened
peak drowns in the lattice of membranes). The tracker scores both and keeps the better one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["boundary_map", "phase_correlation_shift", "correlation_shift"]


def boundary_map(dense: np.ndarray) -> np.ndarray:
    """Float image that is 1 on object boundaries (4-neighbour label changes), else 0."""
    edge = np.zeros(dense.shape, dtype=bool)
    dy = dense[1:, :] != dense[:-1, :]
    dx = dense[:, 1:] != dense[:, :-1]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    return edge.astype(np.float32)


def _peak(corr: np.ndarray, max_shift: int | None) -> tuple[int, int]:
    """Whole-pixel shift of the largest value of a circular correlation within ``max_shift``."""
    ny, nx = corr.shape
    if max_shift is None:
        max_shift = min(ny, nx) // 4
    # wrap-around indices are negative shifts
    sy = np.fft.fftfreq(ny, 1.0 / ny)
    sx = np.fft.fftfreq(nx, 1.0 / nx)
    corr = corr.copy()
    corr[np.abs(sy) > max_shift, :] = -np.inf
    corr[:, np.abs(sx) > max_shift] = -np.inf
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return int(sy[iy]), int(sx[ix])


def correlation_shift(
    reference: np.ndarray, moving: np.ndarray, max_shift: int | None = None, sigma: float = 2.0
) -> tuple[int, int]:
    """Whole-pixel ``(dy, dx)`` maximising the cross-correlation of the smoothed images.

    Parameters
    ----------
    reference, moving : numpy.ndarray
        (Y, X) images of the same shape (e.g. :func:`boundary_map` of two sections).
    max_shift : int, optional
        Largest ``|dy|`` / ``|dx|`` considered (default: a quarter of the smaller side).
    sigma : float
        Gaussian smoothing (pixels) applied to both images first: it turns thin boundaries
        into bands, so boundaries that moved by a few pixels between sections still agree.

    Returns
    -------
    tuple of int
        ``(dy, dx)``; ``(0, 0)`` when either image is constant.
    """
    from scipy import ndimage

    ref = ndimage.gaussian_filter(reference.astype(np.float32), sigma)
    mov = ndimage.gaussian_filter(moving.astype(np.float32), sigma)
    ref -= ref.mean()
    mov -= mov.mean()
    if not ref.any() or not mov.any():
        return 0, 0
    corr = np.fft.irfft2(np.fft.rfft2(ref) * np.conj(np.fft.rfft2(mov)), s=ref.shape)
    return _peak(corr, max_shift)


def phase_correlation_shift(
    reference: np.ndarray, moving: np.ndarray, max_shift: int | None = None
) -> tuple[int, int]:
    """Whole-pixel ``(dy, dx)`` such that ``moving`` shifted by it best matches ``reference``.

    Parameters
    ----------
    reference, moving : numpy.ndarray
        (Y, X) images of the same shape (e.g. :func:`boundary_map` of two sections).
    max_shift : int, optional
        Largest ``|dy|`` / ``|dx|`` considered (default: a quarter of the smaller side).

    Returns
    -------
    tuple of int
        ``(dy, dx)``; ``(0, 0)`` when either image is constant.
    """
    ref = reference - reference.mean()
    mov = moving - moving.mean()
    if not ref.any() or not mov.any():
        return 0, 0
    cross = np.fft.rfft2(ref) * np.conj(np.fft.rfft2(mov))
    cross /= np.maximum(np.abs(cross), 1e-12)
    return _peak(np.fft.irfft2(cross, s=ref.shape), max_shift)
