"""Re-create the shipped default models (``make train-models``).

Trains the SAM (``tiny_zoom`` family: from scratch per GT id, then fine-tuned per profile into the
default) and the default YOLO detector on the developer halves of the project's EM data, with the
project-wide split:

- medulla FIB-SEM: train on ``x < 125`` (all 125 sections at 10 nm); validate on
  ``[::4, :, 125:]`` (the 40 nm protocol, 32 sections; never trained on);
- ISBI 2012: train on z 0-15, validate on z 16-19;
- gala FIB-SEM: training only.

Work files (resumable state, logs) go to ``--work`` (default ``train_runs/``); the final models,
their cards and CSV logs are copied into ``segment/models/``. Run it again with ``--resume`` to
continue an interrupted run. Run time on 1 CPU thread: 0.4-1.5 s per SAM step at batch 8.

The shipped SAM was trained in resumed segments on one core (``--resume``, each segment with its own
cosine schedule over ``--sam-steps``): steps 0-350 with a 20,000-step schedule, 350-5,000 with
5,000, 5,000-8,500 with 8,500 (about 1.5 h), then 8,500-22,000 with 22,000 and ``--sam-patience 40``
(a warm restart; about 1.8 h). ``make train-models`` runs the recipe uninterrupted: one
22,000-step schedule. The shipped detector: 60 epochs from scratch (about 23 min of one core), then
two more 60-epoch stages, each started from the previous weights (``--yolo-init``, about 14 min
each), then a fourth with every section resampled to 5 nm pixels (``--yolo-pixel-nm 5``, about
18 min); the model card lists every stage.

``--only sam`` trains the per-GT-id SAM from scratch into
``segment/models/dendrosam_sam_per_id.pt``; ``--only sam-pieces`` fine-tunes it for 6,000 steps on one
object per 4-connected profile (``TrainSamConfig(pieces=True)``, lr 3e-4; about 48 min of one core)
into ``segment/models/dendrosam_sam_pieces.pt``, the shipped default SAM (see the README's "Shipped
default models" for why the fine-tune, not its base, is the default). ``both`` (the default) runs the
two SAM steps and the detector.

The learned-join model (``--only joins``, alias ``joins-pieces``; :mod:`dendrosam.reconstruct.join_recipe`)
is trained last, on the masks the default SAM and the detector produce on the same developer halves
(about 30 min of one core), into ``reconstruct/models/dendrosam_joins_pieces.npz``, with
two stages by default (``--join-stages``; a second stage reads the first's context); its card holds the
held-out figures with and without it. ``--only joins-per-id`` trains the same recipe on the per-GT-id
SAM's masks into ``dendrosam_joins_per_id.npz``, the join model that ``joins.model = "auto"`` picks with
``segment.sam = "per-id"``. The ``-card`` variants re-score an installed join model only.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIECES_STEPS = 6000  # the per-profile fine-tune of the shipped SAM (--only sam-pieces)


def sam_config(data: Path, work: Path, steps: int, command: str, patience: int = 12):
    """The exact SAM training configuration of the shipped model."""
    from dendrosam.segment.train_sam import DataSpec, TrainSamConfig

    med, isbi, gala = data / "medulla_fib", data / "isbi2012_sstem", data / "gala_fib"
    train = (
        DataSpec(str(med / "raw_z000-124.ome.tif"), str(med / "neurons_z000-124.ome.tif"), ":,:,:125", "medulla"),
        DataSpec(str(isbi / "raw_z00-19.ome.tif"), str(isbi / "neurites_z00-19.ome.tif"), "0:16", "isbi"),
        DataSpec(str(gala / "raw.ome.tif"), str(gala / "neurons.ome.tif"), "", "gala"),
    )
    val = (
        DataSpec(str(med / "raw_z000-124.ome.tif"), str(med / "neurons_z000-124.ome.tif"), "::4,:,125:", "medulla"),
        DataSpec(str(isbi / "raw_z00-19.ome.tif"), str(isbi / "neurites_z00-19.ome.tif"), "16:20", "isbi"),
    )
    return TrainSamConfig(
        train_data=train, val_data=val, work_dir=str(work / "sam_default"), arch="tiny_zoom",
        train="all", steps=steps, batch_size=8, lr=1e-3, warmup=100, val_every=250,
        val_sections=8, checkpoint_every=50, patience=patience, seed=0, threads=1, command=command,
        extra_card={"data_licences": "medulla: Janelia FlyEM NeuroProof examples (CC-BY); ISBI 2012: "
                    "Cardona et al. 2010 (non-commercial); gala: (c) 2012 HHMI, BSD-style"},
    )


def install_sam(res, models: Path, stem: str) -> None:
    """Copy a finished SAM run's best checkpoint, card and CSV log into ``models/<stem>.*``; report it."""
    shutil.copyfile(res.checkpoint, models / f"{stem}.pt")
    shutil.copyfile(res.checkpoint.with_name("best.card.json"), models / f"{stem}.card.json")
    shutil.copyfile(res.log_csv, models / f"{stem}.train_log.csv")
    print(f"{stem}: {res.steps} steps, best at {res.best_step}, {res.seconds:.0f} s, val {res.val}")


