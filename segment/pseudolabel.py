"""Pseudo-labelling: detector -> SAM on unlabelled sections, confident masks become training labels.

One round: every section is detected (:func:`dendrosam.segment.detect`) and segmented
(:func:`dendrosam.segment.predict_masks`); masks with predicted IoU >= ``min_score`` and at least
``min_area`` pixels are painted into a label image (:func:`masks_to_labels`, the best mask owns
contested pixels). :func:`pseudolabel_rounds` repeats: label, fine-tune SAM on the labels
(``train_sam`` starting from the current model), validate on held-out GT, and writes one metrics
line per round, so the user sees whether the loop helps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = ["PseudoLabelConfig", "PseudoLabels", "pseudolabel_volume", "pseudolabel_rounds"]


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Which masks are kept: ``min_score`` (SAM's predicted IoU), ``min_area`` pixels, detector ``conf``."""

    min_score: float = 0.8
    min_area: int = 20
    conf: float = 0.25


@dataclass(frozen=True)
class PseudoLabels:
    """Labels (Z, Y, X) uint32 (per-section ids, 0 = unlabelled) and counts of proposed/kept masks."""

    labels: np.ndarray
    proposed: int
    kept: int
    mean_score: float


def pseudolabel_volume(raw: np.ndarray, sam, detector=None, boxes=None,
                       config: PseudoLabelConfig = PseudoLabelConfig()) -> PseudoLabels:
    """Label every section of ``raw`` with confident SAM masks.

    Parameters
    ----------
    raw : ndarray, (Z, Y, X)
    sam : SamModel
    detector : Detector, optional
        Prompts from detection; or give ``boxes``.
    boxes : sequence of ndarray (N_z, 4), optional
        Prompt boxes per section (``x0, y0, x1, y1``), instead of a detector.
    config : PseudoLabelConfig

    Returns
    -------
    PseudoLabels
    """
    from dendrosam.errors import InputError
    from dendrosam.segment.masks import masks_to_labels
    from dendrosam.segment.predict import predict_masks
    from dendrosam.segment.preprocess import normalize_section

    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise InputError(f"pseudo-labelling needs a (Z, Y, X) volume, got shape {raw.shape}")
    if detector is None and boxes is None:
        raise InputError("pseudo-labelling needs a detector or prompt boxes")
    out = np.zeros(raw.shape, np.uint32)
    proposed = kept = 0
    scores_kept = []
    for z in range(len(raw)):
        u8 = normalize_section(raw[z])
        if boxes is not None:
            bx = np.asarray(boxes[z], np.float64).reshape(-1, 4)
        else:
            from dendrosam.segment.detector import detect

            bx = detect(detector, u8, conf=config.conf).xyxy
        if not len(bx):
            continue
        pm = predict_masks(sam, u8, boxes=bx, normalize=False)
        ok = (pm.scores >= config.min_score) & (pm.areas >= config.min_area)
        proposed, kept = proposed + len(pm), kept + int(ok.sum())
        if ok.any():
            out[z] = masks_to_labels(pm.masks[ok], pm.scores[ok], min_size=config.min_area)
            scores_kept.append(pm.scores[ok])
    mean = float(np.concatenate(scores_kept).mean()) if scores_kept else float("nan")
    return PseudoLabels(out, proposed, kept, mean)


def pseudolabel_rounds(raw_path: str, sam_path: str, work: Path, rounds: int, train_config,
                       detector_path: str | None = None,
                       config: PseudoLabelConfig = PseudoLabelConfig()) -> list[dict]:
    """Label -> fine-tune -> validate, ``rounds`` times; one metrics line per round.

    Parameters
    ----------
    raw_path : str
        Unlabelled volume (any format ``open_volume`` reads).
    sam_path : str
        Starting SAM checkpoint.
    work : Path
        Folder for each round's labels, training run and ``pseudolabel_metrics.jsonl``.
    rounds : int
    train_config : TrainSamConfig
        Settings for each fine-tuning (its ``train_data``, ``init`` and ``work_dir`` are replaced;
        its ``val_data`` decides the reported metric).
    detector_path : str or None
        YOLO weights (``None``: the shipped default).
    config : PseudoLabelConfig

    Returns
    -------
    list of dict
        The metrics lines (round, kept masks, validation IoU before/after, improved).
    """
    import tifffile

    from dendrosam.segment.detector import load_detector
    from dendrosam.segment.sam import load_sam
    from dendrosam.segment.train_data import read_array
    from dendrosam.segment.train_eval import ValSet, evaluate_prompted
    from dendrosam.segment.train_sam import DataSpec, _load_sets, train_sam

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    raw = read_array(raw_path)
    det = load_detector(detector_path, device=train_config.device)
    vals = [ValSet(n, r, l) for n, r, l in _load_sets(train_config.val_data)]

    def score(sam):
        if not vals:
            return float("nan")
        return float(np.mean([evaluate_prompted(sam, v, train_config.min_area)["iou_mean"] for v in vals]))

    current = sam_path
    sam = load_sam(current, device=train_config.device)
    before = score(sam)
    lines = []
    for r in range(1, rounds + 1):
        pl = pseudolabel_volume(raw, sam, det, config=config)
        lab_path = work / f"round{r}_labels.tif"
        tifffile.imwrite(lab_path, pl.labels, compression="zlib")
        raw_tif = work / "raw.tif"
        if not raw_tif.exists():
            tifffile.imwrite(raw_tif, raw, compression="zlib")
        cfg = replace(train_config, train_data=(DataSpec(str(raw_tif), str(lab_path), "", "pseudo"),),
                      init=str(current), work_dir=str(work / f"round{r}"))
        res = train_sam(cfg, progress=False)
        current = str(res.checkpoint)
        sam = load_sam(current, device=train_config.device)
        after = score(sam)
        line = {"round": r, "proposed": pl.proposed, "kept": pl.kept, "mean_score": pl.mean_score,
                "val_iou_before": before, "val_iou_after": after,
                "improved": bool(after > before), "checkpoint": current}
        with open(work / "pseudolabel_metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        lines.append(line)
        before = after
    return lines
