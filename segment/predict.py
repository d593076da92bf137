"""Prompted SAM inference on one section: embed once, decode prompts in batches.

Two paths, chosen by the architecture:

- **classic** (``arch.zoom_margin is None``): the section (or each tile of a large section, see
  :mod:`dendrosam.segment.tiling`) is embedded once; all prompts routed to it are decoded
  against that embedding in chunks of ``batch_size``.
- **zoom** (``arch.zoom_margin`` set): each prompt box gets its own square crop (the box grown by
  the margin, resampled to ``img_size``, :mod:`dendrosam.segment.zoom`); crops go through the
  image encoder in batches and each prompt is decoded against its own embedding. No tiling.

Masks are returned cropped to their bounding box (:class:`PromptedMasks`), so a thousand
prompts on an 8k section do not need a thousand full-size arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrosam.segment.preprocess import normalize_section

__all__ = ["PromptedMasks", "predict_masks", "prompt_extents"]


@dataclass(frozen=True)
class PromptedMasks:
    """One mask per prompt, each stored cropped to its bounding box.

    Attributes
    ----------
    crops : tuple of ndarray of bool
        ``crops[i]`` is mask ``i`` restricted to ``bboxes[i]`` (empty ``(0, 0)`` for an empty mask).
    bboxes : ndarray of int64, shape (N, 4)
        ``(y0, x0, y1, x1)`` of each crop in section pixels (exclusive ends).
    scores : ndarray of float32, shape (N,)
        SAM's predicted IoU of the chosen mask.
    shape : (int, int)
        Section shape.
    """

    crops: tuple[np.ndarray, ...]
    bboxes: np.ndarray
    scores: np.ndarray
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.crops)

    def mask(self, i: int) -> np.ndarray:
        """Mask ``i`` as a full ``(Y, X)`` bool array."""
        out = np.zeros(self.shape, bool)
        y0, x0, y1, x1 = self.bboxes[i]
        out[y0:y1, x0:x1] = self.crops[i]
        return out

    @property
    def masks(self) -> np.ndarray:
        """All masks as a dense ``(N, Y, X)`` bool array (memory: N * Y * X bytes)."""
        out = np.zeros((len(self), *self.shape), bool)
        for i, (crop, (y0, x0, y1, x1)) in enumerate(zip(self.crops, self.bboxes)):
            out[i, y0:y1, x0:x1] = crop
        return out

    @property
    def areas(self) -> np.ndarray:
        """Pixel count of each mask."""
        return np.array([int(c.sum()) for c in self.crops], np.int64)


def prompt_extents(boxes: np.ndarray | None, points: np.ndarray | None, n: int) -> np.ndarray:
    """``(x0, y0, x1, y1)`` covering each prompt's box and points (exclusive ends)."""
    lo = np.full((n, 2), np.inf)
    hi = np.full((n, 2), -np.inf)
    if boxes is not None:
        lo = np.minimum(lo, boxes[:, :2])
        hi = np.maximum(hi, boxes[:, 2:])
    if points is not None:
        lo = np.minimum(lo, points.min(axis=1))
        hi = np.maximum(hi, points.max(axis=1) + 1)
    return np.concatenate([lo, hi], axis=1)


def _validate(boxes, points, point_labels, shape):
    from dendrosam.errors import InputError

    n = None
    if boxes is not None:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise InputError("prompt boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
        n = len(boxes)
    if points is not None:
        points = np.asarray(points, np.float64)
        if points.ndim == 2:
            points = points[:, None, :]
        if points.ndim != 3 or points.shape[-1] != 2:
            raise InputError(f"prompt points must have shape (N, P, 2) (x, y); got {points.shape}")
        if n is not None and len(points) != n:
            raise InputError(f"{n} boxes but {len(points)} point prompts: give one per box")
        n = len(points)
        if point_labels is None:
            point_labels = np.ones(points.shape[:2], np.int64)
        point_labels = np.asarray(point_labels, np.int64).reshape(points.shape[:2])
    return boxes, points, point_labels, (n or 0)


def _crop_mask(mask: np.ndarray, oy: int, ox: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), bool), (oy, ox, oy, ox)
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return mask[y0:y1, x0:x1].copy(), (oy + y0, ox + x0, oy + y1, ox + x1)


def _image_tensor(section_u8: np.ndarray, device: str):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(section_u8)).to(device=device, dtype=torch.float32)
    return t[None, None].expand(1, 3, *section_u8.shape)


