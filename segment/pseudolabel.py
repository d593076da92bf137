"""Pseudo-labelling: detector -> SAM on unlabelled sections, confident masks become training labels.

One round: every section is detected (:func:`dendrosam.segment.detect`) and segmented
(:func:`dendrosam.segment.predict_masks`); masks with predicted IoU >= ``min_score``, stability
score >= ``min_stability`` (Segment Anything's automatic-mask filters) and at least ``min_area``
pixels are painted into a label image (:func:`masks_to_labels`, the best mask owns contested
pixels). :func:`pseudolabel_rounds` repeats: label, fine-tune SAM on the labels (``train_sam``
starting from the current model), optionally retrain the detector on them too (starting from the
current weights), validate both on held-out GT, and write one metrics line per round, so the user
sees whether the loop helps.

Unlabelled pixels of a pseudo-label image are treated as background by both trainings: SAM's
loss only looks at each object's own window, but the detector learns that an object nobody
labelled is no object, so retraining the detector wants strict SAM thresholds and a check of its
validation recall (both reported).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = ["PseudoLabelConfig", "PseudoLabels", "pseudolabel_volume", "pseudolabel_rounds"]


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Which masks are kept.

    Attributes
    ----------
    min_score : float
        SAM's predicted IoU.
    min_stability : float
        Stability score (:func:`dendrosam.segment.decode.stability_score`); Segment Anything's
        automatic mask generator uses 0.95 with its large models.
    min_area : int
        Pixels.
    conf : float
        Detector score threshold.
    """

    min_score: float = 0.8
    min_stability: float = 0.85
    min_area: int = 20
    conf: float = 0.25


@dataclass(frozen=True)
class PseudoLabels:
    """Labels (Z, Y, X) uint32 (per-section ids, 0 = unlabelled), counts of proposed/kept masks,
    and the mean predicted IoU and stability of the kept ones."""

    labels: np.ndarray
    proposed: int
    kept: int
    mean_score: float
    mean_stability: float = float("nan")


def pseudolabel_volume(raw: np.ndarray, sam, detector=None, boxes=None,
                       config: PseudoLabelConfig = PseudoLabelConfig(),
                       pixel_nm: float | None = None) -> PseudoLabels:
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
    pixel_nm : float, optional
        In-plane pixel size of ``raw`` (nm), for a detector trained at a pixel size.

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
    scores_kept, stab_kept = [], []
    for z in range(len(raw)):
        u8 = normalize_section(raw[z])
        if boxes is not None:
            bx = np.asarray(boxes[z], np.float64).reshape(-1, 4)
        else:
            from dendrosam.segment.detector import detect

            bx = detect(detector, u8, conf=config.conf, pixel_nm=pixel_nm).xyxy
        if not len(bx):
            continue
        pm = predict_masks(sam, u8, boxes=bx, normalize=False)
        ok = ((pm.scores >= config.min_score) & (pm.stability >= config.min_stability)
              & (pm.areas >= config.min_area))
        proposed, kept = proposed + len(pm), kept + int(ok.sum())
        if ok.any():
            out[z] = masks_to_labels(pm.masks[ok], pm.scores[ok], min_size=config.min_area)
            scores_kept.append(pm.scores[ok])
            stab_kept.append(pm.stability[ok])

    def mean(parts):
        return float(np.concatenate(parts).mean()) if parts else float("nan")

    return PseudoLabels(out, proposed, kept, mean(scores_kept), mean(stab_kept))


def _detector_round(raw, labels, val_pairs, current, work, config, pixel_nm=None, det_pixel_nm=None):
    """Fine-tune the detector on one round's pseudo-labels; return the new weights' path.

    A detector trained at a pixel size (``det_pixel_nm``) keeps it: the sections (of
    ``pixel_nm``) are resampled to it first.
    """
    from dendrosam.segment.train_detector import resample_pair, train_detector, write_yolo_dataset

    train = [(raw[z], labels[z]) for z in range(len(raw)) if labels[z].any()]
    if not train:
        return current
    val = val_pairs or train
    if det_pixel_nm is not None and pixel_nm is not None and pixel_nm != det_pixel_nm:
        train = [resample_pair(r, lab, pixel_nm / det_pixel_nm) for r, lab in train]
        val = [resample_pair(r, lab, pixel_nm / det_pixel_nm) for r, lab in val]
    yaml = write_yolo_dataset({"train": train, "val": val}, work / "data", config.min_size, config.tile)
    out = work / "detector.pt"
    train_detector(yaml, out, replace(config, model=str(current), pixel_nm=det_pixel_nm), work / "runs")
    return out


