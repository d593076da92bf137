"""From SAM's low-resolution logits to per-prompt masks cropped to their bounding boxes.

Two pieces shared by the inference paths of :mod:`dendrosam.segment.predict`:

- :func:`decode_per_prompt` runs ``MaskDecoder`` with one image embedding *per prompt* (the zoom
  path: each prompt has its own crop), where ``MaskDecoder.forward`` would repeat one embedding
  over all prompts.
- :func:`logits_to_crops` turns the classic path's low-res logits (``(N, 1, 4g, 4g)`` for a
  ``g x g`` embedding grid, covering the padded ``img_size`` square) into section-pixel masks
  without building an ``(N, img_size, img_size)`` upsampled stack: each mask is resampled only
  over the pixels its positive low-res cells can reach.

Resampling is one bilinear step from low-res cells to section pixels (pixel centres, edge
replication), the same convention as :func:`dendrosam.segment.zoom.paste_logits`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["crop_to_bbox", "decode_per_prompt", "select_best", "logits_to_crops", "stability_score"]

#: Logit offset of the stability score (Segment Anything's ``stability_score_offset``).
STABILITY_OFFSET = 1.0


def crop_to_bbox(
    mask: np.ndarray, oy: int = 0, ox: int = 0
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop a bool mask to its bounding box; return the crop and ``(y0, x0, y1, x1)`` + offset.

    An empty mask gives a ``(0, 0)`` crop at ``(oy, ox, oy, ox)``.

    Examples
    --------
    >>> m = np.zeros((4, 5), bool); m[1:3, 2] = True
    >>> crop, bb = crop_to_bbox(m, 10, 20)
    >>> crop.shape, bb
    ((2, 1), (11, 22, 13, 23))
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), bool), (oy, ox, oy, ox)
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return mask[y0:y1, x0:x1].copy(), (oy + y0, ox + x0, oy + y1, ox + x1)


def decode_per_prompt(decoder: Any, emb: Any, pe: Any, sparse: Any, dense: Any) -> tuple[Any, Any]:
    """``MaskDecoder`` forward with one image embedding per prompt.

    Parameters
    ----------
    decoder : segment_anything.modeling.MaskDecoder
    emb : torch.Tensor, shape (B, C, g, g)
        Image embedding of each prompt's own crop.
    pe : torch.Tensor, shape (1, C, g, g)
        ``prompt_encoder.get_dense_pe()``.
    sparse, dense : torch.Tensor
        Prompt encoder outputs for the ``B`` prompts.

    Returns
    -------
    masks : torch.Tensor, shape (B, 4, 4g, 4g)
        Low-res logits of all mask tokens (index 0: single-mask output, 1-3: multimask).
    iou : torch.Tensor, shape (B, 4)
        Predicted IoU of each.
    """
    import torch

    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([tokens.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse], dim=1)
    src = emb + dense
    pos = pe.expand(src.shape[0], -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos, tokens)
    up = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    mask_tokens = hs[:, 1:1 + decoder.num_mask_tokens, :]
    hyper = torch.stack(
        [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
        dim=1,
    )
    b, c, h, w = up.shape
    masks = (hyper @ up.reshape(b, c, h * w)).reshape(b, -1, h, w)
    return masks, decoder.iou_prediction_head(hs[:, 0, :])


def select_best(masks: Any, iou: Any, multimask: bool) -> tuple[Any, Any]:
    """Keep one mask per prompt: the best-scored multimask output, or the single-mask output.

    ``masks`` ``(B, M, h, w)`` and ``iou`` ``(B, M)`` hold either all four decoder outputs
    (:func:`decode_per_prompt`) or SAM's own selection (``M`` = 3 or 1). Returns ``(B, h, w)``
    float32 logits and ``(B,)`` float32 scores.
    """
    import torch

    if masks.shape[1] == 4:
        sl = slice(1, None) if multimask else slice(0, 1)
        masks, iou = masks[:, sl], iou[:, sl]
    best = iou.argmax(dim=1)
    rows = torch.arange(masks.shape[0], device=masks.device)
    return masks[rows, best].float(), iou[rows, best].float()


def stability_score(logits: Any, threshold: float, offset: float = STABILITY_OFFSET) -> np.ndarray:
    """How little each mask changes when its logit threshold moves by ``offset`` either way.

    ``|logits > threshold + offset| / |logits > threshold - offset|`` per mask, the stability
    score of Segment Anything's automatic mask generator (Kirillov et al. 2023): near 1 for a
    mask with a sharp boundary, low for a hesitant one. Computed on the low-res logits (the
    decoder's own resolution); an empty mask scores 0.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, h, w)
    threshold : float
        ``Sam.mask_threshold``.
    offset : float

    Returns
    -------
    ndarray of float32, shape (N,)

    Examples
    --------
    >>> import torch
    >>> lg = torch.tensor([[[3.0, 0.5, -0.5, -3.0]]])
    >>> stability_score(lg, 0.0).tolist()
    [0.3333333432674408]
    """
    flat = logits.reshape(logits.shape[0], -1).float()
    inner = (flat > threshold + offset).sum(dim=1).cpu().numpy()
    outer = (flat > threshold - offset).sum(dim=1).cpu().numpy()
    return np.where(outer > 0, inner / np.maximum(outer, 1), 0.0).astype(np.float32)


def logits_to_crops(
    low: Any,
    threshold: float,
    input_size: tuple[int, int],
    window_shape: tuple[int, int],
    img_size: int,
    origin: tuple[int, int] = (0, 0),
) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Threshold low-res logits at section resolution, only where a mask can be positive.

    Parameters
    ----------
    low : torch.Tensor, shape (N, h, w)
        Low-res logits spanning the padded ``img_size`` square of the encoder input.
    threshold : float
        ``Sam.mask_threshold``.
    input_size : (int, int)
        Size of the resized window inside the padded square (``ResizeLongestSide`` output).
    window_shape : (int, int)
        ``(Y, X)`` of the window in section pixels.
    img_size : int
        Side of the padded encoder input.
    origin : (int, int)
        ``(y0, x0)`` of the window in the section (added to the returned boxes).

    Returns
    -------
    list of (ndarray of bool, (y0, x0, y1, x1))
        Each mask cropped to its bounding box (section pixels, exclusive ends).
    """
    import torch
    import torch.nn.functional as F

    n, lh, lw = low.shape
    wy, wx = int(window_shape[0]), int(window_shape[1])
    # low-res coordinate of a section pixel centre: (p + 0.5) * k, per axis
    ky = input_size[0] / wy * lh / img_size
    kx = input_size[1] / wx * lw / img_size
    pos = low > threshold
    any_r, any_c = pos.any(dim=2), pos.any(dim=1)  # (N, lh), (N, lw)
    has = any_r.any(dim=1).cpu().numpy()
    r = torch.arange(lh, device=low.device)
    c = torch.arange(lw, device=low.device)
    r0 = torch.where(any_r, r, lh).amin(1).cpu().numpy()
    r1 = torch.where(any_r, r, -1).amax(1).cpu().numpy()
    c0 = torch.where(any_c, c, lw).amin(1).cpu().numpy()
    c1 = torch.where(any_c, c, -1).amax(1).cpu().numpy()
    oy, ox = int(origin[0]), int(origin[1])
    out = []
    for i in range(n):
        if not has[i]:
            out.append((np.zeros((0, 0), bool), (oy, ox, oy, ox)))
            continue
        # A pixel samples cells floor(q - 0.5) and +1, q = (p + 0.5) * k: it can be positive only
        # for q in [j0 - 0.5, j1 + 1.5); one pixel of slack each side against rounding.
        y0 = max(int(np.floor((r0[i] - 0.5) / ky - 0.5)) - 1, 0)
        y1 = min(int(np.ceil((r1[i] + 1.5) / ky - 0.5)) + 1, wy)
        x0 = max(int(np.floor((c0[i] - 0.5) / kx - 0.5)) - 1, 0)
        x1 = min(int(np.ceil((c1[i] + 1.5) / kx - 0.5)) + 1, wx)
        if y1 <= y0 or x1 <= x0:
            out.append((np.zeros((0, 0), bool), (oy, ox, oy, ox)))
            continue
        f32 = dict(device=low.device, dtype=torch.float32)
        gy = (torch.arange(y0, y1, **f32) + 0.5) * (ky / lh) * 2 - 1
        gx = (torch.arange(x0, x1, **f32) + 0.5) * (kx / lw) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        res = F.grid_sample(low[i:i + 1, None], grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        out.append(crop_to_bbox((res[0, 0] > threshold).cpu().numpy(), oy + y0, ox + x0))
    return out