def predict_masks(
    sam,
    image2d: np.ndarray,
    boxes: np.ndarray | None = None,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    batch_size: int = 64,
    multimask: bool = True,
    tile_size: int | None = None,
    halo: int | None = None,
    normalize: bool = True,
) -> PromptedMasks:
    """Segment one section with box and/or point prompts.

    Parameters
    ----------
    sam : SamModel
        From :func:`dendrosam.segment.load_sam`.
    image2d : ndarray, shape (Y, X)
        Grey section, any numeric dtype.
    boxes : ndarray, shape (N, 4), optional
        ``(x0, y0, x1, y1)`` in section pixels, exclusive ends.
    points : ndarray, shape (N, P, 2) or (N, 2), optional
        ``(x, y)`` point prompts; combined with ``boxes`` prompt by prompt when both are given.
    point_labels : ndarray, shape (N, P), optional
        1 = foreground, 0 = background (default all 1).
    batch_size : int
        Prompts decoded (and, on the zoom path, crops encoded) per forward call.
    multimask : bool
        Predict three masks per prompt and keep the one with the best predicted IoU.
    tile_size : int or None
        Classic path: side of the tiles in section pixels. ``None``: the whole section is one
        window when it fits ``arch.img_size``, otherwise tiles of ``arch.img_size``.
    halo : int or None
        Context each prompt needs inside its tile (default ``tile_size // 8``).
    normalize : bool
        Stretch intensities with :func:`normalize_section` (keep True unless already uint8).

    Returns
    -------
    PromptedMasks
    """
    from dendrosam.errors import InputError

    image = np.asarray(image2d)
    if image.ndim != 2:
        raise InputError(f"expected a 2D section (Y, X), got shape {image.shape}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    boxes, points, point_labels, n = _validate(boxes, points, point_labels, image.shape)
    shape = (int(image.shape[0]), int(image.shape[1]))
    if n == 0:
        return PromptedMasks((), np.zeros((0, 4), np.int64), np.zeros(0, np.float32), shape)
    u8 = normalize_section(image) if normalize else image.astype(np.uint8, copy=False)
    if sam.arch.zoom_margin is not None:
        crops, bbs, scores = _predict_zoom(
            sam, u8, boxes, points, point_labels, batch_size, multimask
        )
    else:
        crops, bbs, scores = _predict_classic(
            sam, u8, boxes, points, point_labels, batch_size, multimask, tile_size, halo
        )
    return PromptedMasks(
        tuple(crops), np.asarray(bbs, np.int64).reshape(-1, 4), np.asarray(scores, np.float32), shape
    )


def _predict_classic(sam, u8, boxes, points, point_labels, batch_size, multimask, tile_size, halo):
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    from dendrosam.segment.device import autocast
    from dendrosam.segment.tiling import route_prompts, tile_windows

    model, arch, device = sam.model, sam.arch, sam.device
    shape = u8.shape
    n = len(boxes) if boxes is not None else len(points)
    if tile_size is None:
        tile_size = max(shape) if max(shape) <= arch.img_size else arch.img_size
    halo = tile_size // 8 if halo is None else int(halo)
    grid = tile_windows(shape, int(tile_size), halo, arch.img_size)
    windows, assignment = route_prompts(
        prompt_extents(boxes, points, n), grid, shape, halo, arch.img_size
    )
    crops: list = [None] * n
    bbs = np.zeros((n, 4), np.int64)
    scores = np.zeros(n, np.float32)
    pe = None
    with autocast(device):
        for w_idx in np.unique(assignment):
            win = windows[w_idx]
            idx = np.flatnonzero(assignment == w_idx)
            h, w = win.shape
            tf = ResizeLongestSide(win.long_side)
            x = tf.apply_image_torch(_image_tensor(u8[win.y0:win.y1, win.x0:win.x1], device))
            input_size = tuple(x.shape[-2:])
            emb = model.image_encoder(model.preprocess(x))
            if pe is None:
                pe = model.prompt_encoder.get_dense_pe()
            offset = np.array([win.x0, win.y0], np.float64)
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                box_t = pts = None
                if boxes is not None:
                    b = (boxes[chunk].reshape(-1, 2, 2) - offset).reshape(-1, 4)
                    box_t = tf.apply_boxes_torch(
                        torch.as_tensor(b, dtype=torch.float32, device=device), (h, w)
                    )
                if points is not None:
                    c = tf.apply_coords_torch(
                        torch.as_tensor(points[chunk] - offset, dtype=torch.float32, device=device),
                        (h, w),
                    )
                    pts = (c, torch.as_tensor(point_labels[chunk], device=device))
                sparse, dense = model.prompt_encoder(points=pts, boxes=box_t, masks=None)
                low, iou = model.mask_decoder(
                    image_embeddings=emb,
                    image_pe=pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                )
                best = iou.argmax(dim=1)
                rows = torch.arange(len(chunk), device=low.device)
                low, sc = low[rows, best][:, None], iou[rows, best]
                logits = model.postprocess_masks(low.float(), input_size, (h, w))
                masks = (logits[:, 0] > model.mask_threshold).cpu().numpy()
                scores[chunk] = sc.float().cpu().numpy()
                for j, i in enumerate(chunk):
                    crops[i], bbs[i] = _crop_mask(masks[j], win.y0, win.x0)
    return crops, bbs, scores


#: Side (section pixels) of the zoom window around a points-only prompt, before the margin.
POINT_WINDOW = 32


def zoom_windows(extents: np.ndarray, margin: float, min_side: float = 8.0) -> np.ndarray:
    """Square zoom windows ``(x0, y0, x1, y1)`` (float, section pixels) around prompt extents.

    The window is centred on the prompt and its side is the prompt's longer side grown by
    ``margin`` of it on each side; it may reach outside the section (zero padding).

    >>> zoom_windows(np.array([[10., 20., 30., 30.]]), 0.25).tolist()
    [[5.0, 10.0, 35.0, 40.0]]
    """
    ext = np.asarray(extents, np.float64).reshape(-1, 4)
    side = np.maximum((ext[:, 2:] - ext[:, :2]).max(axis=1) * (1 + 2 * margin), min_side)
    centre = (ext[:, :2] + ext[:, 2:]) / 2
    return np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], axis=1)


