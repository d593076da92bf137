"""``dendrosam train-joins``: fit a learned-join model on your own masks and ground truth."""

from __future__ import annotations

import argparse
from typing import Any

from dendrosam.reconstruct.cli_io import add_voxel_size_argument, voxel_size_from_args

__all__ = ["register", "run_train_joins"]


def register(subparsers: Any) -> None:
    """Add the ``train-joins`` sub-command."""
    p = subparsers.add_parser(
        "train-joins",
        help="train the learned joins (which tracked objects to merge) on your masks + ground truth",
        description=(
            "Train the classifier that decides, after tracking, which 3D objects belong to one "
            "neuron (config section [joins]). Each --sample is a stack of per-section 2D labels as "
            "your segmentation produces them (e.g. RUN/labels.zarr/labels/labels2d of a "
            "`dendrosam run`), the EM image it came from, and ground-truth neuron labels of the "
            "same shape. Use sections the evaluation does not use."
        ),
    )
    p.add_argument("--sample", nargs=3, action="append", required=True,
                   metavar=("LABELS2D", "IMAGE", "GT"), help="one training stack (repeatable)")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="model file to write")
    add_voxel_size_argument(p)
    p.add_argument("--classifier", choices=("trees", "mlp"), default="trees",
                   help="gradient-boosted trees (default, as the shipped model; about a minute) or MLP ensembles "
                        "(--members, --steps; about half an hour)")
    p.add_argument("--stages", type=int, choices=(1, 2), default=1,
                   help="2: a second stage of trees re-scores every pair from the first stage's verdicts on its "
                        "neighbours, trained out of fold (one more fit per sample; needs two or more samples, "
                        "trees and contacts). Default 1, as the shipped model")
    p.add_argument("--members", type=int, default=5, help="MLP ensemble size (default 5)")
    p.add_argument("--steps", type=int, default=1500, help="Adam steps per MLP member (default 1500)")
    p.add_argument("--max-gap", type=int, default=2, help="largest section distance of a pair (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first member (default 0)")
    p.add_argument("--no-contacts", action="store_true",
                   help="train only the overlap ensemble, not the one for contacts within a section")
    p.add_argument("--reach-nm", type=float, default=30.0,
                   help="how far masks are grown into unlabelled pixels to find contacts (default 30 nm)")
    p.add_argument("--overwrite", action="store_true", help="replace MODEL.npz if it exists")
    p.set_defaults(func=run_train_joins)


def run_train_joins(args: argparse.Namespace) -> int:
    """Read the samples, train, write the model; return the exit code."""
    import sys
    from pathlib import Path

    from dendrosam.errors import ConfigError, OutputError
    from dendrosam.reconstruct.io import open_labels, open_volume
    from dendrosam.reconstruct.join_training import (JoinExamples, contact_examples, join_examples, join_graph,
                                                     train_join_model, train_two_stage)

    for option, value, low in (("--members", args.members, 1), ("--steps", args.steps, 1),
                               ("--max-gap", args.max_gap, 1)):
        if value < low:
            raise ConfigError(f"{option} must be >= {low}, got {value}")
    if not args.reach_nm >= 0:
        raise ConfigError(f"--reach-nm must be >= 0, got {args.reach_nm}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it")
    if out.suffix != ".npz":
        raise OutputError(f"{out}: the model file must end in .npz")
    stages = args.stages
    if stages == 2 and not (len(args.sample) >= 2 and args.classifier == "trees" and not args.no_contacts):
        raise ConfigError("--stages 2 needs two or more --sample, --classifier trees and contacts")
    parts, touching, sources, graphs = [], [], [], []
    for labels_path, image_path, gt_path in args.sample:
        image = open_volume(image_path, voxel_size_from_args(args))
        labels = open_labels(labels_path, like=image)
        gt = open_labels(gt_path, like=image)
        if stages == 2:
            graphs.append(join_graph(labels.data, image.data, gt.data, image.voxel_size, args.max_gap, args.reach_nm))
            parts.append(graphs[-1].known())
            touching.append(graphs[-1].known(True))
        else:
            parts.append(join_examples(labels.data, image.data, gt.data, image.voxel_size, args.max_gap))
            if not args.no_contacts:
                touching.append(contact_examples(labels.data, image.data, gt.data, image.voxel_size, args.reach_nm))
        sources.append({"labels2d": Path(labels_path).name, "image": Path(image_path).name,
                        "gt": Path(gt_path).name, "voxel_size_nm": list(image.voxel_size)})
        contacts = f", {len(touching[-1].labels)} contacts" if touching else ""
        print(f"{labels_path}: {len(parts[-1].labels)} pairs{contacts}", file=sys.stderr)
    examples = JoinExamples.concat(parts)
    card = {"samples": sources, "max_gap": args.max_gap}
    if stages == 2:
        model = train_two_stage(graphs, list(range(len(graphs))), seed=args.seed, card=card, reach_nm=args.reach_nm)
    else:
        model = train_join_model(examples, members=args.members, steps=args.steps, seed=args.seed,
                                 classifier=args.classifier, card=card,
                                 contacts=JoinExamples.concat(touching) if touching else None, reach_nm=args.reach_nm)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    contacts = (f" and {model.contacts.card['n_pairs']} contacts" if model.contacts is not None
                else " (no contact ensemble: no touching objects)" if touching else "")
    stage = " (two stages)" if model.context is not None else ""
    share = f"{examples.labels.mean():.0%} same neuron"
    print(f"trained on {len(examples.labels)} pairs{contacts} ({share}){stage} -> {out}")
    return 0
