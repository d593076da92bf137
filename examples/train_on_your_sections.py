"""Fine-tune SAM and train the YOLO detector on your own annotated sections, then reconstruct with them.

Users have masks, not boxes: both models train from an instance-label volume (0 = background).

Run:
    python examples/train_on_your_sections.py RAW LABELS --out OUT [--steps 2000] [--epochs 50] [--device cuda]
    python examples/train_on_your_sections.py --tiny --out OUT      # synthetic data, about a minute on a CPU

It fine-tunes the shipped SAM (``--init`` to start from another checkpoint: Meta SAM, micro-sam or
DendriteSAM exports need ``--arch vit_b`` etc.) on the first 80% of the sections, validates on the rest,
trains a YOLO detector from the same labels, and runs the whole pipeline with the two new models.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def tiny_data(folder: Path) -> tuple[Path, Path]:
    """A small synthetic SBF-SEM volume with dendrite labels, written as OME-TIFF."""
    from dendrosam.reconstruct import synthetic_em, write_tiff

    syn = synthetic_em(shape=(10, 128, 128), voxel_size=(40, 15, 15), n_dendrites=2, seed=3)
    folder.mkdir(parents=True, exist_ok=True)
    write_tiff(folder / "raw.ome.tif", syn.raw, syn.voxel_size, overwrite=True)
    write_tiff(folder / "labels.ome.tif", syn.objects, syn.voxel_size, overwrite=True)
    return folder / "raw.ome.tif", folder / "labels.ome.tif"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("raw", nargs="?", type=Path)
    p.add_argument("labels", nargs="?", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=2000, help="SAM fine-tuning steps")
    p.add_argument("--epochs", type=int, default=50, help="YOLO epochs")
    p.add_argument("--init", default=None, help="SAM checkpoint to start from (default: the shipped model)")
    p.add_argument("--arch", default="tiny_zoom", help="architecture of --init (vit_b, vit_l, ...)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tiny", action="store_true", help="synthetic data and a few steps (smoke test)")
    args = p.parse_args(argv)

    from dendrosam.reconstruct import open_labels, open_volume, reconstruct_volume
    from dendrosam.reconstruct.config import config_from_dict
    from dendrosam.segment.sam import DEFAULT_SAM_PATH
    from dendrosam.segment.train_detector import DetectorTrainConfig, train_detector, write_yolo_dataset
    from dendrosam.segment.train_sam import DataSpec, TrainSamConfig, train_sam

    if args.tiny:
        args.raw, args.labels = tiny_data(args.out / "data")
        args.steps, args.epochs = 3, 1
    if args.raw is None or args.labels is None:
        p.error("give RAW and LABELS (or --tiny)")
    depth = open_volume(args.raw).shape[0]
    split = max(1, int(depth * 0.8))
    sam = train_sam(TrainSamConfig(
        train_data=(DataSpec(str(args.raw), str(args.labels), f"0:{split}", "mine"),),
        val_data=(DataSpec(str(args.raw), str(args.labels), f"{split}:{depth}", "mine"),),
        work_dir=str(args.out / "sam"), arch=args.arch, init=args.init or str(DEFAULT_SAM_PATH),
        steps=args.steps, batch_size=4 if args.tiny else 16, val_every=max(1, args.steps),
        val_sections=2 if args.tiny else 8, checkpoint_every=max(1, args.steps), warmup=1 if args.tiny else 200,
        device=args.device, command="examples/train_on_your_sections.py",
    ), progress=not args.tiny)
    print(f"SAM: {sam.steps} steps -> {sam.checkpoint}; validation {sam.val}")

    raw, labels = open_volume(args.raw), open_labels(args.labels)
    pairs = [(raw.section(z), np.asarray(labels.section(z))) for z in range(depth)]
    data_yaml = write_yolo_dataset({"train": pairs[:split], "val": pairs[split:]}, args.out / "yolo_data")
    detector = args.out / "yolo.pt"
    train_detector(data_yaml, detector, DetectorTrainConfig(epochs=args.epochs, device=args.device),
                   args.out / "yolo_runs")
    print(f"YOLO: {args.epochs} epochs -> {detector}")

    config = config_from_dict({"segment": {"sam": str(sam.checkpoint), "detector": str(detector),
                                           "device": args.device, "conf": 0.01}})
    res = reconstruct_volume(args.raw, args.out / "run", config, gt=str(args.labels), overwrite=True,
                             progress=not args.tiny)
    print(f"reconstructed {len(res.graphs)} objects with your models: {res.out}; metrics {res.metrics}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
