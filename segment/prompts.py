"""Prompts from ground truth: the poster's evaluation protocol (one prompt per GT object)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GTPrompts", "prompts_from_gt"]


@dataclass(frozen=True)
class GTPrompts:
    """Prompts derived from one ground-truth section.

    Attributes
    ----------
    ids : ndarray of uint64, shape (N,)
        GT object id of each prompt (sorted).
    boxes : ndarray of float32, shape (N, 4)
        ``(x0, y0, x1, y1)`` bounding boxes with **exclusive** ``x1``/``y1``: the object occupies
        pixel columns ``x0 .. x1 - 1``. ``None`` for point prompts.
    points : ndarray of float32, shape (N, P, 2)
        ``(x, y)`` pixel coordinates; ``None`` for box prompts.
    point_labels : ndarray of int64, shape (N, P)
        1 = inside the object, 0 = a negative point in the background.
    """

    ids: np.ndarray
    boxes: np.ndarray | None = None
    points: np.ndarray | None = None
    point_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def prompts_from_gt(
    gt2d: np.ndarray, kind: str = "boxes", n_points: int = 1, negative: bool = False
) -> GTPrompts:
    """One prompt per ground-truth object in a section.

    Parameters
    ----------
    gt2d : ndarray of int, shape (Y, X)
        Instance labels, 0 = background.
    kind : {"boxes", "points"}
        Bounding boxes, or points at the maxima of the distance to the object's border.
    n_points : int
        Positive points per object: the ``n_points`` most interior pixels (largest Euclidean
        distance to the object's border, ties broken by raster order); the first is the maximum
        of the distance transform. Objects smaller than ``n_points`` repeat their last pixel.
    negative : bool
        Also add one negative point per object: the background pixel nearest the object's
        most interior point that lies outside it (label 0).

    Returns
    -------
    GTPrompts

    Examples
    --------
    >>> gt = np.zeros((5, 6), np.uint16); gt[1:4, 2:5] = 7
    >>> p = prompts_from_gt(gt); p.ids.tolist(), p.boxes.tolist()
    ([7], [[2.0, 1.0, 5.0, 4.0]])
    >>> prompts_from_gt(gt, "points").points.tolist()
    [[[3.0, 2.0]]]
    """
    from scipy import ndimage

    gt = np.asarray(gt2d)
    if gt.ndim != 2:
        raise ValueError(f"expected a 2D label section, got shape {gt.shape}")
    if kind not in ("boxes", "points"):
        raise ValueError(f"kind must be 'boxes' or 'points', got {kind!r}")
    ids = np.unique(gt)
    ids = ids[ids != 0].astype(np.uint64)
    if ids.size == 0:
        empty = np.zeros((0, 4), np.float32)
        if kind == "boxes":
            return GTPrompts(ids, boxes=empty)
        return GTPrompts(ids, points=np.zeros((0, n_points, 2), np.float32),
                         point_labels=np.zeros((0, n_points), np.int64))
    if kind == "boxes":
        # find_objects indexes by label value: relabel densely first.
        dense = np.searchsorted(ids, gt.astype(np.uint64)) + 1
        dense[gt == 0] = 0
        slices = ndimage.find_objects(dense)
        boxes = np.array(
            [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], np.float32
        )
        return GTPrompts(ids, boxes=boxes)
    import edt

    dist = edt.edt(np.ascontiguousarray(gt), black_border=True)
    flat = np.flatnonzero(gt)
    lab = gt.ravel()[flat]
    order = np.lexsort((flat, -dist.ravel()[flat], lab))  # per id: most interior first
    lab_sorted = lab[order]
    starts = np.searchsorted(lab_sorted, ids)
    counts = np.diff(np.append(starts, len(order)))
    rank = np.minimum(np.arange(n_points)[None, :], counts[:, None] - 1)
    chosen = flat[order[starts[:, None] + rank]]
    ys, xs = np.unravel_index(chosen, gt.shape)
    points = np.stack([xs, ys], axis=-1).astype(np.float32)
    labels = np.ones((len(ids), n_points), np.int64)
    if negative:
        # The pixel outside the object nearest its most interior point, found in the object's
        # bounding box grown by one pixel (a loop over objects, not pixels).
        neg = np.zeros((len(ids), 2), np.float32)
        for k, obj in enumerate(ids):
            py, px = int(ys[k, 0]), int(xs[k, 0])
            r = int(np.ceil(dist[py, px])) + 1
            y0, x0 = max(py - r, 0), max(px - r, 0)
            inside = gt[y0:py + r + 1, x0:px + r + 1] == obj
            _, (oy, ox) = ndimage.distance_transform_edt(inside, return_indices=True)
            neg[k] = (x0 + ox[py - y0, px - x0], y0 + oy[py - y0, px - x0])
        points = np.concatenate([points, neg[:, None]], axis=1)
        labels = np.concatenate([labels, np.zeros((len(ids), 1), np.int64)], axis=1)
    return GTPrompts(ids, points=points, point_labels=labels)
