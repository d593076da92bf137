"""Measure the learned joins on held-out sections: tracker alone, joins from the tracks, joins from the 2D objects.

Usage::

    python examples/joins_quality.py [DATA_DIR]      # the README's table (a few minutes on 2 cores)
    python examples/joins_quality.py --tiny          # a small synthetic stack (seconds)

DATA_DIR holds ``medulla_fib/`` and ``isbi2012_sstem/`` (default: $DENDROSAM_SHARED_DATA or
``../shared/data`` beside the repository). Held-out data, which none of the shipped models saw: the
medulla crop ``[::4, :, 125:]`` (40 nm sections, the bundled demo crop) and ISBI 2012 sections 16-19.
Each row segments the sections once with the shipped detector + SAM (the pipeline's
``_segment_block``, with the row's ``segment`` settings) and then links the same 2D labels six ways:

* the tracker alone;
* the shipped join model starting from the tracker's 3D objects, without and with contacts
  (``joins.start = "tracks"``);
* the same model starting from every 2D object on its own, without and with contacts
  (``joins.start = "sections"``; with contacts is the pipeline's default);

all with average linkage (``joins.linkage = "average"``, the pipeline's default until GAEC replaced
it), and last the pipeline's default linking: 2D objects + contacts with greedy additive edge
contraction (``"additive"``, GAEC).

Figures: VI split / VI merge / adapted Rand error (``dendrosam.reconstruct.evaluate``, GT
background ignored).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

COLUMNS = {"tracker": "tracker alone", "tracker+joins": "tracks + joins",
           "tracker+joins+contacts": "tracks + joins + contacts", "sections+joins": "2D + joins",
           "sections+joins+contacts": "2D + joins + contacts",
           "sections+joins+contacts+additive": "same, GAEC (default)"}


def link_six_ways(labels2d: np.ndarray, image: np.ndarray, gt: np.ndarray, voxel_size: tuple,
                  model=None) -> dict[str, tuple[float, float, float]]:
    """VI split, VI merge and ARAND of the six linkings of one stack of 2D labels, by column name.

    The recipe's own scoring (:func:`dendrosam.reconstruct.join_recipe.linking_scores`), which also
    writes the model card's held-out figures.
    """
    from dendrosam.reconstruct.join_recipe import linking_scores
    from dendrosam.reconstruct.joins import default_join_model

    scores = linking_scores(image, gt, labels2d, voxel_size, model or default_join_model(), linkage="average")
    return {COLUMNS[k]: tuple(scores[k][m] for m in ("voi_split", "voi_merge", "arand")) for k in COLUMNS}


def print_row(name: str, row: dict) -> None:
    cells = " | ".join(f"{s:.3f} / {m:.3f} / {a:.3f}" for s, m, a in row.values())
    print(f"| {name} | {cells} |", flush=True)


def _held_out(data: Path):
    import tifffile

    med = data / "medulla_fib"
    raw = tifffile.imread(med / "raw_z000-124.ome.tif")[::4, :, 125:]
    gt = tifffile.imread(med / "neurons_z000-124.ome.tif")[::4, :, 125:]
    settings = [("medulla 40 nm (demo crop), default masks (conf 0.1, fill)", {}),
                ("same, no fill", {"fill": False}),
                ("same, conf 0.05", {"conf": 0.05}),
                ("same, conf 0.05, no fill", {"conf": 0.05, "fill": False}),
                ("same, conf 0.2", {"conf": 0.2}),
                ("same, conf 0.2, no fill", {"conf": 0.2, "fill": False})]
    for name, kw in settings:
        yield name, raw, gt, (40.0, 10.0, 10.0), kw
    isbi = data / "isbi2012_sstem"
    raw = tifffile.imread(isbi / "raw_z00-19.ome.tif")[16:20]
    gt = tifffile.imread(isbi / "neurites_z00-19.ome.tif")[16:20]
    yield "ISBI z 16-19, default masks (fill)", raw, gt, (50.0, 4.0, 4.0), {}
    yield "same, no fill", raw, gt, (50.0, 4.0, 4.0), {"fill": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DENDROSAM_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("data", nargs="?", type=Path, default=Path(default))
    parser.add_argument("--tiny", action="store_true", help="a small synthetic stack instead (seconds)")
    args = parser.parse_args(argv)
    print("| held-out data, 2D masks | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    if args.tiny:
        from dendrosam.reconstruct import synthetic_em

        synth = synthetic_em(shape=(8, 64, 64), voxel_size=(40.0, 15.0, 15.0), n_dendrites=2, seed=1, n_glia=0)
        gt = np.asarray(synth.objects)
        print_row("synthetic, GT ids per section", link_six_ways(gt, np.asarray(synth.raw), gt, synth.voxel_size))
        return 0
    from dendrosam.reconstruct.config import SegmentSettings
    from dendrosam.reconstruct.pipeline import _segment_block

    for name, raw, gt, vs, kw in _held_out(args.data):
        labels, _ = _segment_block(raw, None, SegmentSettings(device="cpu", **kw), 0, vs)
        print_row(name, link_six_ways(labels, raw, gt, vs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
