"""Contact features for learned joins: one row per pair of 2D objects that touch *within* a section.

:mod:`.join_features` scores the overlaps *between* sections: evidence that two objects continue
each other. This module scores the contacts *within* a section: two masks lying side by side are
usually two neurites separated by a membrane (repulsion), sometimes one neurite the segmentation
split in two (attraction). In the agglomeration both kinds of edge are averaged together, weighted
by the area of the interface they stand for (overlap area between sections, contact length x
section thickness within one), so a chain of overlaps cannot pull two neurites together where they
lie side by side along a visible membrane.

Masks of neighbouring cells rarely touch: the membrane between them is unlabelled. Each section's
objects are therefore grown by ``reach_nm`` into unlabelled pixels
(:func:`skimage.segmentation.expand_labels`); two objects are in contact where their grown
regions meet, and the pixels on either side of that line lie where the membrane is. Features
(none depends on the pixel size, bit depth or contrast; ``s`` = the smaller object, ``l`` = the
larger):

===  ===================================================================================
0-1  log area of s and of l (nm²)
  2  log contact length (nm)
3-4  contact length / sqrt(area) of s and of l (both in pixels)
  5  mean intensity on the contact line, the image z-scored per section
  6  the same minus the mean intensity of the two objects
  7  mean of the darker of the two pixels across the contact line (membranes are dark in EM)
  8  absolute difference of the two objects' mean intensity
  9  absolute difference of their intensity standard deviations
 10  fraction of the contact line where the masks themselves touch (no unlabelled gap)
11-12 solidity and fraction of pixels darker than -1 SD of the first object (in order of their
     ids in the section; :func:`.join_features.object_shape`)
13-14 the same for the second object
===  ===================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.segmentation import expand_labels

from .join_features import _read

__all__ = ["CONTACT_FEATURE_NAMES", "ContactTable", "contact_tables", "interface_area", "iter_contact_tables",
           "DEFAULT_REACH_NM"]

CONTACT_FEATURE_NAMES = (
    "log_area_small", "log_area_large", "log_contact", "contact_per_size_small", "contact_per_size_large",
    "line_intensity", "line_contrast", "line_darker", "intensity_diff", "texture_diff", "direct_fraction",
    "solidity_a", "dark_fraction_a", "solidity_b", "dark_fraction_b",
)
DEFAULT_REACH_NM = 30.0


@dataclass(frozen=True)
class ContactTable:
    """The touching pairs of 2D objects of section ``z``.

    Attributes
    ----------
    z : int
        The section.
    ref_a, ref_b : numpy.ndarray
        (P,) reference label (3D id or ground-truth id) of each pair's two objects (majority).
    length : numpy.ndarray
        (P,) contact length in pixels (pixel edges on the line where the grown objects meet).
    features : numpy.ndarray
        (P, 15) float64, columns :data:`CONTACT_FEATURE_NAMES`.
    """

    z: int
    ref_a: np.ndarray
    ref_b: np.ndarray
    length: np.ndarray
    features: np.ndarray


def _contact_table(z: int, objects: Any, mean: np.ndarray, std: np.ndarray, ref: np.ndarray,
                   img: np.ndarray, reach_px: float, pixel_size: float, shape: np.ndarray) -> ContactTable:
    dense = objects.dense
    grown = expand_labels(dense, reach_px) if reach_px > 0 else dense
    firsts, seconds, values, direct = [], [], [], []
    for sl_a, sl_b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        ga, gb = grown[sl_a], grown[sl_b]
        k = (ga > 0) & (gb > 0) & (ga != gb)
        firsts.append(ga[k])
        seconds.append(gb[k])
        ia, ib = img[sl_a][k], img[sl_b][k]
        values.append(np.stack([0.5 * (ia + ib), np.minimum(ia, ib)], axis=1))
        direct.append((dense[sl_a][k] > 0) & (dense[sl_b][k] > 0))
    a, b = np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    n = objects.n
    if not lo.size:
        return ContactTable(z, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                            np.zeros((0, len(CONTACT_FEATURE_NAMES))))
    keys, inv = np.unique(lo * (n + 1) + hi, return_inverse=True)
    inv = inv.ravel()
    count = np.bincount(inv, minlength=keys.size).astype(np.float64)
    vals = np.concatenate(values)
    line = np.bincount(inv, vals[:, 0], keys.size) / count
    darker = np.bincount(inv, vals[:, 1], keys.size) / count
    touching = np.bincount(inv, np.concatenate(direct).astype(np.float64), keys.size) / count
    pa, pb = keys // (n + 1) - 1, keys % (n + 1) - 1  # 0-based object indices
    size = objects.size.astype(np.float64)
    small = np.where(size[pa] <= size[pb], pa, pb)
    large = np.where(size[pa] <= size[pb], pb, pa)
    area = pixel_size * pixel_size
    features = np.stack([
        np.log(size[small] * area), np.log(size[large] * area), np.log(count * pixel_size),
        count / np.sqrt(size[small]), count / np.sqrt(size[large]),
        line, line - 0.5 * (mean[pa] + mean[pb]), darker,
        np.abs(mean[pa] - mean[pb]), np.abs(std[pa] - std[pb]), touching,
        shape[pa, 0], shape[pa, 1], shape[pb, 0], shape[pb, 1],
    ], axis=1)
    return ContactTable(z, ref[pa], ref[pb], count.astype(np.int64), features)


def interface_area(table: Any, voxel_size: tuple[float, float, float]) -> np.ndarray:
    """(P,) nm² of interface each row of a table stands for: the overlap area of a pair of sections'
    objects (a :class:`~.join_features.PairTable`), contact length x section thickness of a contact
    (a :class:`ContactTable`).

    Examples
    --------
    >>> import numpy as np
    >>> t = ContactTable(0, np.array([1]), np.array([2]), np.array([3]), np.zeros((1, 15)))
    >>> interface_area(t, (40.0, 10.0, 20.0)).tolist()   # 3 px x 15 nm x 40 nm
    [1800.0]
    """
    if isinstance(table, ContactTable):
        return table.length * (0.5 * (float(voxel_size[1]) + float(voxel_size[2])) * float(voxel_size[0]))
    return table.count * (float(voxel_size[1]) * float(voxel_size[2]))


def contact_tables(voxel_size: tuple[float, float, float],
                   reach_nm: float = DEFAULT_REACH_NM) -> Callable[[Any], ContactTable]:
    """The function that turns one section read by :mod:`.join_features` into its :class:`ContactTable`.

    Pass it as ``per_section`` to :func:`.join_features.iter_pair_tables` to get overlaps and
    contacts from one pass over the stack.
    """
    if reach_nm < 0:
        raise ValueError(f"reach_nm must be >= 0, got {reach_nm}")
    pixel = 0.5 * (float(voxel_size[1]) + float(voxel_size[2]))

    def table(s: Any) -> ContactTable:
        return _contact_table(s.z, s.objects, s.mean, s.std, s.ref, s.img, reach_nm / pixel, pixel, s.shape)

    return table


def iter_contact_tables(
    labels2d: Any,
    image: Any,
    voxel_size: tuple[float, float, float],
    ref: Any = None,
    reach_nm: float = DEFAULT_REACH_NM,
) -> Iterator[ContactTable]:
    """Stream the :class:`ContactTable` of every section (one section in memory at a time).

    Parameters
    ----------
    labels2d, image : array-like
        (Z, Y, X) per-section 2D labels and the EM image.
    voxel_size : tuple of float
        (z, y, x) nm; in-plane pixels are taken as square (their mean size).
    ref : array-like, optional
        (Z, Y, X) labels naming each object's :attr:`ContactTable.ref_a` / ``ref_b``.
    reach_nm : float
        How far objects are grown into unlabelled pixels before contacts are found.
    """
    table = contact_tables(voxel_size, reach_nm)
    for z in range(int(labels2d.shape[0])):
        yield table(_read(labels2d, image, ref, z))
