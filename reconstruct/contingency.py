"""One sparse contingency table between a ground-truth and a predicted label volume.

Every segmentation metric of :func:`dendrosam.reconstruct.evaluate` (variation of information,
adapted Rand error, IoU matching) is a function of the overlap counts

    n_ij = number of voxels with gt == i and seg == j

which are computed here once, in z-slabs, by packing each voxel's pair of ids into one uint64
key ``(gt << 32) | seg`` and counting distinct keys with :func:`fastremap.unique` (a hash/sort
hybrid that is far faster than :func:`numpy.unique` on label data). Only non-zero cells are
kept, so the table has at most as many rows as there are overlapping (gt, seg) pairs.

Voxels flagged by an ``ignore`` mask (e.g. the CREMI boundary band) are counted separately, so
one table serves both the metrics that skip them (VOI, Rand) and those that do not (object sizes
for IoU matching).

With ``per_section=True`` cells are additionally keyed by section index ``z``: objects become
``(z, id)`` pairs, the convention for 2D label stacks whose ids restart in every section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import LabelError

__all__ = ["Contingency", "contingency_table", "check_label_pair"]

_ID_BITS = 32
_ID_LIMIT = 1 << _ID_BITS
_SLAB_VOXELS = 1 << 24


@dataclass(frozen=True)
class Contingency:
    """Non-zero cells of the (gt, seg) overlap table.

    Attributes
    ----------
    gt, seg : numpy.ndarray
        (P,) uint64 ids of each cell (0 = background on either side).
    count : numpy.ndarray
        (P,) int64 number of voxels in the cell.
    scored : numpy.ndarray
        (P,) int64 voxels of the cell that are not ignored (``count`` minus the ignore mask).
    section : numpy.ndarray or None
        (P,) int64 section index of each cell when built with ``per_section=True``.
    n_sections : int
        Number of sections (z extent) of the volumes.
    """

    gt: np.ndarray
    seg: np.ndarray
    count: np.ndarray
    scored: np.ndarray
    section: np.ndarray | None
    n_sections: int

    @property
    def n_voxels(self) -> int:
        """Total number of voxels counted."""
        return int(self.count.sum())

    @property
    def n_ignored(self) -> int:
        """Voxels excluded from VOI/Rand by the ignore mask."""
        return int(self.count.sum() - self.scored.sum())

    def object_keys(self, side: str) -> np.ndarray:
        """Return one uint64 object key per cell: the id, or ``(z << 32) | id`` per section."""
        ids = self.gt if side == "gt" else self.seg
        if self.section is None:
            return ids
        return (self.section.astype(np.uint64) << np.uint64(_ID_BITS)) | ids


def check_label_pair(gt: Any, seg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate two label volumes and return them as 3D integer arrays (a 2D pair gets z = 1).

    Arrays, array-likes and :class:`~dendrosam.reconstruct.Volume` objects are accepted.

    Raises
    ------
    LabelError
        Shapes differ, a dtype is not integer/bool, a value is negative, or an array is empty.
    """
    arrays = []
    for name, arr in (("gt", gt), ("seg", seg)):
        if hasattr(arr, "read") and hasattr(arr, "voxel_size"):  # a dendrosam Volume
            arr = arr.read()
        arr = arr if hasattr(arr, "dtype") and hasattr(arr, "shape") else np.asarray(arr)
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise LabelError(f"{name} labels must be integers, got dtype {arr.dtype}")
        if arr.ndim not in (2, 3):
            raise LabelError(f"{name} labels must be 2D (Y, X) or 3D (Z, Y, X), got shape {arr.shape}")
        if int(np.prod(arr.shape)) == 0:
            raise LabelError(f"{name} labels are empty (shape {arr.shape})")
        arrays.append(arr)
    gt, seg = arrays
    if tuple(gt.shape) != tuple(seg.shape):
        raise LabelError(f"gt shape {tuple(gt.shape)} does not match seg shape {tuple(seg.shape)}")
    out = []
    for name, arr in (("gt", gt), ("seg", seg)):
        arr = np.asarray(arr)
        if arr.dtype == bool:
            arr = arr.view(np.uint8)
        if np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
            raise LabelError(f"{name} labels contain negative values (min {arr.min()})")
        out.append(arr[np.newaxis] if arr.ndim == 2 else arr)
    return out[0], out[1]


