"""Train the YOLO detector from instance labels (users have masks, not boxes).

:func:`masks_to_yolo` turns one label section into YOLO rows ``(class 0, cx, cy, w, h)``
normalised to the image size (objects smaller than ``min_size`` pixels dropped);
:func:`yolo_to_boxes` is its exact inverse. :func:`write_yolo_dataset` writes PNGs of
:func:`normalize_section` output (the pixels inference sees), label files and ``data.yaml``;
:func:`train_detector` trains through ultralytics offline (``import_ultralytics``) and copies the
best ``.pt`` out.

Pixel size: a detector trained with ``pixel_nm`` sees every section resampled to that pixel size
(:func:`resample_pair`), so one model covers data from 4 to 15 nm pixels at one object scale;
:func:`train_detector` stamps ``pixel_nm`` into the checkpoint, and
:func:`dendrosam.segment.detector.detect` resamples sections the same way at inference.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dendrosam.errors import ConfigError, InputError
from dendrosam.segment.preprocess import normalize_section

__all__ = ["masks_to_yolo", "yolo_to_boxes", "write_yolo_dataset", "DetectorTrainConfig",
           "train_detector", "default_detector_run", "refresh_detector_card", "resample_pair"]

#: In-plane pixel sizes (nm) of the project's training data. gala's is not stated; it is a
#: FlyEM FIB-SEM crop like medulla, taken as 10 nm.
DEFAULT_DATA_PIXEL_NM = {"medulla": 10.0, "isbi": 4.0, "gala": 10.0}


def resample_pair(raw: np.ndarray, labels: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize a section and its labels by ``scale`` (new side = ``round(side * scale)``).

    ``raw`` is resampled like inference does (:func:`dendrosam.segment.detector.resample_section`,
    before the intensity normalisation);
    ``labels`` take the id of the source pixel under each new pixel's centre (nearest), so
    ids are never mixed.

    Examples
    --------
    >>> lab = np.array([[1, 2], [3, 4]])
    >>> resample_pair(lab.astype(np.uint8), lab, 2.0)[1].tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    """
    from dendrosam.segment.detector import resample_section

    lab = np.asarray(labels)
    if scale == 1.0:
        return np.asarray(raw), lab
    img = resample_section(np.asarray(raw), scale)
    ny, nx = img.shape
    rows = np.minimum(((np.arange(ny) + 0.5) * lab.shape[0] / ny).astype(np.int64), lab.shape[0] - 1)
    cols = np.minimum(((np.arange(nx) + 0.5) * lab.shape[1] / nx).astype(np.int64), lab.shape[1] - 1)
    return img, lab[np.ix_(rows, cols)]


def masks_to_yolo(labels2d: np.ndarray, min_size: int = 4, pieces: bool = False) -> np.ndarray:
    """YOLO rows ``(0, cx, cy, w, h)`` (normalised) of every object of a label section.

    Parameters
    ----------
    labels2d : ndarray of int, (Y, X)
        Instance labels, 0 = background; one box per id.
    min_size : int
        Objects whose box is narrower or lower than this (pixels) are dropped.
    pieces : bool
        One box per 4-connected profile of an id instead of one per id
        (:func:`dendrosam.segment.train_eval.section_pieces`): a neuron that crosses the section in
        several places gives several boxes, one per cross-section.

    Returns
    -------
    ndarray of float64, (N, 5)

    Examples
    --------
    >>> lab = np.zeros((10, 20), int); lab[2:6, 4:8] = 3
    >>> np.round(masks_to_yolo(lab, 1), 6).tolist()
    [[0.0, 0.3, 0.4, 0.2, 0.4]]
    >>> lab[2:6, 12:16] = 3   # a second profile of id 3
    >>> len(masks_to_yolo(lab, 1)), len(masks_to_yolo(lab, 1, pieces=True))
    (1, 2)
    """
    from dendrosam.segment.train_data import box_of_masks
    from dendrosam.segment.train_eval import section_pieces

    lab = section_pieces(labels2d) if pieces else np.asarray(labels2d)
    _, boxes, _ = box_of_masks(lab)
    wh = boxes[:, 2:] - boxes[:, :2]
    boxes = boxes[(wh >= min_size).all(axis=1)]
    ny, nx = lab.shape
    scale = np.array([nx, ny, nx, ny], np.float64)
    xyxy = boxes / scale
    centre, size = (xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]
    return np.concatenate([np.zeros((len(boxes), 1)), centre, size], axis=1)


