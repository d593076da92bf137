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

Across a missing section the two sections are 2 section thicknesses apart and their objects barely
nest at any shift (the tracker's consistency score is then dominated by the large objects, which
overlap themselves whatever the shift). There :func:`climb_shift` refines each candidate by
hill-climbing :func:`match_score`, the mean over objects of their best IoU, in which every object
counts once.

Cut sections are also compressed, stretched and rotated a little, which no translation undoes
(on ISBI 2012, section 9 is about 5% shorter than section 8 along y: 15-20 px at the far edge).
:func:`affine_from_objects` refines a translation into an affine transform from the objects
themselves: the centroids of confidently matched objects (mutual largest overlap, IoU >= 0.3)
are fitted by weighted least squares with outliers dropped, the moving section is warped, and
the match is repeated. It is what ``TrackConfig(align_model="affine")`` adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .kernels import best_rows
from .overlap import contingency, warp_image

if TYPE_CHECKING:
    from .overlap import SectionObjects

__all__ = ["boundary_map", "phase_correlation_shift", "correlation_shift", "affine_from_objects",
           "translation", "compose", "is_identity", "match_score", "climb_shift"]

Table = tuple[np.ndarray, np.ndarray, np.ndarray]

#: pairs matched less well than this (IoU) are no evidence of where an object went
AFFINE_MIN_IOU = 0.3
#: fewer matched pairs than this: no affine fit (a translation is kept)
AFFINE_MIN_PAIRS = 6
#: a fitted linear part farther than this from the identity (any entry of ``A - I``; 0.25 is
#: a 25% scale change or a 14 degree rotation) is not a section distortion but a bad match
AFFINE_MAX_DEFORM = 0.25


def translation(dy: float, dx: float) -> np.ndarray:
    """The (2, 3) transform ``[I | (dy, dx)]``."""
    return np.array([[1.0, 0.0, dy], [0.0, 1.0, dx]])


def compose(steps: Any) -> np.ndarray:
    """One (2, 3) transform from consecutive section steps: ``steps[k]`` takes section
    ``z0 + k + 1`` onto ``z0 + k``, the result takes the last section onto ``z0``. Whole-pixel
    translations add exactly (so they stay whole pixels)."""
    total = np.eye(3)
    for step in steps:
        total = total @ np.vstack([step, [0.0, 0.0, 1.0]])
    return total[:2]


def is_identity(transform: np.ndarray) -> bool:
    """Whether a (2, 3) transform moves nothing."""
    return bool(np.array_equal(transform, translation(0, 0)))


