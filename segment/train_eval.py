"""Validation of prompted SAM masks during training: GT boxes in, mean IoU out, plus the ellipse floor.

The protocol is the project's evaluation of 2D masks: one box prompt per GT object and section
(objects of at least ``min_area`` pixels), answered through the same inference path users run
(:func:`dendrosam.segment.predict_masks`), scored with
:func:`dendrosam.reconstruct.prompted.prompted_mask_scores`. The *ellipse floor* answers each box
with the ellipse inscribed in it: a model must beat it by a wide margin to be useful.

What a "GT object" is in a section matters for dense neuron labels: a neuron whose arbour crosses
the section in several places has one id but several separate profiles there, and its box spans
them and the neurites in between. ``pieces=True`` takes each 4-connected profile as the object
instead (:func:`section_pieces`), the unit a 2D segmenter can see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ValSet", "val_prompts", "section_pieces", "ellipse_masks", "ellipse_floor", "evaluate_prompted"]


@dataclass(frozen=True)
class ValSet:
    """Held-out sections of one data set: raw (any dtype) and labels, (Z, Y, X)."""

    name: str
    raw: np.ndarray
    labels: np.ndarray


def val_prompts(labels2d: np.ndarray, min_area: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """GT ids and boxes ``(x0, y0, x1, y1)`` (exclusive) of objects with >= ``min_area`` pixels."""
    from dendrosam.segment.train_data import box_of_masks

    ids, boxes, area = box_of_masks(labels2d)
    keep = area >= min_area
    return ids[keep], boxes[keep]


def section_pieces(labels2d: np.ndarray) -> np.ndarray:
    """A section's labels split into 4-connected pieces, numbered ``1..N`` (0 stays background).

    Examples
    --------
    >>> lab = np.array([[1, 1, 0, 1], [2, 0, 0, 1]])
    >>> section_pieces(lab).tolist()   # id 1 has two separate profiles here
    [[1, 1, 0, 2], [3, 0, 0, 2]]
    """
    import cc3d

    return cc3d.connected_components(np.ascontiguousarray(labels2d), connectivity=4, out_dtype=np.uint32)


def ellipse_masks(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(N, Y, X)`` masks of the ellipses inscribed in boxes (pixel centres inside)."""
    yy = np.arange(shape[0])[None, :, None] + 0.5
    xx = np.arange(shape[1])[None, None, :] + 0.5
    b = np.asarray(boxes, np.float64).reshape(-1, 4)[:, :, None, None]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    rx, ry = np.maximum((b[:, 2] - b[:, 0]) / 2, 0.5), np.maximum((b[:, 3] - b[:, 1]) / 2, 0.5)
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def ellipse_floor(val: ValSet, min_area: int = 20, pieces: bool = False) -> float:
    """Mean IoU of the inscribed-ellipse answer over every prompted object of ``val`` (``pieces``: as in
    :func:`evaluate_prompted`)."""
    from dendrosam.reconstruct.prompted import prompted_mask_scores

    ious = []
    for lab in val.labels:
        lab = section_pieces(lab) if pieces else np.asarray(lab)
        ids, boxes = val_prompts(lab, min_area)
        if len(ids):
            ious.append(prompted_mask_scores(lab, ellipse_masks(boxes, lab.shape), ids).iou)
    return float(np.mean(np.concatenate(ious))) if ious else float("nan")


def evaluate_prompted(
    sam, val: ValSet, min_area: int = 20, multimask: bool = True, max_sections: int | None = None,
    pieces: bool = False,
) -> dict[str, float]:
    """Mean / median IoU of box-prompted masks on held-out sections.

    Parameters
    ----------
    sam : SamModel
        The model under test (any architecture).
    val : ValSet
    min_area : int
        Smallest GT object prompted, in pixels.
    multimask : bool
        Passed to :func:`predict_masks`.
    max_sections : int or None
        Evaluate on this many evenly spaced sections only (quick checks during training).
    pieces : bool
        Prompt and score each 4-connected profile of a GT id as its own object
        (:func:`section_pieces`) instead of one box per id and section.

    Returns
    -------
    dict
        ``iou_mean``, ``iou_median``, ``n`` (objects).
    """
    import torch

    from dendrosam.reconstruct.prompted import prompted_mask_scores
    from dendrosam.segment.predict import predict_masks

    zs = np.arange(len(val.labels))
    if max_sections is not None and max_sections < len(zs):
        zs = np.unique(np.linspace(0, len(zs) - 1, max_sections).round().astype(int))
    ious = []
    was_training = sam.model.training
    sam.model.eval()
    with torch.no_grad():
        for z in zs:
            lab = section_pieces(val.labels[z]) if pieces else np.asarray(val.labels[z])
            ids, boxes = val_prompts(lab, min_area)
            if not len(ids):
                continue
            pm = predict_masks(sam, np.asarray(val.raw[z]), boxes=boxes, multimask=multimask)
            ious.append(prompted_mask_scores(lab, pm.masks, ids).iou)
    sam.model.train(was_training)
    iou = np.concatenate(ious) if ious else np.zeros(0)
    return {"iou_mean": float(iou.mean()) if iou.size else float("nan"),
            "iou_median": float(np.median(iou)) if iou.size else float("nan"), "n": int(iou.size)}
