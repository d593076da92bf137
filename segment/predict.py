"""Prompted SAM inference on one section: embed once, decode prompts in batches.

Two paths, chosen by the architecture:

- **classic** (``arch.zoom_margin is None``): the section (or each tile of a large section, see
  :mod:`dendrosam.segment.tiling`) is embedded once; all prompts routed to it are decoded
  against that embedding in chunks of ``batch_size``; each mask is resampled from the low-res
  logits only where they can be positive (:func:`dendrosam.segment.decode.logits_to_crops`).
- **zoom** (``arch.zoom_margin`` set): each prompt box gets its own square crop (the box grown by
  the margin, resampled to ``img_size``, :mod:`dendrosam.segment.zoom`); crops go through the
  image encoder in batches and each prompt is decoded against its own embedding. No tiling.
  Windows, crops, prompt coordinates and the paste back are :mod:`dendrosam.segment.zoom`'s, the
  functions training uses, so a box gives the network bit-identical input in both.

Masks are returned cropped to their bounding box (:class:`PromptedMasks`), so a thousand
prompts on an 8k section do not need a thousand full-size arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrosam.segment.preprocess import normalize_section

__all__ = ["PromptedMasks", "predict_masks", "prompt_extents", "default_batch_size"]

#: Prompts per decoder call on the CPU. ``MaskDecoder`` copies the image embedding once per
#: prompt (4 MB each for vit_b); 4 at a time stays in cache and was 2x faster than 20 at once.
CPU_BATCH_SIZE = 4
#: Prompts per decoder call on accelerators.
GPU_BATCH_SIZE = 64


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
    stability : ndarray of float32, shape (N,)
        Stability score of each mask (:func:`dendrosam.segment.decode.stability_score`).
    """

    crops: tuple[np.ndarray, ...]
    bboxes: np.ndarray
    scores: np.ndarray
    shape: tuple[int, int]
    stability: np.ndarray

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


def default_batch_size(device: str) -> int:
    """Prompts (and zoom crops) per forward call: small on the CPU, large on accelerators."""
    return CPU_BATCH_SIZE if str(device).startswith("cpu") else GPU_BATCH_SIZE


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


def _resized_input(window_u8: np.ndarray, long_side: int, device: str):
    """``(1, 3, h', w')`` float32 window, longest side resized to ``long_side`` (aspect kept).

    ``ResizeLongestSide.apply_image_torch`` is not used: it reads the target size from the
    batch and channel axes (``shape[0], shape[1]``) and so distorts every image.
    """
    import torch
    import torch.nn.functional as F
    from segment_anything.utils.transforms import ResizeLongestSide

    t = torch.from_numpy(np.ascontiguousarray(window_u8)).to(device=device, dtype=torch.float32)
    size = ResizeLongestSide.get_preprocess_shape(*window_u8.shape, long_side)
    x = F.interpolate(t[None, None], size, mode="bilinear", align_corners=False, antialias=True)
    return x.expand(1, 3, *size)


