"""``dendrosam evaluate``: metrics of a segmentation against ground truth, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from dendrosam.reconstruct.cli_io import add_voxel_size_argument, voxel_size_from_args

__all__ = ["register", "run_evaluate", "format_table", "parse_roi"]


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="VOI split/merge, adapted Rand, mSA/SA50/F1 of a segmentation against ground truth",
        description=(
            "Compare a segmentation (SEG) with ground-truth labels (GT). VOI split = H(seg|gt) and "
            "merge = H(gt|seg) in bits and the adapted Rand error are scored where GT != 0 "
            "(seg 0 is an ordinary label); objects are matched by IoU (Hungarian) at thresholds "
            "0.50:0.05:0.95 for mSA, SA50, SA75, precision, recall and F1."
        ),
    )
    p.add_argument("--gt", required=True, metavar="GT", help="ground-truth labels (any format open_volume reads; 0 = background)")
    p.add_argument("--seg", required=True, metavar="SEG", help="segmentation to score, same shape as GT")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_voxel_size_argument(p)
    p.add_argument(
        "--per-section", action="store_true",
        help="score every section on its own (2D label stacks with per-section ids) and report the mean",
    )
    p.add_argument(
        "--tolerance", type=float, metavar="NM",
        help="ignore GT voxels within NM nanometres of a GT boundary in VOI/Rand (CREMI style)",
    )
    p.add_argument(
        "--roi", nargs=3, metavar=("Z", "Y", "X"),
        help="evaluate a sub-volume given as one numpy slice per axis, e.g. ::4 : 125: "
        "(every 4th section, x from 125); the voxel size follows the step",
    )
    p.add_argument("--worst", type=int, default=10, metavar="N", help="list the N worst split/merge objects (10)")
    p.add_argument(
        "--link-oracle", choices=("any", "overlap"),
        help="SEG holds per-section 2D labels (e.g. a run's labels/labels2d): score their best "
        "linking instead of SEG itself (dendrosam.reconstruct.oracle_link): 'any' joins all 2D "
        "objects of one GT neuron, 'overlap' only those overlapping in neighbouring sections",
    )
    p.set_defaults(func=run_evaluate)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_table(d: dict[str, Any], header: str) -> str:
    """Readable report of a ``Metrics.to_dict()`` result."""
    lines = [
        header,
        f"  VOI split {_fmt(d['voi_split'])} bits   merge {_fmt(d['voi_merge'])} bits   "
        f"total {_fmt(d['voi'])} bits",
        f"  adapted Rand error {_fmt(d['arand'])}   (precision {_fmt(d['rand_precision'])}, "
        f"recall {_fmt(d['rand_recall'])})",
        f"  mSA {_fmt(d['mSA'])}   SA50 {_fmt(d['SA50'])}   SA75 {_fmt(d['SA75'])}   "
        f"precision {_fmt(d['precision'])}   recall {_fmt(d['recall'])}   F1 {_fmt(d['F1'])}",
        f"  objects: {d['n_gt']} GT, {d['n_seg']} segmented; {d['n_voxels']} voxels"
        + (f", {d['n_ignored']} ignored near GT boundaries" if d["n_ignored"] else ""),
    ]
    if "per_section" in d:
        mean = d["per_section"]["mean"]
        lines.append(
            f"  mean over {len(d['per_section']['mSA'])} sections: VOI split {_fmt(mean['voi_split'])}, "
            f"merge {_fmt(mean['voi_merge'])}, ARAND {_fmt(mean['arand'])}, mSA {_fmt(mean['mSA'])}, "
            f"SA50 {_fmt(mean['SA50'])}, F1 {_fmt(mean['F1'])}"
        )
    for key, title in (("worst_split", "worst splits (GT id: bits)"), ("worst_merge", "worst merges (seg id: bits)")):
        if d[key]:
            lines.append(f"  {title}: " + ", ".join(f"{i}: {b:.3f}" for i, b in d[key]))
    return "\n".join(lines)


def parse_roi(parts: list[str] | None) -> tuple[slice, slice, slice]:
    """``["::4", ":", "125:"]`` -> slices; raise ConfigError on anything else."""
    from dendrosam.errors import ConfigError

    if not parts:
        return (slice(None),) * 3  # type: ignore[return-value]
    slices = []
    for axis, text in zip("ZYX", parts):
        fields = text.split(":")
        try:
            if len(fields) > 3 or len(fields) < 2:
                raise ValueError
            values = [int(f) if f.strip() else None for f in fields]
        except ValueError:
            raise ConfigError(f"--roi {axis}: {text!r} is not a slice like 10:50, ::4 or :") from None
        if len(values) == 3 and values[2] is not None and values[2] <= 0:
            raise ConfigError(f"--roi {axis}: step must be positive, got {values[2]}")
        slices.append(slice(*values))
    return tuple(slices)  # type: ignore[return-value]


def run_evaluate(args: argparse.Namespace) -> int:
    """Read GT and SEG, evaluate, print a table or one JSON object; return the exit code."""
    from dendrosam.errors import ConfigError, LabelError
    from dendrosam.reconstruct import open_labels
    from dendrosam.reconstruct.evaluation import evaluate

    if args.worst < 0:
        raise ConfigError(f"--worst must be >= 0, got {args.worst}")
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise ConfigError(f"--tolerance must be a positive number of nm, got {args.tolerance}")
    voxel_size = voxel_size_from_args(args)
    gt_vol = open_labels(args.gt, voxel_size=voxel_size, allow_2d=True)
    seg_vol = open_labels(args.seg, voxel_size=voxel_size or gt_vol.voxel_size, allow_2d=True)
    if tuple(gt_vol.shape) != tuple(seg_vol.shape):
        raise LabelError(
            f"--seg {args.seg} has shape {tuple(seg_vol.shape)} but --gt {args.gt} has shape "
            f"{tuple(gt_vol.shape)}"
        )
    voxel_size = tuple(args.voxel_size) if args.voxel_size else tuple(gt_vol.voxel_size)
    roi = parse_roi(args.roi)
    voxel_size = tuple(v * (r.step or 1) for v, r in zip(voxel_size, roi))
    gt, seg = gt_vol.read()[roi], seg_vol.read()[roi]
    if gt.size == 0:
        raise ConfigError(f"--roi {' '.join(args.roi)} selects no voxel of the {gt_vol.shape} volume")
    if args.link_oracle:
        from dendrosam.reconstruct.oracle import oracle_link

        if gt.ndim != 3:
            raise ConfigError("--link-oracle needs (Z, Y, X) stacks")
        seg = oracle_link(seg, gt, links=args.link_oracle)
    metrics = evaluate(
        gt,
        seg,
        voxel_size=voxel_size,
        per_section=args.per_section,
        boundary_tolerance_nm=args.tolerance,
    )
    d = metrics.to_dict(worst=args.worst)
    if args.json:
        d["gt"], d["seg"], d["voxel_size"] = str(args.gt), str(args.seg), list(voxel_size)
        d["link_oracle"] = args.link_oracle
        d["shape"] = list(gt.shape)
        print(json.dumps(d, allow_nan=False))
    else:
        shape = " x ".join(str(s) for s in gt.shape)
        vs = " x ".join(f"{v:g}" for v in voxel_size)
        what = f"{args.seg} ({args.link_oracle} oracle linking)" if args.link_oracle else args.seg
        print(format_table(d, f"{what} vs ground truth {args.gt} ({shape} voxels, {vs} nm)"))
    return 0
