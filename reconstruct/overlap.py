"""Per-section object tables and the sparse contingency of two label images.

These are the pixel-level kernels of the tracker: everything downstream works on small tables
(one row per 2D object, one row per overlapping pair), never on pixels. All counts come from
``np.unique`` / ``np.bincount`` on flat arrays, so the cost is linear in the number of pixels and
independent of the number of objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SectionObjects", "section_objects", "contingency", "shift_image"]


@dataclass(frozen=True)
class SectionObjects:
    """The 2D objects of one section.

    Attributes
    ----------
    ids : numpy.ndarray
        (N,) the original (per-section) label values, sorted ascending, without 0.
    dense : numpy.ndarray
        (Y, X) uint32 image with ``ids[i]`` replaced by ``i + 1`` (0 stays background).
    size : numpy.ndarray
        (N,) int64 pixel counts.
    centroid : numpy.ndarray
        (N, 2) float64 centroids (y, x) in pixels.
    bbox : numpy.ndarray
        (N, 4) int64 bounding boxes ``(y0, x0, y1, x1)``, half-open, in pixels.
    first : numpy.ndarray
        (N,) int64 flat (C-order) index of each object's first pixel.
    """

    ids: np.ndarray
    dense: np.ndarray
    size: np.ndarray
    centroid: np.ndarray
    bbox: np.ndarray
    first: np.ndarray

    @property
    def n(self) -> int:
        """Number of objects in the section."""
        return int(self.ids.size)


def section_objects(section: np.ndarray) -> SectionObjects:
    """Tabulate the objects of one 2D label image.

    Parameters
    ----------
    section : numpy.ndarray
        (Y, X) integer labels, 0 = background; ids need not be consecutive.

    Returns
    -------
    SectionObjects
        Ids, a densely renumbered copy of the image and per-object size, centroid and bbox.
    """
    section = np.asarray(section)
    ny, nx = section.shape
    ids, first, inverse = np.unique(section.ravel(), return_index=True, return_inverse=True)
    if ids.size and ids[0] == 0:
        ids, first = ids[1:], first[1:]
    else:
        inverse = inverse + 1  # no background pixel: every value is an object
    dense = inverse.reshape(ny, nx).astype(np.uint32, copy=False)
    n = ids.size
    flat = dense.ravel()
    size = np.bincount(flat, minlength=n + 1)[1:].astype(np.int64)
    yy, xx = np.divmod(np.arange(flat.size, dtype=np.int64), nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = np.bincount(flat, weights=yy, minlength=n + 1)[1:] / size
        cx = np.bincount(flat, weights=xx, minlength=n + 1)[1:] / size
    fg = flat > 0
    lab = flat[fg].astype(np.int64) - 1
    bbox = np.empty((n, 4), dtype=np.int64)
    for col, (coord, func, init) in enumerate(
        ((yy, np.minimum, ny), (xx, np.minimum, nx), (yy, np.maximum, -1), (xx, np.maximum, -1))
    ):
        out = np.full(n, init, dtype=np.int64)
        func.at(out, lab, coord[fg])
        bbox[:, col] = out
    bbox[:, 2:] += 1
    return SectionObjects(
        ids=ids.astype(np.int64),
        dense=dense,
        size=size,
        centroid=np.stack([cy, cx], axis=1) if n else np.zeros((0, 2)),
        bbox=bbox,
        first=first.astype(np.int64),
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
        ``(ia, ib)``.
    """
    a = a.ravel()
    b = b.ravel()
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
