"""Mask losses for SAM training: focal, dice, BCE on logits, and the IoU of thresholded masks."""

from __future__ import annotations

from typing import Any

__all__ = ["focal_loss", "dice_loss", "bce_loss", "mask_iou"]


def focal_loss(logits: Any, target: Any, alpha: float = 0.25, gamma: float = 2.0) -> Any:
    """Sigmoid focal loss (Lin et al. 2017) averaged over pixels: shape ``logits.shape[:-2]``.

    Parameters
    ----------
    logits, target : torch.Tensor, (..., H, W)
        Raw logits and 0/1 targets.
    alpha, gamma : float
        Foreground weight and focusing exponent (``alpha < 0`` disables the weighting).
    """
    import torch.nn.functional as F

    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: Any, target: Any, eps: float = 1.0) -> Any:
    """Soft dice loss ``1 - (2 |p t| + eps) / (|p| + |t| + eps)`` per mask: shape ``logits.shape[:-2]``."""
    p = logits.sigmoid().flatten(-2)
    t = target.flatten(-2)
    return 1 - (2 * (p * t).sum(-1) + eps) / (p.sum(-1) + t.sum(-1) + eps)


def bce_loss(logits: Any, target: Any) -> Any:
    """Binary cross-entropy on logits averaged over pixels: shape ``logits.shape[:-2]``."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(-2).mean(-1)


def mask_iou(logits: Any, target: Any, threshold: float = 0.0) -> Any:
    """IoU of ``logits > threshold`` with the target per mask (1 when both are empty)."""
    pred = (logits > threshold).flatten(-2)
    t = target.flatten(-2) > 0.5
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return (inter / union.clamp(min=1)).where(union > 0, union.new_ones(()).float())
