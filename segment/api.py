"""``segment_slices``: prompts (detector or ground truth) -> SAM masks -> 2D labels, per section."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import ConfigError, InputError
from dendrosam.segment.masks import OVERLAP_MODES

__all__ = ["SegmentConfig", "SegmentationResult", "segment_slices", "PROMPT_MODES", "OVERLAP_MODES"]

PROMPT_MODES = ("detector", "gt-boxes", "gt-points")
TABLE_COLUMNS = ["z", "id", "x0", "y0", "x1", "y1", "score", "stability", "detector_score", "source"]


@dataclass(frozen=True)
class SegmentConfig:
    """Settings of :func:`segment_slices` (defaults suit the shipped models).

    Attributes
    ----------
    conf, iou, max_det : float, float, int
        Detector score threshold, NMS IoU and maximum boxes per section.
    detector_tile : int or None
        Detector tile side for large sections (``None``: whole section).
    batch_size : int or None
        Prompts per SAM decoder call (crops per encoder call on the zoom path); ``None``:
        :func:`dendrosam.segment.predict.default_batch_size` of the SAM's device.
    multimask : bool
        Keep the best of SAM's three masks.
    tile_size : int or None
        Classic SAM path tile side (``None``: automatic, see :func:`predict_masks`).
    min_size : int
        Drop 2D fragments smaller than this (pixels).
    fill_holes : bool
        Fill holes of each mask.
    overlap : {"score", "smaller"}
        Which mask owns pixels claimed by several (:func:`dendrosam.segment.masks.masks_to_labels`).
    n_points, negative : int, bool
        ``gt-points`` mode: positive points per object, plus one negative point.
    fill : bool
        Dense output: after the masks are painted, every unlabelled pixel goes to a new object
        (:func:`dendrosam.segment.masks.fill_unlabelled`, seeded watershed on the image); filled
        objects have no row in the prompt table.
    fill_seed_distance : int
        Smallest distance between two new fill objects' seeds (pixels).
    cut : bool
        Cut each painted mask where it holds several bright cell interiors, before the fill
        (:func:`dendrosam.segment.masks.split_at_interiors`): a mask that leaked across a
        membrane becomes pieces that linking can keep apart. The largest piece keeps the
        prompt's id; the other pieces have no row in the prompt table.
    cut_h : float
        Smallest interior height (standard deviations of the smoothed section) that seeds a cut.
    precision : {"auto", "float32", "bfloat16", "float16"}
        SAM compute precision (:func:`dendrosam.segment.device.autocast_dtype`): ``"auto"`` is
        float32 on the CPU and bf16/fp16 on CUDA; ``"bfloat16"`` speeds up CPUs with native bf16.
    tta : {1, 2, 4, 8}
        Orientations each prompt is answered in, mask logits averaged (test-time augmentation,
        :mod:`dendrosam.segment.augment`; zoom-path SAMs such as the shipped ones). Costs ``tta``
        image-encoder passes per prompt.
    """

    conf: float = 0.25
    iou: float = 0.5
    max_det: int = 1000
    detector_tile: int | None = None
    batch_size: int | None = None
    multimask: bool = True
    tile_size: int | None = None
    min_size: int = 4
    fill_holes: bool = False
    overlap: str = "score"
    n_points: int = 1
    negative: bool = False
    precision: str = "auto"
    fill: bool = False
    fill_seed_distance: int = 3
    cut: bool = False
    cut_h: float = 1.5
    tta: int = 1


@dataclass(frozen=True)
class SegmentationResult:
    """Per-section 2D instance labels and the prompt table.

    Attributes
    ----------
    labels : ndarray or zarr.Array of uint32, shape (Z, Y, X)
        Independent ids per section, 0 = background. In ``gt-*`` modes a mask carries the id of
        the GT object that prompted it; in ``detector`` mode, the box's rank + 1.
    table : pandas.DataFrame
        One row per prompt: ``z``, ``id`` (label in ``labels``, 0 when the mask was dropped),
        the prompt box ``x0 y0 x1 y1``, SAM ``score`` (predicted IoU), ``stability`` (stability
        score), ``detector_score`` (NaN for GT prompts)
        and ``source``.
    """

    labels: Any
    table: Any


def _section_prompts(mode, section, gt_section, detector, config, pixel_nm=None):
    from dendrosam.segment.detector import detect
    from dendrosam.segment.prompts import prompts_from_gt

    if mode == "detector":
        b = detect(detector, section, conf=config.conf, iou=config.iou, max_det=config.max_det,
                   tile=config.detector_tile, pixel_nm=pixel_nm)
        ids = np.arange(1, len(b) + 1, dtype=np.uint64)
        return ids, b.xyxy, None, None, b.scores
    kind = "boxes" if mode == "gt-boxes" else "points"
    p = prompts_from_gt(gt_section, kind, n_points=config.n_points, negative=config.negative)
    nan = np.full(len(p), np.nan, np.float32)
    return p.ids, p.boxes, p.points, p.point_labels, nan


def _open_output(out, shape):
    import zarr

    try:
        return zarr.open_array(
            str(out), mode="w", shape=shape, chunks=(1, *shape[1:]), dtype=np.uint32,
            fill_value=0, zarr_format=3,
        )
    except OSError as exc:
        from dendrosam.errors import OutputError

        raise OutputError(f"output {out}: cannot create zarr array ({exc})") from None


def segment_slices(
    images,
    sam,
    detector=None,
    prompts: str = "detector",
    gt=None,
    config: SegmentConfig = SegmentConfig(),
    progress: bool = True,
    out: str | os.PathLike | None = None,
    pixel_nm: float | None = None,
) -> SegmentationResult:
    """Segment every section of a stack independently.

    Parameters
    ----------
    images : array-like, shape (Z, Y, X)
        Any object with ``shape`` and ``__getitem__`` (numpy, zarr, dask, a lazy volume); one
        section is read at a time.
    sam : SamModel
        From :func:`load_sam`.
    detector : Detector, optional
        Required for ``prompts="detector"``.
    prompts : {"detector", "gt-boxes", "gt-points"}
        Where prompts come from; ``gt-*`` use one prompt per object of ``gt`` (the poster's
        evaluation protocol).
    gt : array-like, shape (Z, Y, X), optional
        Ground-truth labels for ``gt-*`` modes.
    config : SegmentConfig
    progress : bool
        Show a tqdm progress bar.
    out : path, optional
        Write labels to a zarr array there, one section per chunk, instead of memory.
    pixel_nm : float, optional
        In-plane pixel size of the sections (nm). A detector trained at a pixel size
        (:attr:`~dendrosam.segment.detector.Detector.pixel_nm`, the shipped one included) sees
        the sections resampled to it; ``None`` uses them as they are.

    Returns
    -------
    SegmentationResult
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from dendrosam.segment.masks import fill_unlabelled, masks_to_labels, split_at_interiors
    from dendrosam.segment.predict import predict_masks, prompt_extents

    from dendrosam.segment.augment import symmetries
    from dendrosam.segment.device import autocast_dtype

    autocast_dtype(sam.device, config.precision)  # a wrong precision fails before any work
    symmetries(config.tta)  # so does a wrong number of views
    if config.batch_size is not None and config.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {config.batch_size}")
    if not config.cut_h > 0:
        raise ConfigError(f"--cut-h must be > 0, got {config.cut_h}")
    if config.overlap not in OVERLAP_MODES:
        raise ConfigError(f"overlap: {config.overlap!r} is not one of {', '.join(OVERLAP_MODES)}")
    if prompts not in PROMPT_MODES:
        raise ConfigError(f"--prompts: {prompts!r} is not one of {', '.join(PROMPT_MODES)}")
    shape = tuple(int(s) for s in images.shape)
    if len(shape) != 3:
        raise InputError(f"images must be a (Z, Y, X) stack, got shape {shape}")
    if prompts == "detector" and detector is None:
        raise ConfigError("--prompts detector needs a detector (load_detector / --detector)")
    if prompts != "detector":
        if gt is None:
            raise ConfigError(f"--prompts {prompts} needs ground-truth labels (--gt)")
        if tuple(gt.shape) != shape:
            raise InputError(f"--gt: shape {tuple(gt.shape)} does not match the images {shape}")
    labels = _open_output(out, shape) if out is not None else np.zeros(shape, np.uint32)
    rows = []
    for z in tqdm(range(shape[0]), disable=not progress, desc="segment", unit="section"):
        section = np.asarray(images[z])
        gt_z = None if gt is None else np.asarray(gt[z])
        ids, boxes, pts, plabels, det_scores = _section_prompts(prompts, section, gt_z, detector,
                                                                config, pixel_nm)
        pm = predict_masks(sam, section, boxes=boxes, points=pts, point_labels=plabels,
                           batch_size=config.batch_size, multimask=config.multimask,
                           tile_size=config.tile_size, precision=config.precision, tta=config.tta)
        lab = masks_to_labels(pm, min_size=config.min_size, fill_holes=config.fill_holes,
                              overlap=config.overlap)
        lut = np.concatenate([[0], ids]).astype(np.uint32)
        lab = lut[lab]
        kept = np.isin(ids, np.unique(lab[lab > 0]))
        if config.cut:
            lab = split_at_interiors(lab, section, h=config.cut_h)
        if config.fill:
            lab = fill_unlabelled(lab, section, seed_distance=config.fill_seed_distance)
        labels[z] = lab
        ext = prompt_extents(boxes, pts, len(ids))
        for k in range(len(ids)):
            rows.append((z, int(ids[k]) if kept[k] else 0, *map(float, ext[k]),
                         float(pm.scores[k]), float(pm.stability[k]), float(det_scores[k]), prompts))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return SegmentationResult(labels=labels, table=table)
