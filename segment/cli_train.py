"""``dendrosam train-sam``, ``train-detector`` and ``pseudolabel``: argument parsing only."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

__all__ = ["register"]


def _pairs(values, flag):
    from dendrosam.errors import ConfigError
    from dendrosam.segment.train_sam import DataSpec

    out = []
    for v in values or ():
        parts = v.split("@")
        if len(parts) not in (2, 3):
            raise ConfigError(f"{flag} {v!r}: expected RAW@LABELS or RAW@LABELS@REGION (e.g. ::4,:,125:)")
        out.append(DataSpec(parts[0], parts[1], parts[2] if len(parts) == 3 else ""))
    return tuple(out)


def _file_pixel_nm(path: str, override: float | None) -> float | None:
    """In-plane pixel size (nm) of a volume: ``override``, else its metadata, else None."""
    from dendrosam.reconstruct import open_volume
    from dendrosam.segment.detector import in_plane_nm

    if override is not None:
        return float(override)
    vol = open_volume(path, warn_default=False)
    return in_plane_nm(vol.voxel_size) if vol.voxel_size_known else None


def _sam_config(args):
    from dendrosam.segment.train_sam import TrainSamConfig

    return TrainSamConfig(
        train_data=_pairs(getattr(args, "data", None), "--data"), val_data=_pairs(args.val, "--val"),
        work_dir=args.work, arch=args.arch, init=args.init, train=args.train,
        lora_rank=args.lora_rank, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup=args.warmup, correction=not args.no_correction, pieces=args.pieces, val_every=args.val_every,
        patience=args.patience, seed=args.seed, threads=args.threads, device=args.device,
        command="dendrosam " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )


def _train_sam(args) -> int:
    from dendrosam.segment.train_sam import train_sam

    res = train_sam(_sam_config(args), resume=args.resume, progress=not args.quiet)
    print(json.dumps({"checkpoint": str(res.checkpoint), "steps": res.steps,
                      "best_step": res.best_step, "val": res.val, "seconds": round(res.seconds, 1)}))
    return 0


def _train_detector(args) -> int:
    from pathlib import Path

    from dendrosam.errors import ConfigError
    from dendrosam.segment.train_data import read_array
    from dendrosam.segment.train_detector import (
        DetectorTrainConfig, resample_pair, train_detector, write_yolo_dataset,
    )
    from dendrosam.segment.train_sam import parse_region

    cfg = DetectorTrainConfig(model=args.model, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                              device=args.device, seed=args.seed, min_size=args.min_size, tile=args.tile,
                              pixel_nm=args.pixel_nm, pieces=args.pieces)
    splits = {}
    for name, specs in (("train", _pairs(args.data, "--data")), ("val", _pairs(args.val, "--val"))):
        pairs = []
        for s in specs:
            reg = parse_region(s.region)
            raw, lab = read_array(s.raw, reg), read_array(s.labels, reg)
            scale = 1.0
            if args.pixel_nm is not None:
                px = _file_pixel_nm(s.raw, args.data_pixel_nm)
                if px is None:
                    raise ConfigError(f"--pixel-nm: {s.raw} states no pixel size; give --data-pixel-nm")
                scale = px / args.pixel_nm
            pairs += [resample_pair(r, lab_z, scale) for r, lab_z in zip(raw, lab)]
        if pairs:
            splits[name] = pairs
    work = Path(args.work)
    yaml = write_yolo_dataset(splits, work / "data", cfg.min_size, cfg.tile, cfg.pieces)
    info = train_detector(yaml, Path(args.out), cfg, work / "runs")
    print(json.dumps({"weights": args.out, **info}))
    return 0


def _pseudolabel(args) -> int:
    from pathlib import Path

    from dendrosam.segment.pseudolabel import PseudoLabelConfig, pseudolabel_rounds
    from dendrosam.segment.train_detector import DetectorTrainConfig

    cfg = _sam_config(args)
    det_cfg = None
    if args.retrain_detector:
        det_cfg = DetectorTrainConfig(epochs=args.detector_epochs, device=args.device, seed=args.seed)
    pl = PseudoLabelConfig(min_score=args.min_score, min_stability=args.min_stability,
                           min_area=args.min_area, conf=args.conf)
    lines = pseudolabel_rounds(args.input, args.sam, Path(args.work), args.rounds, cfg, args.detector,
                               pl, region=args.region, detector_config=det_cfg,
                               pixel_nm=_file_pixel_nm(args.input, args.pixel_nm))
    for line in lines:
        print(json.dumps(line))
    return 0


def _sam_options(p: argparse.ArgumentParser, work: str) -> None:
    p.add_argument("--val", action="append", metavar="RAW@LABELS[@REGION]", help="held-out data (repeatable)")
    p.add_argument("--work", default=work, help="work folder: state, logs, best.pt (default %(default)s)")
    p.add_argument("--arch", default="tiny_zoom", help="registry arch when training from scratch")
    p.add_argument("--init", help="start from this SAM checkpoint")
    p.add_argument("--train", default="all", choices=("decoder", "decoder+prompt", "all", "lora"))
    p.add_argument("--lora-rank", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--no-correction", action="store_true", help="skip the correction-point pass")
    p.add_argument("--pieces", action="store_true",
                   help="one object per 4-connected profile of a label in a section (train and validation)")
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--patience", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from WORK/last.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    """Add the training sub-commands."""
    p = subparsers.add_parser("train-sam", help="train / fine-tune a zoom SAM on labelled sections")
    p.add_argument("--data", action="append", required=True, metavar="RAW@LABELS[@REGION]",
                   help="training volume and its instance labels (repeatable)")
    _sam_options(p, "sam_training")
    p.set_defaults(func=_train_sam)

    p = subparsers.add_parser("train-detector", help="train YOLO from instance labels")
    p.add_argument("--data", action="append", required=True, metavar="RAW@LABELS[@REGION]")
    p.add_argument("--val", action="append", metavar="RAW@LABELS[@REGION]")
    p.add_argument("--out", required=True, help="where to write the best .pt")
    p.add_argument("--work", default="detector_training")
    p.add_argument("--model", default="yolov8n.yaml", help="yolov8n.yaml, yolo11n.yaml or a .pt")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--imgsz", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--min-size", type=int, default=4)
    p.add_argument("--pieces", action="store_true",
                   help="one box per 4-connected profile of an id (per cross-section), not one per id")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--pixel-nm", type=float, help="resample every section to this pixel size (nm) for "
                   "training and stamp it into the weights; inference then resamples to it too")
    p.add_argument("--data-pixel-nm", type=float,
                   help="in-plane pixel size (nm) of the --data/--val volumes (default: their metadata)")
    p.set_defaults(func=_train_detector)

    p = subparsers.add_parser("pseudolabel", help="label unlabelled EM with detector+SAM, retrain, report")
    p.add_argument("input", help="unlabelled volume")
    p.add_argument("--sam", required=True, help="starting SAM checkpoint")
    p.add_argument("--detector", help="YOLO weights (default: shipped)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--region", default="", help="part of the input, numpy-style (e.g. ::4 for 40 nm "
                   "sections of a 10 nm cube)")
    p.add_argument("--min-score", type=float, default=0.8, help="keep masks with SAM's predicted IoU >= this")
    p.add_argument("--min-stability", type=float, default=0.85, help="... and stability score >= this")
    p.add_argument("--min-area", type=int, default=20)
    p.add_argument("--conf", type=float, default=0.25, help="detector score threshold")
    p.add_argument("--retrain-detector", action="store_true",
                   help="also fine-tune the detector on each round's pseudo-labels")
    p.add_argument("--detector-epochs", type=int, default=10)
    p.add_argument("--pixel-nm", type=float,
                   help="in-plane pixel size (nm) of the input and --val data (default: the input's metadata)")
    _sam_options(p, "pseudolabel_work")
    p.set_defaults(func=_pseudolabel)