def yolo_to_boxes(rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`masks_to_yolo`: ``(x0, y0, x1, y1)`` pixel boxes (exclusive ends)."""
    r = np.asarray(rows, np.float64).reshape(-1, 5)
    ny, nx = shape
    half = r[:, 3:5] / 2
    xyxy = np.concatenate([r[:, 1:3] - half, r[:, 1:3] + half], axis=1)
    return xyxy * np.array([nx, ny, nx, ny], np.float64)


def box_matches(pred: np.ndarray, gt: np.ndarray, iou: float = 0.5) -> int:
    """Number of one-to-one (Hungarian) matches between two xyxy box sets with box IoU >= ``iou``.

    Examples
    --------
    >>> box_matches(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[1, 0, 11, 10]]))
    1
    """
    from scipy.optimize import linear_sum_assignment

    pred, gt = np.asarray(pred, np.float64).reshape(-1, 4), np.asarray(gt, np.float64).reshape(-1, 4)
    if not len(pred) or not len(gt):
        return 0
    lo = np.maximum(pred[:, None, :2], gt[None, :, :2])
    hi = np.minimum(pred[:, None, 2:], gt[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = lambda b: np.prod(b[:, 2:] - b[:, :2], axis=1)  # noqa: E731
    ious = inter / (area(pred)[:, None] + area(gt)[None, :] - inter)
    rows, cols = linear_sum_assignment(-ious)
    return int((ious[rows, cols] >= iou).sum())


def detector_scores(detector, pairs: Sequence[tuple[np.ndarray, np.ndarray]], conf: float = 0.25,
                    iou: float = 0.5, min_size: int = 4, pixel_nm: float | None = None,
                    pieces: bool = False, predictions: Sequence[np.ndarray] | None = None) -> dict:
    """Recall and precision of a detector against the boxes of GT objects (box IoU >= ``iou``).

    Parameters
    ----------
    detector : Detector
        From :func:`dendrosam.segment.load_detector`.
    pairs : sequence of (image, labels) sections
        GT boxes are the objects' boxes as written for training (:func:`masks_to_yolo`).
    conf, iou, min_size : float, float, int
        Detector score threshold, matching IoU, smallest GT box side (pixels).
    pixel_nm : float or None
        Pixel size of the sections (see :func:`~dendrosam.segment.detector.detect`).
    pieces : bool
        GT boxes per 4-connected profile of an id, not per id (:func:`masks_to_yolo`).
    predictions : sequence of ndarray, optional
        The detector's xyxy boxes per section at ``conf``, when already computed (then
        ``detector`` is not run).

    Returns
    -------
    dict
        ``recall``, ``precision``, ``n_gt``, ``n_pred``, ``conf``, ``iou``.
    """
    from dendrosam.segment.detector import detect

    n_gt = n_pred = n_match = 0
    for k, (image, labels) in enumerate(pairs):
        gt = yolo_to_boxes(masks_to_yolo(labels, min_size, pieces), labels.shape)
        pred = detect(detector, image, conf=conf, pixel_nm=pixel_nm).xyxy if predictions is None else predictions[k]
        n_gt, n_pred, n_match = n_gt + len(gt), n_pred + len(pred), n_match + box_matches(pred, gt, iou)
    return {"recall": n_match / max(n_gt, 1), "precision": n_match / max(n_pred, 1),
            "n_gt": n_gt, "n_pred": n_pred, "conf": conf, "iou": iou}


def write_yolo_dataset(
    splits: dict[str, Sequence[tuple[np.ndarray, np.ndarray]]], out: Path, min_size: int = 4,
    tile: int | None = None, pieces: bool = False,
) -> Path:
    """Write an ultralytics data set: ``images/<split>/*.png``, ``labels/<split>/*.txt``, ``data.yaml``.

    Parameters
    ----------
    splits : dict
        ``{"train": [(raw2d, labels2d), ...], "val": [...]}``.
    out : Path
        Folder to write (created).
    min_size : int
        See :func:`masks_to_yolo`.
    tile : int or None
        Cut sections larger than this into ``tile`` x ``tile`` pieces (objects cut by a tile edge
        keep their visible part).
    pieces : bool
        One box per 4-connected profile of each tile (see :func:`masks_to_yolo`).

    Returns
    -------
    Path
        The ``data.yaml`` file.
    """
    from PIL import Image

    out = Path(out)
    for split, pairs in splits.items():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        k = 0
        for raw, lab in pairs:
            u8 = normalize_section(np.asarray(raw))
            lab = np.asarray(lab)
            t = tile or max(lab.shape)
            for y in range(0, lab.shape[0], t):
                for x in range(0, lab.shape[1], t):
                    rows = masks_to_yolo(lab[y:y + t, x:x + t], min_size, pieces)
                    Image.fromarray(u8[y:y + t, x:x + t]).save(out / "images" / split / f"{k:05d}.png")
                    np.savetxt(out / "labels" / split / f"{k:05d}.txt", rows, fmt=["%d"] + ["%.6f"] * 4)
                    k += 1
    yaml = out / "data.yaml"
    names = {"path": str(out.resolve()), "train": "images/train",
             "val": "images/val" if "val" in splits else "images/train", "names": {0: "object"}}
    yaml.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in names.items()) + "\n")
    return yaml


@dataclass(frozen=True)
class DetectorTrainConfig:
    """YOLO training settings (see ultralytics' ``train`` arguments of the same names).

    ``pixel_nm``: the pixel size (nm) the training sections were resampled to
    (:func:`resample_pair`); stamped into the checkpoint so inference resamples to it too.
    ``None``: sections used as they are.
    ``pieces``: box targets per 4-connected profile of an id (one per cross-section), not per id
    (:func:`masks_to_yolo`).
    """

    model: str = "yolov8n.yaml"
    epochs: int = 50
    imgsz: int = 256
    batch: int = 16
    device: str = "cpu"
    seed: int = 0
    patience: int = 20
    workers: int = 0
    min_size: int = 4
    tile: int | None = 256
    pixel_nm: float | None = None
    pieces: bool = False


def train_detector(data_yaml: Path, out_pt: Path, config: DetectorTrainConfig = DetectorTrainConfig(),
                   project: Path | None = None) -> dict:
    """Train a YOLO model offline and copy its best weights to ``out_pt``; return the final metrics."""
    from dendrosam.segment._ultralytics import import_ultralytics

    if not Path(data_yaml).exists():
        raise InputError(f"{data_yaml}: no such data set file")
    if not (config.model.endswith(".yaml") or Path(config.model).exists()):
        raise ConfigError(f"--model {config.model!r}: give a model .yaml (e.g. yolov8n.yaml) or an existing .pt")
    ul = import_ultralytics()
    project = Path(project or Path(out_pt).parent / "yolo_runs").resolve()
    t0 = time.time()
    model = ul.YOLO(config.model)
    model.train(data=str(data_yaml), epochs=config.epochs, imgsz=config.imgsz, batch=config.batch,
                device=config.device, workers=config.workers, plots=False, seed=config.seed,
                deterministic=True, patience=config.patience, project=str(project), name="train",
                exist_ok=True, verbose=False, amp=False)
    run = project / "train"
    best = run / "weights" / "best.pt"
    if not best.exists():
        best = run / "weights" / "last.pt"
    Path(out_pt).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out_pt)
    stamp_pixel_size(out_pt, config.pixel_nm)
    return {"seconds": round(time.time() - t0, 1), "run": str(run),
            "results_csv": str(run / "results.csv")}


def stamp_pixel_size(path: Path, pixel_nm: float | None) -> None:
    """Record the detector's training pixel size in its checkpoint (key ``dendrosam``).

    Uses ultralytics' own ``strip_optimizer`` (fp16 weights, no optimizer state), which
    overlays the key on the checkpoint it has just written.
    """
    from dendrosam.segment._ultralytics import import_ultralytics

    import_ultralytics()
    from ultralytics.utils.torch_utils import strip_optimizer

    strip_optimizer(str(path), updates={"dendrosam": {"pixel_nm": None if pixel_nm is None else float(pixel_nm)}})


def default_validation(detector, val: Sequence[tuple[np.ndarray, np.ndarray]], n_medulla: int,
                       confs: Sequence[float] = (0.03, 0.05, 0.1, 0.25)) -> dict:
    """The model card's validation block: recall/precision on held-out medulla and ISBI per threshold.

    ``val`` holds the medulla sections first (``n_medulla`` of them), then the ISBI ones. Keys
    ``<set>_conf<c>`` count one GT box per id and section, ``<set>_pieces_conf<c>`` one per
    4-connected profile.
    """
    out: dict = {"protocol": "recall/precision of GT object boxes at box IoU >= 0.5 (Hungarian "
                             "matching), held-out sections; 'pieces': one GT box per 4-connected profile"}
    from dendrosam.segment.detector import detect

    px = DEFAULT_DATA_PIXEL_NM
    boxes: dict = {}  # the detector runs once per data set and threshold; both countings score it
    for pieces in (False, True):
        tag = "_pieces" if pieces else ""
        for conf in confs:
            for name, pairs in (("medulla", val[:n_medulla]), ("isbi", val[n_medulla:])):
                if (name, conf) not in boxes:
                    boxes[name, conf] = [detect(detector, image, conf=conf, pixel_nm=px[name]).xyxy
                                         for image, _ in pairs]
                out[f"{name}{tag}_conf{conf:g}"] = detector_scores(
                    detector, pairs, conf=conf, pixel_nm=px[name], pieces=pieces, predictions=boxes[name, conf])
    return out


def _default_split(data: Path) -> tuple[list, list]:
    """The project split of the detector's data: ``(raw, labels, pixel_nm)`` sections, train and held out."""
    import tifffile

    med, isbi, gala = data / "medulla_fib", data / "isbi2012_sstem", data / "gala_fib"
    mr, ml = (tifffile.imread(med / f) for f in ("raw_z000-124.ome.tif", "neurons_z000-124.ome.tif"))
    ir, il = (tifffile.imread(isbi / f) for f in ("raw_z00-19.ome.tif", "neurites_z00-19.ome.tif"))
    gr, gl = (tifffile.imread(gala / f) for f in ("raw.ome.tif", "neurons.ome.tif"))
    px = DEFAULT_DATA_PIXEL_NM
    train = [(mr[z, :, :125], ml[z, :, :125], px["medulla"]) for z in range(0, 125, 2)]
    train += [(ir[z], il[z], px["isbi"]) for z in range(16)]
    train += [(gr[z], gl[z], px["gala"]) for z in range(0, 50, 2)]
    val = [(mr[z, :, 125:], ml[z, :, 125:], px["medulla"]) for z in range(0, 125, 4)]
    val += [(ir[z], il[z], px["isbi"]) for z in range(16, 20)]
    return train, val


def refresh_detector_card(data: Path, models: Path, command: str) -> dict:
    """Re-score the installed default detector on the held-out sections and rewrite its card's validation."""
    from dendrosam.segment.detector import load_detector

    _, val = _default_split(data)
    card_path = models / "dendrosam_yolo_default.card.json"
    card = json.loads(card_path.read_text())
    det = load_detector(models / "dendrosam_yolo_default.pt")
    card["validation"] = default_validation(det, [(r, lab) for r, lab, _ in val], len(range(0, 125, 4)))
    card["validation_command"] = command
    card_path.write_text(json.dumps(card, indent=2))
    return card


def default_detector_run(data: Path, work: Path, models: Path, command: str, epochs: int = 60,
                         init: str | None = None, pixel_nm: float | None = None, pieces: bool = False) -> dict:
    """Train the shipped default detector on the project split (see ``examples/train_default_models.py``).

    ``init``: continue from these weights (a new schedule of ``epochs``) instead of from scratch.
    ``pixel_nm``: resample every section to this pixel size (:data:`DEFAULT_DATA_PIXEL_NM` gives
    the data's own). ``pieces``: box targets per 4-connected profile (:class:`DetectorTrainConfig`).
    """
    train, val = _default_split(data)

    def at_size(sections):  # the sections as the detector is trained on them
        return [(r, lab) if pixel_nm is None else resample_pair(r, lab, own / pixel_nm)
                for r, lab, own in sections]

    cfg = DetectorTrainConfig(epochs=epochs, model=str(init) if init else DetectorTrainConfig.model,
                              pixel_nm=pixel_nm, pieces=pieces)
    yaml = write_yolo_dataset({"train": at_size(train), "val": at_size(val)}, work / "yolo_default" / "data",
                              cfg.min_size, cfg.tile, pieces)
    out = models / "dendrosam_yolo_default.pt"
    if init and Path(init).resolve() == out.resolve():  # ultralytics reads it while we overwrite it
        start = work / "yolo_default" / "init.pt"
        shutil.copyfile(init, start)
        cfg = DetectorTrainConfig(epochs=epochs, model=str(start), pixel_nm=pixel_nm, pieces=pieces)
    info = train_detector(yaml, out, cfg, work / "yolo_default" / "runs")
    from dendrosam.segment.detector import load_detector
    from dendrosam.segment.train_log import portable_card

    det = load_detector(out)
    card_path = models / "dendrosam_yolo_default.card.json"
    previous = json.loads(card_path.read_text()) if init and card_path.exists() else None
    card = portable_card({
        "model": "dendrosam YOLO detector", "config": cfg.__dict__, "command": command,
        "data": "medulla x<125 every 2nd section, ISBI z0-15, gala; val medulla [::4,:,125:] + ISBI z16-19",
        "training": info, "date": time.strftime("%Y-%m-%d"),
        "validation": default_validation(det, [(r, lab) for r, lab, _ in val], len(range(0, 125, 4))),
    })
    if previous is not None:  # a continued run: the card keeps every earlier stage
        card["previous_stages"] = [*previous.get("previous_stages", []),
                                   {k: previous.get(k) for k in ("command", "config", "training", "date")}]
    card_path.write_text(json.dumps(card, indent=2))
    if Path(info["results_csv"]).exists():
        shutil.copyfile(info["results_csv"], models / "dendrosam_yolo_default.train_log.csv")
    return card
