"""CLI: ``dendrosam segment`` (2D masks per section) and ``dendrosam benchmark-models``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _z_range(args, n: int) -> tuple[int, int]:
    from dendrosam.errors import ConfigError

    if not args.z_range:
        return 0, n
    a, b = args.z_range
    if not 0 <= a < b <= n:
        raise ConfigError(f"--z-range {a} {b}: expected 0 <= A < B <= {n} (number of sections)")
    return a, b


def register(subparsers) -> None:
    """Add the ``segment`` and ``benchmark-models`` sub-commands."""
    from dendrosam.reconstruct.cli_io import add_voxel_size_argument
    from dendrosam.segment.api import OVERLAP_MODES
    from dendrosam.segment.augment import TTA_VIEWS
    from dendrosam.segment.device import PRECISIONS

    p = subparsers.add_parser(
        "segment", help="2D instance masks per section (YOLO or GT prompts -> SAM)",
        description="Segment every section: prompts from the detector or from ground truth, "
        "masks from SAM, written as OME-Zarr labels plus a prompt/score CSV table.",
    )
    p.add_argument("input", metavar="INPUT", help="EM stack (any format open_volume reads)")
    p.add_argument("--out", required=True, help="output OME-Zarr folder (the CSV goes beside it)")
    p.add_argument("--prompts", default="detector", choices=["detector", "gt-boxes", "gt-points"])
    p.add_argument("--gt", help="ground-truth labels for --prompts gt-boxes/gt-points")
    p.add_argument("--sam", help="SAM checkpoint, or \"per-id\" for the shipped per-GT-id SAM "
                   "(default: the shipped per-profile SAM, also \"pieces\")")
    p.add_argument("--sam-type", help="vit_b | vit_l | vit_h | tiny | tiny_zoom (inferred if omitted)")
    p.add_argument("--detector", help="YOLO .pt (default: the shipped detector)")
    p.add_argument("--device", help="cpu | cuda[:N] | mps (default: auto)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="prompts per SAM decoder call (default: 4 on the CPU, 64 on a GPU)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="SAM compute precision (default auto: float32 on the CPU, bf16 on CUDA; "
                   "bfloat16 is 2-3x faster on CPUs with native bf16)")
    p.add_argument("--conf", type=float, default=0.25, help="detector score threshold")
    p.add_argument("--fill", action="store_true",
                   help="dense labels: unlabelled pixels become new objects (seeded watershed)")
    p.add_argument("--cut", action="store_true",
                   help="cut masks that hold several bright cell interiors into pieces (before --fill)")
    p.add_argument("--cut-h", type=float, default=1.5,
                   help="smallest interior height that seeds a cut, in SD of the smoothed section (default 1.5)")
    p.add_argument("--overlap", default="score", choices=OVERLAP_MODES,
                   help="which mask owns pixels several masks claim: the higher-scored (default) or the smaller")
    p.add_argument("--tta", type=int, default=1, choices=TTA_VIEWS,
                   help="answer each box in this many flips/quarter turns of its crop and average "
                   "(test-time augmentation; zoom-path SAMs such as the shipped ones; default 1)")
    p.add_argument("--z-range", type=int, nargs=2, metavar=("A", "B"), help="sections A..B-1")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_voxel_size_argument(p)
    p.set_defaults(func=_run_segment)

    b = subparsers.add_parser(
        "benchmark-models", help="compare SAM models with GT box and point prompts",
        description="Per-object IoU/Dice of each SAM model answering one GT box and one GT "
        "point per object; writes a CSV table, plots and a Markdown summary.",
    )
    b.add_argument("--raw", required=True, help="EM stack")
    b.add_argument("--gt", required=True, help="ground-truth labels")
    b.add_argument("--sam", action="append", required=True, metavar="NAME=CKPT",
                   help="a model to compare (repeat); CKPT may be NAME=CKPT:TYPE")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--device", help="cpu | cuda[:N] | mps (default: auto)")
    b.add_argument("--z-range", type=int, nargs=2, metavar=("A", "B"))
    add_voxel_size_argument(b)
    b.set_defaults(func=_run_benchmark)


def _run_segment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dendrosam.errors import ConfigError
    from dendrosam.reconstruct import open_volume, write_ome_zarr
    from dendrosam.reconstruct.cli_io import voxel_size_from_args
    from dendrosam.segment.api import SegmentConfig, segment_slices
    from dendrosam.segment.detector import load_detector
    from dendrosam.segment.detector import in_plane_nm
    from dendrosam.segment.sam import load_sam

    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    voxel_size = voxel_size_from_args(args)
    vol = open_volume(args.input, voxel_size)
    z0, z1 = _z_range(args, vol.shape[0])
    gt = None
    if args.prompts != "detector":
        if not args.gt:
            raise ConfigError(f"--prompts {args.prompts} needs --gt")
        gt = open_volume(args.gt, vol.voxel_size).data[z0:z1]
    sam = load_sam(args.sam, args.sam_type, args.device)
    det = load_detector(args.detector, args.device) if args.prompts == "detector" else None
    images = vol.data[z0:z1]
    res = segment_slices(images, sam, det, prompts=args.prompts, gt=gt, pixel_nm=in_plane_nm(vol.voxel_size),
                         config=SegmentConfig(batch_size=args.batch_size, conf=args.conf,
                                              precision=args.precision, fill=args.fill,
                                              cut=args.cut, cut_h=args.cut_h, overlap=args.overlap,
                                              tta=args.tta))
    out = Path(args.out)
    write_ome_zarr(out, images, voxel_size=vol.voxel_size, labels={"sections": res.labels},
                   overwrite=args.overwrite)
    table = res.table.assign(z=res.table.z + z0)
    table.to_csv(out.with_name(out.name.removesuffix(".zarr") + "_prompts.csv"), index=False)
    print(f"segmented {z1 - z0} sections, {int((table.id > 0).sum())} masks -> {out}")
    return 0


def _run_benchmark(args: argparse.Namespace) -> int:
    from dendrosam.reconstruct import open_volume
    from dendrosam.reconstruct.cli_io import voxel_size_from_args
    from dendrosam.segment.compare import benchmark_models, parse_model_specs

    raw = open_volume(args.raw, voxel_size_from_args(args))
    gt = open_volume(args.gt, raw.voxel_size)
    z0, z1 = _z_range(args, raw.shape[0])
    summary = benchmark_models(raw.data[z0:z1], gt.data[z0:z1], parse_model_specs(args.sam),
                               args.out, device=args.device)
    print(summary)
    return 0