def _robust_affine(src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> np.ndarray | None:
    """Weighted least-squares ``dst ~ A @ src + t``; points off by more than ``max(3 x median
    residual, 2 px)`` are dropped and the fit repeated. None when too few points remain."""
    design = np.c_[src, np.ones(len(src))]
    keep = np.ones(len(src), dtype=bool)
    coef = None
    for _ in range(4):
        if keep.sum() < AFFINE_MIN_PAIRS:
            return None
        root = np.sqrt(weight[keep].astype(np.float64))[:, None]
        coef = np.linalg.lstsq(design[keep] * root, dst[keep] * root, rcond=None)[0]
        residual = np.linalg.norm(design @ coef - dst, axis=1)
        new = residual <= max(3.0 * float(np.median(residual[keep])), 2.0)
        if np.array_equal(new, keep):
            break
        keep = new
    return coef.T


def affine_from_objects(
    a: SectionObjects, b: SectionObjects, table: Table, iterations: int = 3
) -> tuple[np.ndarray, Table] | None:
    """Affine transform taking section ``b`` onto section ``a``, from matched object centroids.

    Parameters
    ----------
    a, b : SectionObjects
        The reference and the moving section.
    table : tuple of numpy.ndarray
        Their :func:`.contingency` after the best translation found so far (the starting match).
    iterations : int
        Rounds of match -> fit -> warp.

    Returns
    -------
    (transform, table) or None
        The (2, 3) transform ``[A | t]`` (a pixel ``p`` of ``b`` lies at ``A @ p + t`` in ``a``)
        and the contingency of ``a`` with ``b`` warped by it; None when fewer than
        ``AFFINE_MIN_PAIRS`` objects match or the fit is implausible (``AFFINE_MAX_DEFORM``).
    """
    transform = None
    for _ in range(iterations):
        ia, ib, count = table
        iou = count / (a.size[ia] + b.size[ib] - count)
        pick = best_rows(ia, count, ib) & best_rows(ib, count, ia) & (iou >= AFFINE_MIN_IOU)
        if pick.sum() < AFFINE_MIN_PAIRS:
            return None
        transform = _robust_affine(b.centroid[ib[pick]], a.centroid[ia[pick]], count[pick])
        if transform is None:
            return None
        table = contingency(a.dense, warp_image(b.dense, transform))
    if transform is None or np.abs(transform[:, :2] - np.eye(2)).max() > AFFINE_MAX_DEFORM:
        return None  # the first rounds may overshoot; only the result must be plausible
    return transform, table


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


def match_score(a_size: np.ndarray, b_size: np.ndarray, table: Table) -> float:
    """How well two sections' objects match: the mean over the objects of one section of their
    largest IoU with an object of the other, the larger of both directions (in [0, 1]).

    ``table`` is the :func:`.contingency` of the two sections (objects indexed from 0).
    """
    ia, ib, count = table
    if not count.size or not a_size.size or not b_size.size:
        return 0.0
    iou = count / (a_size[ia] + b_size[ib] - count)
    best_a = np.zeros(a_size.size)
    best_b = np.zeros(b_size.size)
    np.maximum.at(best_a, ia, iou)
    np.maximum.at(best_b, ib, iou)
    return float(max(best_a.mean(), best_b.mean()))


def climb_shift(
    a: SectionObjects,
    b: SectionObjects,
    start: tuple[int, int],
    max_shift: int | None = None,
    steps: tuple[int, ...] = (8, 4, 2, 1),
) -> tuple[tuple[int, int], float, Table]:
    """Hill-climb the whole-pixel translation of ``b`` onto ``a`` that maximises :func:`match_score`.

    From ``start``, move to the best of the 8 neighbours ``step`` pixels away while it scores
    higher, for each step size in turn (coarse to fine). Ties go to the larger ``(dy, dx)``, so
    the answer is deterministic.

    Parameters
    ----------
    a, b : SectionObjects
        The reference and the moving section.
    start : tuple of int
        First ``(dy, dx)`` (e.g. a correlation estimate).
    max_shift : int, optional
        Largest ``|dy|`` / ``|dx|`` visited (default: a quarter of the smaller side).
    steps : tuple of int
        Step sizes, pixels.

    Returns
    -------
    shift : tuple of int
        The best ``(dy, dx)`` found.
    score : float
        Its :func:`match_score`.
    table : tuple of numpy.ndarray
        The contingency of ``a`` with ``b`` moved by ``shift``.
    """
    limit = min(a.dense.shape) // 4 if max_shift is None else max_shift
    seen: dict[tuple[int, int], tuple[float, Table]] = {}

    def value(shift: tuple[int, int]) -> float:
        if shift not in seen:
            table = contingency(a.dense, warp_image(b.dense, translation(*shift)))
            seen[shift] = (match_score(a.size, b.size, table), table)
        return seen[shift][0]

    best = (int(start[0]), int(start[1]))
    for step in steps:
        while True:
            around = [(best[0] + dy * step, best[1] + dx * step) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                      if (dy or dx) and max(abs(best[0] + dy * step), abs(best[1] + dx * step)) <= limit]
            if not around:
                break
            top = max(around, key=lambda shift: (value(shift), shift))
            if value(top) <= value(best):
                break
            best = top
    return best, value(best), seen[best][1]