def refresh_sam_card(data: Path, models: Path, stem: str, command: str) -> dict:
    """Score a shipped SAM on every held-out set, per 4-connected profile and per GT id, into its card.

    Held out: the four 40 nm stacks of the medulla half ``[k::4, :, 125:]`` (k = 0 is the validation set
    training early-stopped on; k = 1-3 were never used) and ISBI z 16-19. Written to the card's
    ``validation_heldout`` block: ``{set: {"pieces": {...}, "per_id": {...}}}`` with the ellipse floors.
    """
    import json

    import tifffile
    import torch

    from dendrosam.segment.sam import load_sam
    from dendrosam.segment.train_eval import ValSet, ellipse_floor, evaluate_prompted

    torch.set_num_threads(1)
    med, isbi = data / "medulla_fib", data / "isbi2012_sstem"
    raw, lab = (tifffile.imread(med / f) for f in ("raw_z000-124.ome.tif", "neurons_z000-124.ome.tif"))
    sets = [ValSet(f"medulla[{k}::4,:,125:]", raw[k::4, :, 125:], lab[k::4, :, 125:]) for k in range(4)]
    sets.append(ValSet("isbi[16:20]", tifffile.imread(isbi / "raw_z00-19.ome.tif")[16:20],
                       tifffile.imread(isbi / "neurites_z00-19.ome.tif")[16:20]))
    sam = load_sam(str(models / f"{stem}.pt"), device="cpu")
    block: dict = {"protocol": "one GT box per 4-connected profile ('pieces') or per GT id ('per_id') >= 20 px "
                               "per section; mean / median IoU of the predicted mask; ellipse floor alike",
                   "command": command}
    for val in sets:
        block[val.name] = {
            name: {**evaluate_prompted(sam, val, pieces=pieces), "ellipse_floor": ellipse_floor(val, pieces=pieces)}
            for name, pieces in (("pieces", True), ("per_id", False))}
        print(val.name, {k: round(v["iou_mean"], 3) for k, v in block[val.name].items()}, flush=True)
    card_path = models / f"{stem}.card.json"
    card = json.loads(card_path.read_text())
    card["validation_heldout"] = block
    card_path.write_text(json.dumps(card, indent=2))
    return block


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("DENDROSAM_DATA", REPO.parent / "shared" / "data")),
                   help="folder holding medulla_fib/, isbi2012_sstem/, gala_fib/")
    p.add_argument("--work", type=Path, default=REPO / "train_runs")
    p.add_argument("--sam-steps", type=int, default=8500)
    p.add_argument("--sam-patience", type=int, default=12,
                   help="validation checks without improvement before SAM training stops")
    p.add_argument("--yolo-epochs", type=int, default=60)
    p.add_argument("--yolo-init", help="continue the detector from these weights (a new schedule)")
    p.add_argument("--yolo-pixel-nm", type=float, help="resample every section to this pixel size (nm)")
    p.add_argument("--yolo-pieces", action="store_true",
                   help="detector box targets per 4-connected profile of an id (one per cross-section)")
    p.add_argument("--only", choices=("sam", "yolo", "yolo-card", "sam-card", "both", "sam-pieces", "joins", "joins-card", "joins-pieces",
                                      "joins-pieces-card", "joins-per-id", "joins-per-id-card"), default="both",
                   help="which models ('both' = the per-GT-id SAM, its per-profile fine-tune and the detector; "
                        "'sam-card' scores both shipped SAMs on every held-out set, per profile and per "
                        "GT id, into their cards; 'yolo-card' re-scores the shipped detector on the held-out sections and rewrites "
                        "its card's validation block; 'sam-pieces' fine-tunes that SAM on one object per 4-connected profile into the default SAM; 'joins' (= "
                        "'joins-pieces') needs both shipped; 'joins-card' re-scores the shipped join model on "
                        "the held-out crop and rewrites that part of its card; 'joins-per-id' / "
                        "'joins-per-id-card' do the same on the per-GT-id SAM's masks, into "
                        "dendrosam_joins_per_id)")
    p.add_argument("--join-stages", type=int, choices=(1, 2), default=None,
                   help="join model stages (2: a second stage reads the first's context); default: as shipped, "
                        "2 for 'joins', 1 for 'joins-per-id'")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    command = "python examples/train_default_models.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    models = REPO / "segment" / "models"
    models.mkdir(exist_ok=True)
    if args.only in ("sam", "both"):
        from dendrosam.segment.train_sam import train_sam

        res = train_sam(sam_config(args.data, args.work, args.sam_steps, command, args.sam_patience),
                        resume=args.resume)
        install_sam(res, models, "dendrosam_sam_per_id")
    if args.only in ("yolo", "both"):
        from dendrosam.segment.train_detector import default_detector_run

        default_detector_run(args.data, args.work, models, command, args.yolo_epochs, args.yolo_init,
                             args.yolo_pixel_nm, args.yolo_pieces)
    if args.only == "sam-card":
        for stem in ("dendrosam_sam_pieces", "dendrosam_sam_per_id"):
            refresh_sam_card(args.data, models, stem, command)
    if args.only == "yolo-card":
        from dendrosam.segment.train_detector import refresh_detector_card

        refresh_detector_card(args.data, models, command)
    if args.only in ("sam-pieces", "both"):  # the default SAM is the per-profile fine-tune of the per-id one
        from dataclasses import replace

        from dendrosam.segment.train_sam import train_sam

        base = sam_config(args.data, args.work, args.sam_steps, command, args.sam_patience)
        cfg = replace(base, work_dir=str(args.work / "sam_pieces"), init=str(models / "dendrosam_sam_per_id.pt"),
                      pieces=True, lr=3e-4, steps=PIECES_STEPS)
        install_sam(train_sam(cfg, resume=args.resume), models, "dendrosam_sam_pieces")
    per_id = args.only.startswith("joins-per-id")
    which = {"sam": "per-id" if per_id else "pieces", "name": "dendrosam_joins_" + ("per_id" if per_id else "pieces")}
    if args.only in ("joins", "joins-pieces", "joins-per-id"):
        from dendrosam.reconstruct.join_recipe import default_joins_run

        default_joins_run(args.data, REPO / "reconstruct" / "models", command,
                          stages=args.join_stages or (1 if per_id else 2), **which)
    if args.only in ("joins-card", "joins-pieces-card", "joins-per-id-card"):
        from dendrosam.reconstruct.join_recipe import refresh_card

        refresh_card(args.data, REPO / "reconstruct" / "models", command, **which)
    return 0


if __name__ == "__main__":
    sys.exit(main())