def _decode_each(decoder, emb, pe, sparse, dense, multimask):
    """``MaskDecoder`` forward with one image embedding per prompt (no repeat over prompts)."""
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
    iou = decoder.iou_prediction_head(hs[:, 0, :])
    sl = slice(1, None) if multimask else slice(0, 1)
    return masks[:, sl], iou[:, sl]


def _predict_zoom(sam, u8, boxes, points, point_labels, batch_size, multimask):
    import torch
    import torch.nn.functional as F
    from torchvision.ops import roi_align

    from dendrosam.segment.device import autocast

    model, arch, device = sam.model, sam.arch, sam.device
    ny, nx = u8.shape
    n = len(boxes) if boxes is not None else len(points)
    ext = prompt_extents(boxes, points, n)
    if boxes is None:  # points only: a fixed-size window around the points
        c = (ext[:, :2] + ext[:, 2:]) / 2
        half = np.maximum((ext[:, 2:] - ext[:, :2]).max(axis=1), POINT_WINDOW) / 2
        ext = np.concatenate([c - half[:, None], c + half[:, None]], axis=1)
    wins = zoom_windows(ext, float(arch.zoom_margin))
    size = arch.img_size
    scale = size / (wins[:, 2] - wins[:, 0])
    image = torch.from_numpy(np.ascontiguousarray(u8)).to(device, torch.float32)[None, None]
    pe = model.prompt_encoder.get_dense_pe()
    crops: list = [None] * n
    bbs = np.zeros((n, 4), np.int64)
    scores = np.zeros(n, np.float32)
    with autocast(device):
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            rois = torch.as_tensor(
                np.concatenate([np.zeros((len(idx), 1)), wins[idx]], axis=1),
                dtype=torch.float32, device=device,
            )
            x = roi_align(image, rois, (size, size), 1.0, sampling_ratio=2, aligned=True)
            emb = model.image_encoder(model.preprocess(x.expand(-1, 3, -1, -1)))
            s = scale[idx]
            box_t = pts = None
            if boxes is not None:
                b = (boxes[idx].reshape(-1, 2, 2) - wins[idx, None, :2]) * s[:, None, None]
                box_t = torch.as_tensor(b.reshape(-1, 4), dtype=torch.float32, device=device)
            if points is not None:
                c = (points[idx] - wins[idx, None, :2]) * s[:, None, None]
                pts = (
                    torch.as_tensor(c, dtype=torch.float32, device=device),
                    torch.as_tensor(point_labels[idx], device=device),
                )
            sparse, dense = model.prompt_encoder(points=pts, boxes=box_t, masks=None)
            low, iou = _decode_each(model.mask_decoder, emb, pe, sparse, dense, multimask)
            best = iou.argmax(dim=1)
            rows = torch.arange(len(idx), device=low.device)
            low, sc = low[rows, best][:, None].float(), iou[rows, best].float()
            scores[idx] = sc.cpu().numpy()
            for j, i in enumerate(idx):
                _paste_zoom(low[j:j + 1], wins[i], ny, nx, model.mask_threshold, crops, bbs, i, F)
    return crops, bbs, scores


def _paste_zoom(low, win, ny, nx, threshold, crops, bbs, i, F):
    """Resample one crop's logits back onto the section pixels its window covers."""
    import torch

    x0, y0, x1, y1 = win
    px0, py0 = int(max(np.floor(x0), 0)), int(max(np.floor(y0), 0))
    px1, py1 = int(min(np.ceil(x1), nx)), int(min(np.ceil(y1), ny))
    if px1 <= px0 or py1 <= py0:
        crops[i], bbs[i] = np.zeros((0, 0), bool), (py0, px0, py0, px0)
        return
    gx = ((torch.arange(px0, px1, device=low.device) + 0.5 - x0) / (x1 - x0)) * 2 - 1
    gy = ((torch.arange(py0, py1, device=low.device) + 0.5 - y0) / (y1 - y0)) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    logits = F.grid_sample(low, grid.float(), mode="bilinear", align_corners=False)
    crops[i], bbs[i] = _crop_mask((logits[0, 0] > threshold).cpu().numpy(), py0, px0)
