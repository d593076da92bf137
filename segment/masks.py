"""Per-prompt masks -> one non-overlapping instance label image."""

from __future__ import annotations

import numpy as np

__all__ = ["masks_to_labels"]


def masks_to_labels(
    masks, scores: np.ndarray | None = None, min_size: int = 0, fill_holes: bool = False
) -> np.ndarray:
    """Paint masks into a uint32 label image; higher scores win where masks overlap.

    Each mask is first reduced to its largest 4-connected piece (optionally with holes
    filled); masks are painted from the lowest to the highest score, so the best mask owns
    contested pixels; finally every label is again reduced to its largest piece and labels
    with fewer than ``min_size`` pixels are dropped. Label ``i + 1`` is prompt ``i``'s mask
    (gaps where a mask was dropped), so results can be traced back to prompts.

    Parameters
    ----------
    masks : PromptedMasks or ndarray of bool, shape (N, Y, X)
        Per-prompt masks.
    scores : ndarray, shape (N,), optional
        Ranking for overlaps (default: :attr:`PromptedMasks.scores`, else mask order).
    min_size : int
        Minimum pixel count of a kept fragment.
    fill_holes : bool
        Fill enclosed holes of each mask (``scipy.ndimage.binary_fill_holes``).

    Returns
    -------
    ndarray of uint32, shape (Y, X)

    Examples
    --------
    >>> m = np.zeros((2, 1, 4), bool); m[0, 0, :3] = True; m[1, 0, 2:] = True
    >>> masks_to_labels(m, np.array([0.2, 0.9])).tolist()
    [[1, 1, 2, 2]]
    """
    import cc3d
    import fastremap
    from scipy import ndimage

    from dendrosam.segment.predict import PromptedMasks

    if isinstance(masks, PromptedMasks):
        shape, n = masks.shape, len(masks)
        crops, bboxes = masks.crops, masks.bboxes
        if scores is None:
            scores = masks.scores
    else:
        arr = np.asarray(masks, bool)
        if arr.ndim != 3:
            raise ValueError(f"masks must have shape (N, Y, X), got {arr.shape}")
        shape, n = arr.shape[1:], arr.shape[0]
        crops = tuple(arr)
        bboxes = np.tile([0, 0, shape[0], shape[1]], (n, 1))
    scores = np.arange(n, dtype=np.float64) if scores is None else np.asarray(scores, np.float64)
    if len(scores) != n:
        raise ValueError(f"{n} masks but {len(scores)} scores")
    labels = np.zeros(shape, np.uint32)
    for i in np.argsort(scores, kind="stable"):
        crop = np.asarray(crops[i], bool)
        if crop.size == 0 or not crop.any():
            continue
        if fill_holes:
            crop = ndimage.binary_fill_holes(crop)
        crop = cc3d.largest_k(crop, k=1, connectivity=4) > 0
        y0, x0, y1, x1 = bboxes[i]
        view = labels[y0:y1, x0:x1]
        view[crop] = i + 1
    if not labels.any():
        return labels
    # Overlaps can cut a lower-scored mask into pieces: keep each label's largest piece.
    pieces = cc3d.connected_components(labels, connectivity=4, out_dtype=np.uint32)
    piece_ids, piece_sizes = fastremap.unique(pieces, return_counts=True)
    keep = piece_ids != 0
    piece_ids, piece_sizes = piece_ids[keep], piece_sizes[keep]
    owner = np.zeros(int(pieces.max()) + 1, np.uint32)
    owner[pieces.ravel()] = labels.ravel()
    owner_of_piece = owner[piece_ids]
    order = np.lexsort((-piece_sizes, owner_of_piece))  # by owner, largest first
    first = np.ones(len(order), bool)
    first[1:] = owner_of_piece[order][1:] != owner_of_piece[order][:-1]
    winners = order[first & (piece_sizes[order] >= max(min_size, 1))]
    lut = np.zeros(len(owner), np.uint32)
    lut[piece_ids[winners]] = owner_of_piece[winners]
    return lut[pieces]
