"""Perfect linking of given 2D masks: how much of a 3D error is the masks' and how much the linker's.

:func:`oracle_link` gives every 2D object of every section the ground-truth id it overlaps most
(GT background ignored). The result is the best that *any* tracker can do with those masks (it
joins exactly the 2D objects of one neuron), so::

    evaluate(gt, oracle_link(labels2d, gt))   # error due to the 2D masks alone
    evaluate(gt, tracked)                     # masks + linking

On the demo crop, for example, our 2D masks with perfect linking already score a larger VI merge
than NeuroProof's 3D watershed: the gap is in the masks, not in the tracker.

Examples
--------
>>> import numpy as np
>>> from dendrosam.reconstruct.oracle import oracle_link
>>> gt = np.zeros((2, 4, 4), np.uint32); gt[:, :, :2] = 5; gt[:, :, 2:] = 9
>>> masks = np.zeros_like(gt); masks[0, :, :3] = 1; masks[1] = 7   # leaky 2D masks
>>> oracle_link(masks, gt)[:, 0].tolist()
[[5, 5, 5, 0], [5, 5, 5, 5]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrosam.errors import LabelError

from .kernels import best_rows
from .overlap import contingency, relabel_section, section_objects
from .track_scan import read_section

__all__ = ["oracle_link"]


def oracle_link(labels2d: Any, gt: Any, out: Any = None) -> Any:
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

    Returns
    -------
    array-like
        3D labels: the GT id per 2D object, 0 for objects lying on GT background only.
    """
    shape = tuple(getattr(labels2d, "shape", ()))
    if len(shape) != 3 or tuple(getattr(gt, "shape", ())) != shape:
        raise LabelError(f"oracle_link: labels2d {shape} and gt {getattr(gt, 'shape', None)} "
                         "must be (Z, Y, X) arrays of the same shape")
    if out is None:
        out = np.zeros(shape, dtype=np.uint32)
    for z in range(shape[0]):
        objs = section_objects(read_section(labels2d, z))
        truth = section_objects(read_section(gt, z))
        if truth.n and int(truth.ids.max()) >= 2**32:
            raise LabelError(f"oracle_link: gt ids must fit uint32, section {z} has {int(truth.ids.max())}")
        ia, ib, count = contingency(objs.dense, truth.dense)
        best = best_rows(ia, count, truth.ids[ib])  # largest overlap, ties to the smaller GT id
        label = np.zeros(objs.n, dtype=np.uint32)
        label[ia[best]] = truth.ids[ib[best]]
        out[z] = relabel_section(objs.dense, np.arange(1, objs.n + 1), label)
    return out
