"""Compiled one-pass pixel kernels of the tracker (numba).

The tracker's cost per section is a handful of passes over the section's pixels: renumbering
the 2D ids, object statistics, one or two contingency tables with the neighbouring sections,
and the final relabelling. With numpy each of those is several passes (casts, products,
``bincount``, gathers), so at 256 x 256 pixels the fixed cost of each pass dominated. These
kernels fuse each step into one loop over the pixels:

* :func:`tabulate` renumbers a section in order of first pixel and measures every object's
  size, centroid and bounding box in the same pass;
* :func:`pair_counts` counts the overlapping pairs of two dense sections into a dense table
  and lists its non-zero cells;
* :func:`relabel` writes ``lut[section]``;
* :func:`best_rows` marks each object's largest overlap in a contingency table (one pass
  instead of a sort).

Each works through a direct lookup table indexed by label value, so it needs label values
of bounded size; the callers in :mod:`.overlap` check that and otherwise use the numpy /
fastremap path (hashing), which gives the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

__all__ = ["tabulate", "pair_counts", "relabel", "best_rows", "LUT_LIMIT"]

#: Largest label value served by a direct lookup table (a 64 MiB int32 table at most); the
#: callers also require the table to be at most a few times the section's pixel count.
LUT_LIMIT = 1 << 24


def _njit(fn: Callable[..., Any]) -> Any:
    """``numba.njit`` with an on-disk cache where a writable cache location exists."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache directory: compile once per process
        return numba.njit(nogil=True)(fn)


@_njit
def _tabulate(section, lut, dense, ids, size, sum_y, sum_x, box):  # pragma: no cover - compiled
    # works on runs of equal values along x: statistics are updated once per run
    n = 0
    ny, nx = section.shape
    for y in range(ny):
        x0 = 0
        while x0 < nx:
            v = section[y, x0]
            x1 = x0 + 1
            while x1 < nx and section[y, x1] == v:
                x1 += 1
            if v == 0:
                for x in range(x0, x1):
                    dense[y, x] = 0
                x0 = x1
                continue
            k = lut[v]
            if k == 0:
                ids[n] = v
                n += 1
                k = n
                lut[v] = k
                box[k - 1, 0] = y
                box[k - 1, 1] = x0
                box[k - 1, 3] = x1
            for x in range(x0, x1):
                dense[y, x] = k
            j = k - 1
            length = x1 - x0
            size[j] += length
            sum_y[j] += y * length
            sum_x[j] += (x0 + x1 - 1) * length // 2
            if x0 < box[j, 1]:
                box[j, 1] = x0
            if x1 > box[j, 3]:
                box[j, 3] = x1
            box[j, 2] = y + 1  # rows are visited in increasing order
            x0 = x1
    return n


def tabulate(section: np.ndarray, max_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                         np.ndarray, np.ndarray]:
    """Renumber a 2D label image and measure its objects in one pass.

    Parameters
    ----------
    section : numpy.ndarray
        (Y, X) non-negative integer labels, 0 = background.
    max_id : int
        ``section.max()`` (at most :data:`LUT_LIMIT`).

    Returns
    -------
    dense, ids, size, centroid, bbox
        As the fields of :class:`.overlap.SectionObjects`: ``dense`` (Y, X) uint32 with the
        objects numbered ``1..N`` in order of first pixel (C order), ``ids`` (N,) their input
        values, ``size`` (N,) pixel counts, ``centroid`` (N, 2) mean ``(y, x)`` and ``bbox``
        (N, 4) half-open ``(y0, x0, y1, x1)``.
    """
    section = np.ascontiguousarray(section, dtype=np.uint32)  # one compiled signature
    cap = int(min(max_id, section.size)) + 1
    lut = np.zeros(max_id + 1, dtype=np.int32)
    dense = np.empty(section.shape, dtype=np.uint32)
    ids = np.zeros(cap, dtype=np.int64)
    size = np.zeros(cap, dtype=np.int64)
    sum_y = np.zeros(cap, dtype=np.int64)
    sum_x = np.zeros(cap, dtype=np.int64)
    box = np.zeros((cap, 4), dtype=np.int64)
    n = _tabulate(section, lut, dense, ids, size, sum_y, sum_x, box)
    size = size[:n]
    centroid = np.stack([sum_y[:n] / np.maximum(size, 1), sum_x[:n] / np.maximum(size, 1)], axis=1)
    return dense, ids[:n], size, centroid, box[:n]


@_njit
def _pair_counts(a, b, na, nb):  # pragma: no cover - compiled
    table = np.zeros((na + 1) * (nb + 1), dtype=np.int64)
    stride = nb + 1
    run, key = 0, 0  # runs of one (a, b) pair are counted with one table update
    for i in range(a.size):
        k = a[i] * stride + b[i]
        if k == key:
            run += 1
        else:
            table[key] += run
            key, run = k, 1
    table[key] += run
    for i in range(stride):  # label 0 on either side is not an overlap
        table[i] = 0
    for i in range(0, table.size, stride):
        table[i] = 0
    m = 0
    for t in range(table.size):
        if table[t] != 0:
            m += 1
    ia = np.empty(m, dtype=np.int64)
    ib = np.empty(m, dtype=np.int64)
    count = np.empty(m, dtype=np.int64)
    m = 0
    for t in range(table.size):
        if table[t] != 0:
            ia[m] = t // stride - 1
            ib[m] = t % stride - 1
            count[m] = table[t]
            m += 1
    return ia, ib, count


def pair_counts(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse contingency of two dense uint32 label images through a dense (na+1, nb+1) table.

    Returns zero-based ``ia, ib, count`` sorted by ``(ia, ib)``; labels must be ``<= na`` and
    ``<= nb`` respectively.
    """
    a = np.ascontiguousarray(a, dtype=np.uint32).ravel()
    b = np.ascontiguousarray(b, dtype=np.uint32).ravel()
    return _pair_counts(a, b, np.int64(na), np.int64(nb))


@_njit
def _relabel(section, lut, out):  # pragma: no cover - compiled
    flat_in = section.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = lut[flat_in[i]]


def relabel(section: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[section]`` as uint32 in one pass (``section.max() < lut.size`` required)."""
    section = np.ascontiguousarray(section, dtype=np.uint32)
    out = np.empty(section.shape, dtype=np.uint32)
    _relabel(section, np.ascontiguousarray(lut, dtype=np.uint32), out)
    return out


@_njit
def _best_rows(owner, count, other, n_owner):  # pragma: no cover - compiled
    best = np.full(n_owner, -1, dtype=np.int64)
    for r in range(owner.size):
        o = owner[r]
        j = best[o]
        if j < 0 or count[r] > count[j] or (count[r] == count[j] and other[r] < other[j]):
            best[o] = r
    mask = np.zeros(owner.size, dtype=np.bool_)
    for o in range(n_owner):
        if best[o] >= 0:
            mask[best[o]] = True
    return mask


def best_rows(owner: np.ndarray, count: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Mask of the rows that are the largest ``count`` of their ``owner`` (ties: lowest ``other``).

    ``owner``, ``other`` are non-negative integer indices, ``count`` the row values; one
    pass over the rows.
    """
    owner = np.ascontiguousarray(owner, dtype=np.int64)
    if not owner.size:
        return np.zeros(0, dtype=bool)
    return _best_rows(owner, np.ascontiguousarray(count, dtype=np.int64),
                      np.ascontiguousarray(other, dtype=np.int64), np.int64(owner.max() + 1))
