"""Quality of prompted 2D masks: one predicted mask per ground-truth object (the poster's protocol).

Each GT object k of a 2D section is prompted (box or point from GT) and the model answers with
one mask M_k. With G_k = {gt == k}::

    IoU_k  = |M_k & G_k| / |M_k | G_k|
    Dice_k = 2 |M_k & G_k| / (|M_k| + |G_k|)

and the summary is the mean, median and quantiles over objects. Model comparisons are reported
as a relative improvement ``(a - b) / b`` ("model A is X % better than model B").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dendrosam.errors import InputError, LabelError

__all__ = ["PromptedScores", "prompted_mask_scores", "relative_improvement"]

_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class PromptedScores:
    """Per-object IoU and Dice of prompted masks.

    Attributes
    ----------
    ids : numpy.ndarray
        (N,) GT ids, in the order given.
    iou, dice : numpy.ndarray
        (N,) scores in [0, 1].
    """

    ids: np.ndarray
    iou: np.ndarray
    dice: np.ndarray

    def summary(self, quantiles: Sequence[float] = _QUANTILES) -> dict[str, float]:
        """Mean, median and quantiles of IoU and Dice (JSON-safe floats)."""
        out: dict[str, float] = {"n": float(len(self.ids))}
        for name, values in (("iou", self.iou), ("dice", self.dice)):
            out[f"{name}_mean"] = float(np.mean(values)) if len(values) else float("nan")
            out[f"{name}_median"] = float(np.median(values)) if len(values) else float("nan")
            for q in quantiles:
                out[f"{name}_q{int(round(q * 100)):02d}"] = (
                    float(np.quantile(values, q)) if len(values) else float("nan")
                )
        return out


def prompted_mask_scores(
    gt2d: np.ndarray, pred_masks_or_labels: np.ndarray, ids: Sequence[int] | np.ndarray
) -> PromptedScores:
    """Score one predicted mask per GT object.

    Parameters
    ----------
    gt2d : numpy.ndarray
        (Y, X) integer GT labels of one section.
    pred_masks_or_labels : numpy.ndarray
        Either (N, Y, X) boolean masks, ``masks[k]`` answering the prompt of ``ids[k]``, or a
        (Y, X) label image in which the answer to the prompt of GT id k carries the label k.
    ids : sequence of int
        The N prompted GT ids (each must be present in ``gt2d``).

    Returns
    -------
    PromptedScores

    Examples
    --------
    >>> gt = np.array([[1, 1, 2, 2]])
    >>> masks = np.array([[[1, 1, 1, 0]], [[0, 0, 0, 1]]], bool)
    >>> s = prompted_mask_scores(gt, masks, [1, 2])
    >>> s.iou.round(3).tolist(), s.dice.round(3).tolist()
    ([0.667, 0.5], [0.8, 0.667])
    """
    gt2d = np.asarray(gt2d)
    pred = np.asarray(pred_masks_or_labels)
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if gt2d.ndim != 2 or not np.issubdtype(gt2d.dtype, np.integer):
        raise LabelError(f"gt2d must be a 2D integer label image, got {gt2d.dtype} shape {gt2d.shape}")
    if (ids <= 0).any():
        raise LabelError("prompted ids must be positive GT labels (0 is background)")
    gt_size = np.bincount(gt2d.ravel().astype(np.int64), minlength=int(ids.max(initial=0)) + 1)
    missing = ids[gt_size[ids] == 0] if len(ids) else ids
    if len(missing):
        raise LabelError(f"prompted ids not present in gt2d: {missing[:10].tolist()}")
    if pred.ndim == 3:
        if pred.shape != (len(ids), *gt2d.shape):
            raise LabelError(
                f"mask stack shape {pred.shape} does not match ({len(ids)} ids, {gt2d.shape})"
            )
        k, y, x = np.nonzero(pred)
        inter = np.bincount(k, weights=gt2d[y, x] == ids[k], minlength=len(ids))
        pred_size = np.bincount(k, minlength=len(ids)).astype(np.float64)
    elif pred.ndim == 2:
        if pred.shape != gt2d.shape or not np.issubdtype(pred.dtype, np.integer):
            raise LabelError(
                f"predicted label image ({pred.dtype}, {pred.shape}) does not match gt2d {gt2d.shape}"
            )
        flat = pred.ravel().astype(np.int64)
        top = int(max(flat.max(initial=0), ids.max(initial=0))) + 1
        pred_size = np.bincount(flat, minlength=top)[ids].astype(np.float64)
        same = flat == gt2d.ravel()
        inter = np.bincount(flat[same], minlength=top)[ids].astype(np.float64)
    else:
        raise LabelError(f"predictions must be (N, Y, X) masks or a (Y, X) label image, got {pred.shape}")
    g = gt_size[ids].astype(np.float64)
    iou = inter / (g + pred_size - inter)
    dice = 2 * inter / (g + pred_size)
    return PromptedScores(ids=ids, iou=iou, dice=dice)


def relative_improvement(a: float, b: float) -> float:
    """Relative improvement of score ``a`` over baseline ``b``: ``(a - b) / b``.

    Examples
    --------
    >>> relative_improvement(0.9, 0.6)  # model A is 50 % better than model B
    0.5000000000000001
    """
    if b == 0:
        raise InputError("relative_improvement: the baseline score b is 0, the ratio is undefined")
    return (a - b) / b
