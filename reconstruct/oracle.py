"""Perfect linking of given 2D masks: how much of a 3D error is the masks' and how much the linker's.

:func:`oracle_link` gives every 2D object of every section the ground-truth id it overlaps most
(GT background ignored). The result is the best that *any* tracker can do with those masks (it
joins exactly the 2D objects of one neuron), so::

    evaluate(gt, oracle_link(labels2d, gt))   # error due to the 2D masks alone
    evaluate(gt, tracked)                     # masks + linking

``links="overlap"`` is the bound for trackers that, like ours, only link 2D objects that overlap
in neighbouring sections: it joins two such objects exactly when they belong to the same GT
neuron, so the difference to ``links="any"`` is what no overlap-based tracker can recover (a neuron
whose masks are missing for a section, or whose pieces never touch), and the difference between
it and a real tracker is what better link decisions could recover.

Examples
--------
>>> import numpy as np
>>> from dendrosam.reconstruct.oracle import oracle_link
>>> gt = np.zeros((2, 4, 4), np.uint32); gt[:, :, :2] = 5; gt[:, :, 2:] = 9
>>> masks = np.zeros_like(gt); masks[0, :, :3] = 1; masks[1] = 7   # leaky 2D masks
>>> oracle_link(masks, gt)[:, 0].tolist()
[[5, 5, 5, 0], [5, 5, 5, 5]]
>>> masks[1] = 0; masks[1, 0, 0] = 7                            # a one-pixel mask in section 1
>>> masks = np.concatenate([masks, masks[:1]])                  # section 2 = section 0
>>> gt = np.concatenate([gt, gt[:1]])
>>> oracle_link(masks, gt, links="overlap")[:, 0, 0].tolist()  # all three join through it
[1, 1, 1]
>>> masks[1] = 0                                                # section 1 lost: no overlap left
>>> oracle_link(masks, gt, links="overlap")[:, 0, 0].tolist(), oracle_link(masks, gt)[:, 0, 0].tolist()
([1, 0, 2], [5, 0, 5])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from dendrosam.errors import ConfigError, LabelError

from .overlap import SectionObjects, contingency, majority_labels, relabel_section, section_objects
from .track_scan import read_section
from .track_stitch import canonical_labels

__all__ = ["oracle_link"]


def oracle_link(labels2d: Any, gt: Any, out: Any = None, links: str = "any") -> Any:
    """Give each 2D object the ground-truth id it overlaps most (ties: the smaller id).

    Parameters
    ----------
    labels2d : array-like
        (Z, Y, X) per-section instance labels (ids independent per section), read one section
        at a time.
    gt : array-like
        (Z, Y, X) ground-truth 3D ids, 0 = background (not a partner).
    out : array-like, optional
        Writable (Z, Y, X) target; a uint32 numpy array is allocated if omitted.
    links : {"any", "overlap"}
        ``"any"``: all 2D objects of one GT neuron share its id, wherever they are.
        ``"overlap"``: two 2D objects are joined only through a chain of objects of that neuron
        that overlap in neighbouring sections; the objects are numbered ``1..K`` by first voxel.

    Returns
    -------
    array-like
        3D labels: the GT id per 2D object (``links="any"``) or the component number, 0 for
        objects lying on GT background only.
    """
    if links not in ("any", "overlap"):
        raise ConfigError(f"oracle_link: links must be 'any' or 'overlap', got {links!r}")
    shape = tuple(getattr(labels2d, "shape", ()))
    if len(shape) != 3 or tuple(getattr(gt, "shape", ())) != shape:
        raise LabelError(f"oracle_link: labels2d {shape} and gt {getattr(gt, 'shape', None)} "
                         "must be (Z, Y, X) arrays of the same shape")
    if out is None:
        out = np.zeros(shape, dtype=np.uint32)
    if links == "overlap":
        return _overlap_oracle(labels2d, gt, out)
    for z in range(shape[0]):
        objs, label = _majority(labels2d, gt, z)
        out[z] = relabel_section(objs.dense, np.arange(1, objs.n + 1), label)
    return out


def _majority(labels2d: Any, gt: Any, z: int) -> tuple[SectionObjects, np.ndarray]:
    """The 2D objects of section ``z`` and the GT id each overlaps most (0: none)."""
    objs = section_objects(read_section(labels2d, z))
    truth = section_objects(read_section(gt, z))
    if truth.n and int(truth.ids.max()) >= 2**32:
        raise LabelError(f"oracle_link: gt ids must fit uint32, section {z} has {int(truth.ids.max())}")
    return objs, majority_labels(objs, truth).astype(np.uint32)


def _overlap_oracle(labels2d: Any, gt: Any, out: Any) -> Any:
    """``links="overlap"``: components of same-neuron overlaps between neighbouring sections."""
    depth = out.shape[0]
    offset = np.zeros(depth + 1, dtype=np.int64)
    src, dst, majority = [], [], []
    prev = None
    for z in range(depth):  # pass 1: node table and the same-neuron overlaps
        objs, label = _majority(labels2d, gt, z)
        offset[z + 1] = offset[z] + objs.n
        majority.append(label)
        if prev is not None:
            ia, ib, _ = contingency(prev[0].dense, objs.dense)
            same = (prev[1][ia] == label[ib]) & (label[ib] > 0)
            src.append(offset[z - 1] + ia[same])
            dst.append(offset[z] + ib[same])
        prev = (objs, label)
    n = int(offset[-1])
    s = np.concatenate(src) if src else np.zeros(0, np.int64)
    d = np.concatenate(dst) if dst else np.zeros(0, np.int64)
    _, comp = connected_components(
        sp.coo_matrix((np.ones(s.size, np.int8), (s, d)), shape=(n, n)), directed=False
    )
    keep = np.zeros(int(comp.max()) + 1 if n else 0, dtype=bool)
    keep[comp[np.concatenate(majority) > 0]] = True  # objects on GT background only -> 0
    label = canonical_labels(comp, np.arange(n, dtype=np.int64), keep)
    for z in range(depth):  # pass 2: write
        objs = section_objects(read_section(labels2d, z))
        out[z] = relabel_section(objs.dense, np.arange(1, objs.n + 1), label[offset[z]:offset[z + 1]])
    return out
