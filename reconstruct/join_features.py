"""Edge features for learned joins: one row per overlapping pair of 2D objects in nearby sections.

The tracker (:mod:`.tracking`) links 2D objects by geometric rules tuned on clean masks. On the
masks of an automatic segmentation those rules leave many true continuations unlinked (a mask
that leaks, splits or is missing for a section). :mod:`.joins` re-scores every overlapping pair of
2D objects in sections ``z`` / ``z + d`` (``d <= max_gap``) with a small learned classifier and
joins the tracker's 3D objects where the classifier says they are one neuron. This module computes
the classifier's input in one streaming pass: it keeps ``max_gap + 1`` sections in memory, reads
every section of the labels, the image and the (optional) reference labels once, and its features
do not depend on the pixel size or on the image's bit depth and contrast:

===  ===================================================================================
  0  section distance ``d``
1-2  log area of each object (nm²)
  3  log overlap area (nm²)
4-6  overlap / area of each object, IoU
7-8  overlap / each object's largest overlap in the other section
9-10 whether this is each object's largest overlap (0/1)
11-12 fraction of each object covered by any object of the other section
13-14 log number of overlapping partners of each object
 15  centroid distance / sqrt(smaller area) (both in pixels)
 16  difference of the two objects' mean intensity, the image z-scored per section
 17  difference of their intensity standard deviations (same scale)
 18  absolute log area ratio
19-20 solidity of object a (area / area of its convex hull: a mask that leaks from one neurite
     into its neighbour is seldom convex), and the fraction of its pixels darker than -1 SD of
     its z-scored section (a mask that spans a membrane contains dark pixels)
21-22 the same for object b
===  ===================================================================================

Models trained on an earlier, shorter feature list (the first 19 columns) still work: a model
reads the leading columns it was trained on (:meth:`~.joins.JoinModel.predict`).

Sections are aligned with the tracker's shifts (``TrackResult.shifts``), or its affine
transforms (``TrackResult.warps``, with ``align_model="affine"``), before overlaps are counted, so
shifted or distorted sections are compared where they match.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import LabelError

from .convex import solidity
from .align import compose, is_identity, translation
from .overlap import SectionObjects, contingency, majority_labels, section_objects, warp_image
from .track_scan import read_section

__all__ = ["FEATURE_NAMES", "OBJECT_FEATURE_NAMES", "PairTable", "object_shape", "SectionObjectIds",
           "iter_pair_tables", "zscore"]

FEATURE_NAMES = (
    "gap", "log_area_a", "log_area_b", "log_overlap", "frac_a", "frac_b", "iou",
    "rel_best_a", "rel_best_b", "is_best_a", "is_best_b", "covered_a", "covered_b",
    "log_partners_a", "log_partners_b", "centroid_distance", "intensity_diff", "texture_diff",
    "log_area_ratio", "solidity_a", "dark_fraction_a", "solidity_b", "dark_fraction_b",
)
#: The per-object columns at the end of both feature lists (:func:`object_shape`, for each object).
OBJECT_FEATURE_NAMES = ("solidity", "dark_fraction")


@dataclass(frozen=True)
class PairTable:
    """The overlapping pairs of 2D objects of sections ``za < zb``.

    Attributes
    ----------
    za, zb : int
        The two sections.
    ref_a, ref_b : numpy.ndarray
        (P,) the reference label (3D id, or ground-truth id) of each pair's two objects: the
        label covering most of the object's pixels (0 when none covers any).
    count : numpy.ndarray
        (P,) overlap in pixels (after alignment).
    features : numpy.ndarray
        (P, 23) float64, columns :data:`FEATURE_NAMES`.
    """

    za: int
    zb: int
    ref_a: np.ndarray
    ref_b: np.ndarray
    count: np.ndarray
    features: np.ndarray


@dataclass(frozen=True)
class _Section:
    z: int
    objects: SectionObjects
    mean: np.ndarray  # (N,) z-scored mean intensity
    std: np.ndarray  # (N,) z-scored intensity std
    ref: np.ndarray  # (N,) majority reference label
    img: np.ndarray  # (Y, X) the z-scored section
    shape: np.ndarray  # (N, 2) solidity and dark fraction (object_shape)


def zscore(section: Any) -> np.ndarray:
    """A section as float64 with zero mean and unit standard deviation (a flat section: zero mean)."""
    img = np.asarray(section, dtype=np.float64)
    sd = img.std()
    return (img - img.mean()) / (sd if sd > 0 else 1.0)


class SectionObjectIds:
    """Every 2D object of a stack as a 3D object of its own: a lazy (Z, Y, X) label view.

    Section ``z`` reads as its 2D objects numbered in order of their first pixel, plus the number of
    objects in the sections before it, so ids run ``1..n_objects`` over the stack in order of first
    voxel and 0 stays background. Pass it to :func:`learned_joins` as the starting objects (the
    pipeline's ``joins.start = "sections"``) and apply the result section by section:
    ``result.lut[ids[z]]``. Building it reads every section once (to count its objects); each read
    renumbers one section again, so memory does not grow with depth.

    Parameters
    ----------
    labels2d : array-like
        (Z, Y, X) per-section instance labels, 0 = background (ids independent per section).

    Examples
    --------
    >>> import numpy as np
    >>> ids = SectionObjectIds(np.array([[[0, 7, 7]], [[5, 0, 9]]]))
    >>> ids.n_objects, ids[1].tolist(), ids[:].shape
    (3, [[2, 0, 3]], (2, 1, 3))
    """

    def __init__(self, labels2d: Any) -> None:
        shape = tuple(int(n) for n in labels2d.shape)
        if len(shape) != 3:
            raise LabelError(f"labels2d must be (Z, Y, X), got shape {shape}")
        self.labels2d = labels2d
        counts = np.array([section_objects(read_section(labels2d, z)).n for z in range(shape[0])], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.n_objects = int(counts.sum())
        self.shape = shape
        self.ndim = 3
        self.dtype = np.dtype(np.uint32 if self.n_objects < 2**32 else np.uint64)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, slice):
            zs = range(*index.indices(self.shape[0]))
            return np.stack([self[z] for z in zs]) if len(zs) else np.zeros((0, *self.shape[1:]), self.dtype)
        return self.section(index)[0]

    def section(self, z: int) -> tuple[np.ndarray, np.ndarray]:
        """Section ``z`` as its ids here, and the 2D labels' own ids of objects ``offsets[z] + 1, ...``."""
        z = int(z)
        if not -self.shape[0] <= z < self.shape[0]:
            raise IndexError(f"section {z} of {self.shape[0]}")
        z %= self.shape[0]
        objects = section_objects(read_section(self.labels2d, z))
        out = objects.dense.astype(self.dtype)
        out[objects.dense > 0] += self.dtype.type(self.offsets[z])
        return out, objects.ids


def object_shape(objects: SectionObjects, img: np.ndarray) -> np.ndarray:
    """(N, 2) per 2D object: solidity (area / convex hull area) and the fraction of pixels below -1.

    ``img`` is the z-scored section (:func:`zscore`); objects are ``objects.dense`` ids ``1..N``.
    Solidity is scikit-image's (``regionprops``), computed by :func:`.convex.solidity`.

    Examples
    --------
    >>> import numpy as np
    >>> from dendrosam.reconstruct.overlap import section_objects
    >>> lab = np.zeros((5, 6), int); lab[1:4, 0:3] = 1; lab[0:3, 4] = 2; lab[3, 4:6] = 2; lab[4, 5] = 2
    >>> img = np.zeros((5, 6)); img[1, 0:3] = -2.0
    >>> object_shape(section_objects(lab), img).round(3).tolist()  # in order of first pixel: the hook, the square
    [[0.857, 0.0], [1.0, 0.333]]
    """
    out = np.zeros((objects.n, len(OBJECT_FEATURE_NAMES)))
    out[:, 0] = solidity(objects.dense, objects.n)  # = regionprops' solidity, compiled (tested)
    flat = objects.dense.ravel()
    dark = np.bincount(flat, weights=(img.ravel() < -1.0), minlength=objects.n + 1)[1:]
    out[:, 1] = dark / np.maximum(objects.size, 1)
    return out


def _read(labels2d: Any, image: Any, ref: Any, z: int) -> _Section:
    objects = section_objects(read_section(labels2d, z))
    img = zscore(image[z])
    if img.shape != objects.dense.shape:
        raise LabelError(f"image: section {z} has shape {img.shape}, labels {objects.dense.shape}")
    n = objects.n
    flat = objects.dense.ravel()
    size = np.maximum(objects.size, 1)
    mean = np.bincount(flat, weights=img.ravel(), minlength=n + 1) / np.r_[max(flat.size - size.sum(), 1), size]
    dev = (img.ravel() - mean[flat]) ** 2  # two passes: no cancellation in the variance
    std = np.sqrt(np.bincount(flat, weights=dev, minlength=n + 1)[1:] / size)
    mean = mean[1:]
    if isinstance(ref, SectionObjectIds) and ref.labels2d is labels2d:  # each object is its own reference
        r = ref.offsets[z] + np.arange(1, n + 1, dtype=np.int64)
    elif ref is not None:
        ref_section = np.asarray(ref[z])
        if ref_section.shape != objects.dense.shape:
            raise LabelError(f"reference labels: section {z} has shape {ref_section.shape}, "
                             f"labels {objects.dense.shape}")
        r = majority_labels(objects, section_objects(ref_section))
    else:
        r = np.zeros(n, np.int64)
    return _Section(z, objects, mean, std, r, img, object_shape(objects, img))


def _pair_table(a: _Section, b: _Section, transform: np.ndarray, pixel_area: float) -> PairTable:
    dense_b = b.objects.dense if is_identity(transform) else warp_image(b.objects.dense, transform)
    ia, ib, c = contingency(a.objects.dense, dense_b)
    c = c.astype(np.float64)
    na, nb = a.objects.n, b.objects.n
    sa, sb = a.objects.size[ia].astype(np.float64), b.objects.size[ib].astype(np.float64)
    best_a = np.zeros(na)
    np.maximum.at(best_a, ia, c)
    best_b = np.zeros(nb)
    np.maximum.at(best_b, ib, c)
    cov_a = np.bincount(ia, weights=c, minlength=na)
    cov_b = np.bincount(ib, weights=c, minlength=nb)
    deg_a = np.bincount(ia, minlength=na)
    deg_b = np.bincount(ib, minlength=nb)
    ca, cb = a.objects.centroid[ia], b.objects.centroid[ib] @ transform[:, :2].T + transform[:, 2]
    features = np.stack([
        np.full(c.size, float(b.z - a.z)),
        np.log(sa * pixel_area), np.log(sb * pixel_area), np.log(c * pixel_area),
        c / sa, c / sb, c / (sa + sb - c),
        c / best_a[ia], c / best_b[ib],
        (c == best_a[ia]).astype(np.float64), (c == best_b[ib]).astype(np.float64),
        cov_a[ia] / sa, cov_b[ib] / sb,
        np.log(deg_a[ia]), np.log(deg_b[ib]),
        np.hypot(*(ca - cb).T) / np.sqrt(np.minimum(sa, sb)),
        a.mean[ia] - b.mean[ib], a.std[ia] - b.std[ib],
        np.abs(np.log(sa / sb)),
        a.shape[ia, 0], a.shape[ia, 1], b.shape[ib, 0], b.shape[ib, 1],
    ], axis=1) if c.size else np.zeros((0, len(FEATURE_NAMES)))
    return PairTable(a.z, b.z, a.ref[ia], b.ref[ib], c.astype(np.int64), features)


def iter_pair_tables(
    labels2d: Any,
    image: Any,
    voxel_size: tuple[float, float, float],
    ref: Any = None,
    shifts: np.ndarray | None = None,
    max_gap: int = 2,
    per_section: Callable[[_Section], Any] | None = None,
    warps: np.ndarray | None = None,
) -> Iterator[Any]:
    """Stream the :class:`PairTable` of every section pair ``(z, z + d)``, ``1 <= d <= max_gap``.

    Parameters
    ----------
    labels2d : array-like
        (Z, Y, X) per-section 2D labels (ids independent per section), read one section at a time.
    image : array-like
        (Z, Y, X) the EM image the labels were segmented from.
    voxel_size : tuple of float
        (z, y, x) nm; the areas are in nm².
    ref : array-like, optional
        (Z, Y, X) labels giving each object its :attr:`PairTable.ref_a` / ``ref_b`` (the
        tracker's 3D labels at inference, ground truth for training).
    shifts : numpy.ndarray, optional
        (Z, 2) cumulative ``(dy, dx)`` of each section (``TrackResult.shifts``); section ``zb``
        is moved by ``shifts[zb] - shifts[za]`` before counting overlaps with ``za``.
    warps : numpy.ndarray, optional
        (Z, 2, 3) per-section transforms onto the previous section (``TrackResult.warps``);
        when given they replace ``shifts``: section ``zb`` is moved by the composition of
        ``warps[za + 1 .. zb]``.
    max_gap : int
        Largest section distance.
    per_section : callable, optional
        Called once on every section as it is read (so one pass also yields per-section tables,
        e.g. :func:`.join_contacts.contact_tables`); its result is yielded before the section's
        pair tables.

    Yields
    ------
    PairTable
        In order of ``zb``, then ``za`` (and ``per_section``'s results, when given).
    """
    depth = int(labels2d.shape[0])
    if tuple(image.shape) != tuple(labels2d.shape):
        raise LabelError(f"image shape {tuple(image.shape)} != labels shape {tuple(labels2d.shape)}")
    if max_gap < 1:
        raise ValueError(f"max_gap must be >= 1, got {max_gap}")
    sh = np.zeros((depth, 2), np.int64) if shifts is None else np.asarray(shifts, np.int64)
    if warps is not None:
        warps = np.asarray(warps, np.float64)
        if warps.shape != (depth, 2, 3):
            raise LabelError(f"warps: shape {warps.shape}, expected ({depth}, 2, 3)")
    pixel_area = float(voxel_size[1]) * float(voxel_size[2])
    window: deque[_Section] = deque(maxlen=max_gap + 1)
    for z in range(depth):
        b = _read(labels2d, image, ref, z)
        if per_section is not None:
            yield per_section(b)
        for a in window:
            if b.z - a.z <= max_gap:
                if warps is None:
                    transform = translation(*(sh[b.z] - sh[a.z]).tolist())
                else:
                    transform = compose(warps[a.z + 1:b.z + 1])
                yield _pair_table(a, b, transform, pixel_area)
        window.append(b)