def _as_small_ids(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``arr`` with ids < 2**32 (renumbered if needed) and the original id of each new id."""
    if arr.dtype.itemsize <= 4 or int(arr.max()) < _ID_LIMIT:
        return arr, None
    import fastremap

    renumbered, remap = fastremap.renumber(arr, preserve_zero=True, in_place=False)
    original = np.zeros(max(remap.values()) + 1, dtype=np.uint64)
    original[np.fromiter(remap.values(), np.int64)] = np.fromiter(remap.keys(), np.uint64)
    return renumbered, original


def _count_keys(gt: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(gt << 32) | seg`` keys of two equally shaped arrays and their counts."""
    import fastremap

    key = gt.astype(np.uint64, copy=True).ravel()
    key <<= np.uint64(_ID_BITS)
    key |= seg.astype(np.uint64, copy=False).ravel()
    keys, counts = fastremap.unique(key, return_counts=True)
    return np.asarray(keys, np.uint64), np.asarray(counts, np.int64)


def _reduce(
    keys: list[np.ndarray], counts: list[np.ndarray], ignored: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the counts of equal keys across slabs."""
    if len(keys) == 1:
        return keys[0], counts[0], ignored[0]
    uniq, inverse = np.unique(np.concatenate(keys), return_inverse=True)

    def total(parts: list[np.ndarray]) -> np.ndarray:
        return np.bincount(inverse, weights=np.concatenate(parts), minlength=len(uniq)).astype(np.int64)

    return uniq, total(counts), total(ignored)


def contingency_table(
    gt: Any,
    seg: Any,
    *,
    ignore: np.ndarray | None = None,
    per_section: bool = False,
    slab_voxels: int = _SLAB_VOXELS,
) -> Contingency:
    """Count the voxels of every overlapping (gt id, seg id) pair.

    Parameters
    ----------
    gt, seg : array_like
        Label volumes (Z, Y, X) or (Y, X) of any non-negative integer dtype, same shape.
    ignore : numpy.ndarray of bool, optional
        Voxels to leave out of ``scored`` (still counted in ``count``).
    per_section : bool
        Key cells by section index as well (objects are ``(z, id)``).
    slab_voxels : int
        Approximate number of voxels processed at once (bounds temporary memory).

    Returns
    -------
    Contingency
        The non-zero cells, sorted by (section, gt, seg).
    """
    gt, seg = check_label_pair(gt, seg)
    if ignore is not None:
        ignore = np.asarray(ignore, dtype=bool).reshape(gt.shape)
    gt, gt_orig = _as_small_ids(gt)
    seg, seg_orig = _as_small_ids(seg)
    nz = gt.shape[0]
    step = 1 if per_section else max(1, slab_voxels // max(1, gt[0].size))
    keys_l, count_l, ign_l, z_l = [], [], [], []
    for z0 in range(0, nz, step):
        g, s = gt[z0 : z0 + step], seg[z0 : z0 + step]
        k, n = _count_keys(g, s)  # sorted, unique
        ign = np.zeros_like(n)
        if ignore is not None:
            m = ignore[z0 : z0 + step]
            if m.any():
                ik, inn = _count_keys(g[m], s[m])
                ign[np.searchsorted(k, ik)] = inn
        keys_l.append(k)
        count_l.append(n)
        ign_l.append(ign)
        z_l.append(np.full(len(k), z0, np.int64))
    if per_section:
        keys, count, ignored = (np.concatenate(x) for x in (keys_l, count_l, ign_l))
        section: np.ndarray | None = np.concatenate(z_l)
    else:
        keys, count, ignored = _reduce(keys_l, count_l, ign_l)
        section = None
    gt_ids = keys >> np.uint64(_ID_BITS)
    seg_ids = keys & np.uint64(_ID_LIMIT - 1)
    if gt_orig is not None:
        gt_ids = gt_orig[gt_ids.astype(np.int64)]
    if seg_orig is not None:
        seg_ids = seg_orig[seg_ids.astype(np.int64)]
    return Contingency(
        gt=gt_ids, seg=seg_ids, count=count, scored=count - ignored, section=section, n_sections=nz
    )

