"""Per-section object tables and the sparse contingency of two label images.

These are the pixel-level kernels of the tracker: everything downstream works on small tables
(one row per 2D object, one row per overlapping pair), never on pixels. All counts come from
``np.unique`` / ``np.bincount`` on flat arrays, so the cost is linear in the number of pixels and
independent of the number of objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cc3d
import fastremap
import numpy as np
from scipy import ndimage

from .kernels import LUT_LIMIT, best_rows, pair_counts, relabel, tabulate

__all__ = ["SectionObjects", "dense_labels", "section_objects", "contingency", "shift_image",
           "warp_image", "relabel_section", "majority_labels"]


def _lut_ok(max_id: int, n_pixels: int) -> bool:
    """Whether a direct lookup table over label values is small enough for this image."""
    return max_id <= min(LUT_LIMIT, 4 * n_pixels + 1024)


@dataclass(frozen=True)
class SectionObjects:
    """The 2D objects of one section.

    Attributes
    ----------
    ids : numpy.ndarray
        (N,) the original (per-section) label values, in order of first pixel, without 0.
    dense : numpy.ndarray
        (Y, X) uint32 image with ``ids[i]`` replaced by ``i + 1`` (0 stays background).
    size : numpy.ndarray
        (N,) int64 pixel counts.
    centroid : numpy.ndarray
        (N, 2) float64 centroids (y, x) in pixels.
    bbox : numpy.ndarray
        (N, 4) int64 bounding boxes ``(y0, x0, y1, x1)``, half-open, in pixels.
    """

    ids: np.ndarray
    dense: np.ndarray
    size: np.ndarray
    centroid: np.ndarray
    bbox: np.ndarray

    @property
    def n(self) -> int:
        """Number of objects in the section."""
        return int(self.ids.size)


@lru_cache(maxsize=4)
def _pixel_grids(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 row and column index of every pixel of a (ny, nx) image (read-only, cached)."""
    yy = np.repeat(np.arange(ny, dtype=np.float64), nx)
    xx = np.tile(np.arange(nx, dtype=np.float64), ny)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def dense_labels(section: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber a 2D label image ``1..N`` in order of first appearance (C order), 0 kept.

    Returns the (Y, X) uint32 dense image and the (N,) original ids (``ids[k - 1]`` became
    ``k``). Deterministic: the same image always gives the same numbering.
    """
    dense, mapping = fastremap.renumber(section, preserve_zero=True, in_place=False)
    mapping.pop(0, None)
    ids = np.zeros(len(mapping), dtype=np.int64)
    if mapping:
        ids[np.fromiter(mapping.values(), np.int64, len(mapping)) - 1] = np.fromiter(
            mapping.keys(), np.int64, len(mapping)
        )
    return dense.astype(np.uint32, copy=False), ids


def _tables_numpy(dense: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes, centroids and boxes of ``1..n`` in a dense image with bincount / find_objects."""
    flat = dense.ravel()
    size = np.bincount(flat, minlength=n + 1)[1:].astype(np.int64)
    yy, xx = _pixel_grids(*dense.shape)
    cy = np.bincount(flat, weights=yy, minlength=n + 1)[1:] / size
    cx = np.bincount(flat, weights=xx, minlength=n + 1)[1:] / size
    slices = ndimage.find_objects(dense, max_label=n)
    bbox = np.array([(sy.start, sx.start, sy.stop, sx.stop) for sy, sx in slices],
                    dtype=np.int64).reshape(n, 4)
    return size, np.stack([cy, cx], axis=1), bbox


def section_objects(section: np.ndarray) -> SectionObjects:
    """Tabulate the objects of one 2D label image.

    Parameters
    ----------
    section : numpy.ndarray
        (Y, X) integer labels, 0 = background; ids need not be consecutive.

    Returns
    -------
    SectionObjects
        Objects numbered in order of their first pixel (C order), with the densely renumbered
        image and per-object size, centroid and bbox.
    """
    section = np.asarray(section)
    max_id = int(section.max(initial=0))
    if _lut_ok(max_id, section.size):  # the common case: one compiled pass
        dense, ids, size, centroid, bbox = tabulate(section, max_id)
        return SectionObjects(ids=ids, dense=dense, size=size, centroid=centroid, bbox=bbox)
    dense, ids = dense_labels(section)  # huge ids: hash-based renumbering first
    n = ids.size
    if max(section.shape) < 65535:  # cc3d's raw boxes are uint16
        stats = cc3d.statistics(dense, no_slice_conversion=True)  # one C++ pass: size, centroid, box
        size = stats["voxel_counts"][1:n + 1].astype(np.int64)
        centroid = stats["centroids"][1:n + 1].astype(np.float64)
        raw = stats["bounding_boxes"][1:n + 1].astype(np.int64)  # (y0, y1, x0, x1) inclusive
        bbox = np.stack([raw[:, 0], raw[:, 2], raw[:, 1] + 1, raw[:, 3] + 1], axis=1)
    else:
        size, centroid, bbox = _tables_numpy(dense, n)
    return SectionObjects(
        ids=ids,
        dense=dense,
        size=size,
        centroid=centroid.reshape(n, 2),
        bbox=bbox.reshape(n, 4),
    )


def contingency(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse contingency table of two dense label images of the same shape.

    Parameters
    ----------
    a, b : numpy.ndarray
        (Y, X) labels 0..Na and 0..Nb (as :attr:`SectionObjects.dense`); 0 is ignored.

    Returns
    -------
    ia, ib, count : numpy.ndarray
        Zero-based object indices of every overlapping pair and its pixel count, sorted by
        ``(ia, ib)``. Small tables are counted in one compiled pass into a dense
        ``(Na + 1, Nb + 1)`` table (:func:`.kernels.pair_counts`); large ones fall back to
        ``np.unique`` of packed uint64 pairs.
    """
    a = a.ravel()
    b = b.ravel()
    na, nb = int(a.max(initial=0)), int(b.max(initial=0))
    if (na + 1) * (nb + 1) <= 4 * a.size + 1024 and max(na, nb) < 2**32:
        return pair_counts(a, b, na, nb)
    both = (a > 0) & (b > 0)
    packed = (a[both].astype(np.uint64) << np.uint64(32)) | b[both].astype(np.uint64)
    pairs, count = np.unique(packed, return_counts=True)
    ia = (pairs >> np.uint64(32)).astype(np.int64) - 1
    ib = (pairs & np.uint64(0xFFFFFFFF)).astype(np.int64) - 1
    return ia, ib, count.astype(np.int64)


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate a 2D image by whole pixels, filling uncovered pixels with 0.

    ``shift_image(img, dy, dx)[y, x] == img[y - dy, x - dx]`` where defined.
    """
    out = np.zeros_like(image)
    ny, nx = image.shape
    if abs(dy) >= ny or abs(dx) >= nx:
        return out
    src_y = slice(max(0, -dy), ny - max(0, dy))
    dst_y = slice(max(0, dy), ny - max(0, -dy))
    src_x = slice(max(0, -dx), nx - max(0, dx))
    dst_x = slice(max(0, dx), nx - max(0, -dx))
    out[dst_y, dst_x] = image[src_y, src_x]
    return out


def warp_image(image: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Map a 2D label image through an affine transform (nearest neighbour, 0 outside).

    ``transform`` is a (2, 3) matrix ``[A | t]`` taking a pixel ``p = (y, x)`` of ``image`` to
    ``A @ p + t`` in the output frame: ``warp_image(img, T)[q] == img[A^-1 @ (q - t)]``. A pure
    whole-pixel translation (``A`` the identity, integer ``t``) goes through :func:`shift_image`
    and is exact.
    """
    transform = np.asarray(transform, dtype=np.float64)
    a, t = transform[:, :2], transform[:, 2]
    if np.array_equal(a, np.eye(2)) and np.array_equal(t, np.round(t)):
        return shift_image(image, int(t[0]), int(t[1]))
    inv = np.linalg.inv(a)
    return ndimage.affine_transform(image, inv, offset=-inv @ t, order=0, mode="constant", cval=0)


def relabel_section(section: np.ndarray, ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Map the 2D ids of a section to new labels: ``ids[i]`` becomes ``labels[i]``, all else 0.

    One compiled pass through a direct lookup table when the label values are small enough
    (see :func:`section_objects`), else renumbering first (hash based).

    Parameters
    ----------
    section : numpy.ndarray
        (Y, X) integer labels.
    ids, labels : numpy.ndarray
        (N,) input values and their new uint32 labels.
    """
    section = np.asarray(section)
    max_id = max(int(section.max(initial=0)), int(ids.max(initial=0)))
    if _lut_ok(max_id, section.size):
        lut = np.zeros(max_id + 1, dtype=np.uint32)
        lut[ids] = labels
        return relabel(section, lut)
    dense, dense_ids = dense_labels(section)  # huge ids: hash-based renumbering first
    lut = np.zeros(dense_ids.size + 1, dtype=np.uint32)
    if ids.size:
        order = np.argsort(ids, kind="stable")
        pos = np.minimum(np.searchsorted(ids, dense_ids, sorter=order), ids.size - 1)
        hit = ids[order[pos]] == dense_ids
        lut[1:][hit] = labels[order[pos[hit]]]
    return lut[dense]


def majority_labels(objects: SectionObjects, ref: SectionObjects) -> np.ndarray:
    """For each object, the non-zero label of ``ref`` covering most of its pixels (ties: smaller).

    Parameters
    ----------
    objects, ref : SectionObjects
        The 2D objects of a section, and the labels they are matched to (ground truth, 3D ids, ...)
        in the same section.

    Returns
    -------
    numpy.ndarray
        (N,) int64, 0 for objects that overlap no labelled ``ref`` pixel.
    """
    ia, ib, count = contingency(objects.dense, ref.dense)
    best = best_rows(ia, count, ref.ids[ib])
    out = np.zeros(objects.n, dtype=np.int64)
    out[ia[best]] = ref.ids[ib[best]]
    return out