def pseudolabel_rounds(raw_path: str, sam_path: str, work: Path, rounds: int, train_config,
                       detector_path: str | None = None,
                       config: PseudoLabelConfig = PseudoLabelConfig(),
                       region: str = "", detector_config=None,
                       pixel_nm: float | None = None) -> list[dict]:
    """Label -> fine-tune -> validate, ``rounds`` times; one metrics line per round.

    Parameters
    ----------
    raw_path : str
        Unlabelled volume (any format ``open_volume`` reads).
    sam_path : str
        Starting SAM checkpoint.
    work : Path
        Folder for each round's labels, training runs and ``pseudolabel_metrics.jsonl``.
    rounds : int
    train_config : TrainSamConfig
        Settings for each SAM fine-tuning (its ``train_data``, ``init`` and ``work_dir`` are
        replaced; its ``val_data`` decides the reported metrics).
    detector_path : str or None
        YOLO weights (``None``: the shipped default).
    config : PseudoLabelConfig
    region : str
        Part of the raw volume to label, numpy-style (``"::4"``: every 4th section, the 40 nm
        protocol on a 10 nm FIB-SEM cube).
    detector_config : DetectorTrainConfig or None
        Also retrain the detector every round on the pseudo-labels, starting from the current
        weights, with these settings (its ``model`` is replaced); ``None``: SAM only.
    pixel_nm : float or None
        In-plane pixel size (nm) of the raw and validation volumes, for a detector trained at a
        pixel size (the shipped one is); ``None``: sections are used as they are.

    Returns
    -------
    list of dict
        The metrics lines: round, proposed/kept masks and their mean score/stability, SAM
        validation IoU before/after and ``improved``; with detector retraining also the detector's
        validation recall/precision before/after and ``detector_improved``.
    """
    import tifffile

    from dendrosam.segment.detector import DEFAULT_YOLO_PATH, load_detector
    from dendrosam.segment.sam import load_sam
    from dendrosam.segment.train_data import read_array
    from dendrosam.segment.train_detector import detector_scores
    from dendrosam.segment.train_eval import ValSet, evaluate_prompted
    from dendrosam.segment.train_sam import DataSpec, _load_sets, parse_region, train_sam

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    raw = read_array(raw_path, parse_region(region))
    sets = _load_sets(train_config.val_data)
    vals = [ValSet(n, r, l) for n, r, l in sets]
    val_pairs = [(r[z], l[z]) for _, r, l in sets for z in range(len(r))]

    def sam_score(sam):
        if not vals:
            return float("nan")
        return float(np.mean([evaluate_prompted(sam, v, train_config.min_area)["iou_mean"] for v in vals]))

    def det_score(det):
        if not val_pairs:
            return {"recall": float("nan"), "precision": float("nan")}
        return detector_scores(det, val_pairs, conf=config.conf, pixel_nm=pixel_nm)

    current, current_det = sam_path, Path(detector_path or DEFAULT_YOLO_PATH)
    sam = load_sam(current, device=train_config.device)
    det = load_detector(current_det, device=train_config.device)
    before = sam_score(sam)
    det_before = det_score(det) if detector_config is not None else None
    raw_tif = work / "raw.tif"
    tifffile.imwrite(raw_tif, raw, compression="zlib", photometric="minisblack")
    lines = []
    for r in range(1, rounds + 1):
        pl = pseudolabel_volume(raw, sam, det, config=config, pixel_nm=pixel_nm)
        lab_path = work / f"round{r}_labels.tif"
        tifffile.imwrite(lab_path, pl.labels, compression="zlib", photometric="minisblack")
        cfg = replace(train_config, train_data=(DataSpec(str(raw_tif), str(lab_path), "", "pseudo"),),
                      init=str(current), work_dir=str(work / f"round{r}"))
        res = train_sam(cfg, progress=False)
        current = str(res.checkpoint)
        sam = load_sam(current, device=train_config.device)
        after = sam_score(sam)
        line = {"round": r, "proposed": pl.proposed, "kept": pl.kept, "mean_score": pl.mean_score,
                "mean_stability": pl.mean_stability, "val_iou_before": before, "val_iou_after": after,
                "improved": bool(after > before), "checkpoint": current}
        if detector_config is not None:
            current_det = _detector_round(raw, pl.labels, val_pairs, current_det,
                                          work / f"round{r}_detector", detector_config,
                                          pixel_nm, det.pixel_nm)
            det = load_detector(current_det, device=train_config.device)
            det_after = det_score(det)
            line.update(det_recall_before=det_before["recall"], det_recall_after=det_after["recall"],
                        det_precision_before=det_before["precision"],
                        det_precision_after=det_after["precision"],
                        detector_improved=bool(det_after["recall"] > det_before["recall"]),
                        detector=str(current_det))
            det_before = det_after
        with open(work / "pseudolabel_metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        lines.append(line)
        before = after
    return lines
