"""Sub-commands ``dendrosam run`` (the whole pipeline) and ``dendrosam demo`` (bundled real data)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run_command", "demo_command"]


def register(subparsers: Any) -> None:
    """Add ``run`` and ``demo`` to the ``dendrosam`` parser."""
    p = subparsers.add_parser(
        "run",
        help="whole pipeline: sections -> 2D masks -> 3D labels -> skeleton graphs",
        description="Run detection + SAM per section, tracking, skeletons, morphometrics and contacts "
        "into a resumable run folder. Every option can also be set in --config FILE.toml "
        "(command-line options win).",
    )
    p.add_argument("input", metavar="INPUT", help="EM stack (any format open_volume reads)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--voxel-size", nargs=3, type=float, metavar=("Z", "Y", "X"), help="voxel size in nm")
    p.add_argument("--config", metavar="FILE.toml", help="pipeline configuration file")
    p.add_argument("--method", choices=("sam", "threshold"), help="segmenter (default sam)")
    p.add_argument("--sam", metavar="CKPT", help="SAM checkpoint, or \"per-id\" for the shipped per-GT-id SAM "
                   "(default: the shipped per-profile SAM, also \"pieces\")")
    p.add_argument("--sam-type", metavar="TYPE", help="SAM architecture: vit_b, vit_l, vit_h or a tiny name")
    p.add_argument("--detector", metavar="YOLO.pt", help="YOLO weights (default: the shipped detector)")
    p.add_argument("--prompts", choices=("detector", "gt-boxes", "gt-points"), help="prompt source")
    p.add_argument("--device", help="torch device: cpu, cuda, cuda:1 (default: automatic)")
    p.add_argument("--workers", type=int, metavar="N", help="0 = serial (default); N = local Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, e.g. --set track.gap=2 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same settings")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    p.add_argument("--gt", metavar="GT", help="ground-truth 3D labels: write metrics.json at the end")
    p.add_argument("--publish", action="store_true", help="also write Neuroglancer precomputed layers")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_command)

    d = subparsers.add_parser(
        "demo",
        help="the README demo: full pipeline on the bundled real medulla crop, scored against GT",
        description="Reconstruct the bundled 40 nm medulla crop with the shipped models, evaluate "
        "against its ground truth and NeuroProof's watershed baseline, write the report and publish.",
    )
    d.add_argument("--out", default="demo_out", help="run folder (default demo_out)")
    d.add_argument("--view", action="store_true",
                   help="afterwards open the result in a local Neuroglancer viewer (prints its URL; Ctrl-C ends)")
    d.add_argument("--workers", type=int, default=0, metavar="N", help="Dask workers (default serial)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(func=demo_command)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from .config import parse_set_option

    over: dict[str, Any] = dict(parse_set_option(s) for s in args.set)
    over.update({
        "voxel_size": list(args.voxel_size) if args.voxel_size else None,
        "segment.method": args.method,
        "segment.sam": args.sam,
        "segment.sam_type": args.sam_type,
        "segment.detector": args.detector,
        "segment.prompts": args.prompts,
        "segment.device": args.device,
        "engine.workers": args.workers,
        "engine.scheduler": args.scheduler,
    })
    return over


def run_command(args: argparse.Namespace) -> int:
    """``dendrosam run``."""
    from .config import apply_overrides, load_config
    from .pipeline import reconstruct_volume

    cfg = apply_overrides(load_config(args.config), _overrides(args))
    res = reconstruct_volume(
        args.input, args.out, cfg, resume=args.resume, overwrite=args.overwrite, gt=args.gt,
        publish=args.publish, progress=not args.no_progress,
    )
    print(f"3D labels: {res.out / 'volume.ome.zarr'} (labels/labels3d), {len(res.graphs)} skeleton graphs")
    print(f"skeletons: {res.out / 'skeletons'}   tables: {res.out / 'tables'}")
    if res.metrics:
        keys = ("voi_split", "voi_merge", "arand")
        print("metrics: " + ", ".join(f"{k} {res.metrics[k]:.3f}" for k in keys if res.metrics.get(k) is not None))
    return 0


def _shipped_models() -> None:
    from dendrosam.errors import CheckpointError
    from dendrosam.reconstruct.joins import DEFAULT_JOIN_MODEL
    from dendrosam.segment.detector import DEFAULT_YOLO_PATH
    from dendrosam.segment.sam import DEFAULT_SAM_PATH

    missing = [p.name for p in (DEFAULT_SAM_PATH, DEFAULT_YOLO_PATH, DEFAULT_JOIN_MODEL) if not p.is_file()]
    if missing:
        raise CheckpointError(
            f"demo needs the shipped default models, missing from this build: {', '.join(missing)} "
            "(train them with 'dendrosam train-sam' / 'dendrosam train-detector')"
        )


def demo_command(args: argparse.Namespace) -> int:
    """``dendrosam demo``."""
    import numpy as np

    _shipped_models()
    from dendrosam.errors import InputError
    from dendrosam.reconstruct import evaluate, open_labels, open_volume, oracle_link

    from .config import EngineSettings, PipelineConfig
    from .pipeline import reconstruct_volume

    try:
        from dendrosam.reconstruct import demo_data
    except (ImportError, AttributeError):
        raise InputError("demo: the bundled demo data is not part of this build") from None
    data = demo_data("medulla40")
    image = open_volume(data["raw"])
    gt = np.asarray(open_labels(data["neurons"], like=image).data[:])
    baseline = np.asarray(open_labels(data["watershed"], like=image).data[:])
    cfg = PipelineConfig(engine=EngineSettings(workers=args.workers))
    out = Path(args.out)
    res = reconstruct_volume(data["raw"], out, cfg, overwrite=out.exists(), gt=gt, publish=True,
                             progress=not args.no_progress)
    base = evaluate(gt, baseline).to_dict()
    oracle = evaluate(gt, oracle_link(res.labels2d, gt)).to_dict()
    local = evaluate(gt, oracle_link(res.labels2d, gt, links="overlap")).to_dict()
    print(f"\n{'':36s}{'VI split':>10s}{'VI merge':>10s}{'ARAND':>8s}")
    for name, m in (("dendrosam (shipped models)", res.metrics), ("NeuroProof watershed", base),
                    ("same 2D masks, perfect linking", oracle),
                    ("same 2D masks, best overlap links", local)):
        print(f"{name:36s}{m['voi_split']:10.3f}{m['voi_merge']:10.3f}{m['arand']:8.3f}")
    print("(perfect linking gives each 2D mask the GT neuron it overlaps most: the best any tracker "
          "could do with these masks;\n best overlap links joins only masks of one neuron that overlap "
          "in neighbouring sections: the best choice among the tracker's candidate links)")
    print(f"\nlabels:   {out / 'volume.ome.zarr'} (labels/labels3d, labels/labels2d)")
    print(f"graphs:   {out / 'skeletons'} (graphs.json, GraphML, SWC); tables: {out / 'tables'}")
    print(f"report:   {out / 'report.html'}")
    if not args.view:
        print(f"view it:  dendrosam view {out}   (or dendrosam demo --view)")
        return 0
    from dendrosam.viz import view

    view(out, block=True)
    return 0
