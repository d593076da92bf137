"""Validation folds of the learned joins: train without one sample, score on it (the README's fold tables).

Usage::

    python examples/join_folds.py [DATA_DIR]               # the four medulla folds, default masks (about 45 min, one core)
    python examples/join_folds.py DATA_DIR --cut-h 1.5     # the same with masks cut at cell interiors
    python examples/join_folds.py DATA_DIR --sam per-id     # another SAM (a name or a checkpoint)
    python examples/join_folds.py DATA_DIR --folds "gala[0::4]" "isbi[0:16]"
    python examples/join_folds.py DATA_DIR --repeats 3 --stop 0.6   # + 3 noisy copies per fold; another stop
    python examples/join_folds.py DATA_DIR --repeats 3 --classifier mlp     # the earlier MLP ensembles
    python examples/join_folds.py DATA_DIR --repeats 3 --stages 2   # two-stage joins (a second stage reads the context)
    python examples/join_folds.py --tiny                   # three small synthetic stacks (seconds)

Every sample of the shipped recipe (:data:`dendrosam.reconstruct.join_recipe.DEFAULT_JOIN_SAMPLES`,
the developer halves only) is segmented once with the shipped detector + SAM, as ``dendrosam run``
does (with and without fill, optionally cut); for each fold a join model is trained on all other
samples with the shipped recipe's settings and the fold's filled labels are linked six ways
(the columns of ``examples/joins_quality.py``). This is how the pipeline's defaults were chosen:
on these folds, before any held-out figure. ``--repeats K`` adds a row ``<fold> ~k`` for each of K
copies of the fold's image with imperceptible noise (``examples/robustness.py``'s ``jitter``, seeds
1..K), segmented and linked the same way: the spread a difference between two settings must clear.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from joins_quality import COLUMNS, print_row
from robustness import jitter


def _tiny_samples():
    from dendrosam.reconstruct import synthetic_em

    for seed in (1, 2, 3):  # a fold trains on two: a two-stage model needs two groups
        s = synthetic_em(shape=(8, 64, 64), voxel_size=(40.0, 15.0, 15.0), n_dendrites=3, seed=seed, n_glia=0)
        yield f"synthetic{seed}", np.asarray(s.raw), np.asarray(s.objects), s.voxel_size


def main(argv: list[str] | None = None) -> int:
    from dendrosam.reconstruct.join_recipe import _masks, load_samples, validation_folds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DENDROSAM_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("data", nargs="?", type=Path, default=Path(default))
    parser.add_argument("--folds", nargs="+", default=[f"medulla[{k}::4,:,:125]" for k in range(4)])
    parser.add_argument("--cut-h", type=float, default=None, help="cut masks at cell interiors (segment.cut_h)")
    parser.add_argument("--sam", default=None, help="segment with this SAM checkpoint instead of the shipped default")
    parser.add_argument("--tta", type=int, default=1, help="views per SAM prompt (segment.tta)")
    parser.add_argument("--repeats", type=int, default=0, help="noisy copies of each fold, scored too")
    parser.add_argument("--stop", type=float, default=None, help="the joins' stop threshold (joins.stop)")
    parser.add_argument("--classifier", choices=("trees", "mlp"), default="trees",
                        help="the join classifiers to train (default: trees, as the shipped model)")
    parser.add_argument("--stages", type=int, choices=(1, 2), default=1,
                        help="2: a second stage of trees reads the first's context (default 1; the shipped default joins have 2)")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--tiny", action="store_true", help="three small synthetic stacks, GT as 2D labels (seconds)")
    args = parser.parse_args(argv)
    if args.repeats < 0 or (args.stop is not None and not 0.0 < args.stop <= 1.0):
        parser.error("--repeats must be >= 0 and --stop in (0, 1]")
    if args.tiny:
        samples, folds, members, steps = _tiny_samples(), ["synthetic1"], 1, 20
        masks = lambda raw, gt, vs: (gt, gt)  # noqa: E731 - perfect 2D labels
    else:
        samples, folds, members, steps = load_samples(args.data), args.folds, args.members, args.steps
        masks = lambda raw, gt, vs: _masks(raw, vs, args.cut_h, args.sam, args.tta)  # noqa: E731
    print("| fold | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    rows = validation_folds(samples, masks, folds, members, steps, repeats=args.repeats, perturb=jitter, stop=args.stop,
                            linkage="average", classifier=args.classifier,
                            stages=args.stages if args.classifier == "trees" else 1)  # joins_quality.py's columns
    for fold, row in rows:
        print_row(fold, {COLUMNS[k]: tuple(row[k][m] for m in ("voi_split", "voi_merge", "arand")) for k in COLUMNS})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