def predict_masks(
    sam,
    image2d: np.ndarray,
    boxes: np.ndarray | None = None,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    batch_size: int | None = None,
    multimask: bool = True,
    tile_size: int | None = None,
    halo: int | None = None,
    normalize: bool = True,
    precision: str = "auto",
    tta: int = 1,
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
    batch_size : int or None
        Prompts decoded (and, on the zoom path, crops encoded) per forward call
        (default :func:`default_batch_size` of the model's device).
    multimask : bool
        Predict three masks per prompt and keep the one with the best predicted IoU.
    tile_size : int or None
        Classic path: side of the tiles in section pixels. ``None``: the whole section is one
        window when it fits ``arch.img_size``, otherwise tiles of ``arch.img_size``.
    halo : int or None
        Context each prompt needs inside its tile (default ``tile_size // 8``).
    normalize : bool
        Stretch intensities with :func:`normalize_section` (keep True unless already uint8).
    precision : {"auto", "float32", "bfloat16", "float16"}
        Compute precision (:func:`dendrosam.segment.device.autocast_dtype`).
    tta : {1, 2, 4, 8}
        Zoom path: answer each prompt in this many orientations of its crop (flips and quarter
        turns, :mod:`dendrosam.segment.augment`) and average the mask logits and scores; costs
        ``tta`` image-encoder passes per prompt. The classic path ignores it.

    Returns
    -------
    PromptedMasks
    """
    from dendrosam.errors import InputError

    image = np.asarray(image2d)
    if image.ndim != 2:
        raise InputError(f"expected a 2D section (Y, X), got shape {image.shape}")
    if batch_size is None:
        batch_size = default_batch_size(sam.device)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    boxes, points, point_labels, n = _validate(boxes, points, point_labels, image.shape)
    shape = (int(image.shape[0]), int(image.shape[1]))
    if n == 0:
        return PromptedMasks((), np.zeros((0, 4), np.int64), np.zeros(0, np.float32), shape,
                             np.zeros(0, np.float32))
    u8 = normalize_section(image) if normalize else image.astype(np.uint8, copy=False)
    if sam.arch.zoom_margin is not None:
        crops, bbs, scores, stab = _predict_zoom(
            sam, u8, boxes, points, point_labels, batch_size, multimask, precision, tta
        )
    else:
        crops, bbs, scores, stab = _predict_classic(
            sam, u8, boxes, points, point_labels, batch_size, multimask, tile_size, halo,
            precision,
        )
    return PromptedMasks(
        tuple(crops), np.asarray(bbs, np.int64).reshape(-1, 4), np.asarray(scores, np.float32), shape,
        stab,
    )


def _predict_classic(sam, u8, boxes, points, point_labels, batch_size, multimask, tile_size, halo,
                     precision):
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    from dendrosam.segment.decode import logits_to_crops, select_best, stability_score
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
    stab = np.zeros(n, np.float32)
    pe = None
    with autocast(device, precision=precision):
        for w_idx in np.unique(assignment):
            win = windows[w_idx]
            idx = np.flatnonzero(assignment == w_idx)
            h, w = win.shape
            tf = ResizeLongestSide(win.long_side)
            x = _resized_input(u8[win.y0:win.y1, win.x0:win.x1], win.long_side, device)
            input_size = (int(x.shape[-2]), int(x.shape[-1]))
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
                low, sc = select_best(low, iou, multimask)
                scores[chunk] = sc.cpu().numpy()
                stab[chunk] = stability_score(low, model.mask_threshold)
                pieces = logits_to_crops(low, model.mask_threshold, input_size, (h, w),
                                         arch.img_size, origin=(win.y0, win.x0))
                for i, (crop, bb) in zip(chunk, pieces):
                    crops[i], bbs[i] = crop, bb
    return crops, bbs, scores, stab


def _predict_zoom(sam, u8, boxes, points, point_labels, batch_size, multimask, precision, tta=1):
    """One crop per prompt, with the training geometry of :mod:`dendrosam.segment.zoom`."""
    import torch

    from dendrosam.segment.augment import (
        invert_image, symmetries, transform_boxes, transform_image, transform_points,
    )
    from dendrosam.segment.decode import crop_to_bbox, decode_per_prompt, select_best, stability_score
    from dendrosam.segment.device import autocast
    from dendrosam.segment.zoom import (
        crop_windows, paste_logits, point_windows, to_crop_coords, zoom_windows,
    )

    model, arch, device = sam.model, sam.arch, sam.device
    views = symmetries(int(tta))
    n = len(boxes) if boxes is not None else len(points)
    margin = float(arch.zoom_margin)
    if boxes is None:  # points only: a fixed-size window around the points
        wins = point_windows(points, margin)
    else:
        wins = zoom_windows(prompt_extents(boxes, points, n), margin)
    size = arch.img_size
    image = torch.from_numpy(np.ascontiguousarray(u8)).to(device, torch.float32)
    pe = model.prompt_encoder.get_dense_pe()
    crops: list = [None] * n
    bbs = np.zeros((n, 4), np.int64)
    scores = np.zeros(n, np.float32)
    stab = np.zeros(n, np.float32)
    with autocast(device, precision=precision):
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            x = crop_windows(image, wins[idx], size)
            b = None if boxes is None else to_crop_coords(boxes[idx], wins[idx], size)
            p = None if points is None else to_crop_coords(points[idx], wins[idx], size)
            low = sc = 0.0
            for sym in views:  # each view's best mask, brought back and averaged (logits)
                emb = model.image_encoder(model.preprocess(transform_image(x, sym).expand(-1, 3, -1, -1)))
                box_t = pts = None
                if b is not None:
                    box_t = torch.as_tensor(transform_boxes(b, sym, size), dtype=torch.float32, device=device)
                if p is not None:
                    pts = (
                        torch.as_tensor(transform_points(p, sym, size), dtype=torch.float32, device=device),
                        torch.as_tensor(point_labels[idx], device=device),
                    )
                sparse, dense = model.prompt_encoder(points=pts, boxes=box_t, masks=None)
                view, iou = decode_per_prompt(model.mask_decoder, emb, pe, sparse, dense)
                view, view_sc = select_best(view, iou, multimask)
                low, sc = low + invert_image(view, sym), sc + view_sc
            low, sc = low / len(views), sc / len(views)
            scores[idx] = sc.cpu().numpy()
            stab[idx] = stability_score(low, model.mask_threshold)
            for i, ((y0, x0, y1, x1), lg) in zip(idx, paste_logits(low, wins[idx], u8.shape)):
                crops[i], bbs[i] = crop_to_bbox((lg > model.mask_threshold).cpu().numpy(), y0, x0)
    return crops, bbs, scores, stab
