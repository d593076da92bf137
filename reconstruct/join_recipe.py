"""The recipe of the shipped join model (``examples/train_default_models.py --only joins``).

Training masks are what ``dendrosam run`` itself produces with its default settings (the shipped
detector + SAM), with and without ``segment.fill``, on the developer halves of the project data
(the same split as the shipped SAM and detector):

- medulla FIB-SEM at the 40 nm protocol, ``x < 125``: the four z-offsets ``[o::4, :, :125]``;
- ISBI 2012 sections 0-15 (50 nm sections, 4 nm pixels);
- gala FIB-SEM at 40 nm, the four z-offsets ``[o::4]``.

Both ensembles are trained: the overlaps between sections and the contacts within one
(:mod:`.join_contacts`). The held-out medulla crop ``[::4, :, 125:]`` (the demo) is scored at the
end (:func:`heldout_scores`), with and without ``segment.fill`` (the pipeline's default is with),
for the tracker alone and for the joins with and without contacts, starting from the tracker's
objects (``tracker+joins...``) and from the 2D objects (``sections+joins...``; the pipeline's
default is ``sections+joins+contacts``); the figures go into the model card.
:func:`refresh_card` re-scores a trained model and rewrites only that part of its card
(``--only joins-card``). Nothing is tuned on the held-out crop: the stop threshold is the
classifier's decision threshold 0.5, and the defaults were chosen on validation folds of the
training half (README).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .join_training import JoinExamples, join_graph, train_join_model, train_two_stage

__all__ = ["default_joins_run", "heldout_scores", "linking_scores", "load_samples", "refresh_card",
           "validation_folds", "DEFAULT_JOIN_SAMPLES"]

# (name, folder, raw file, label file, region, voxel size (z, y, x) nm)
DEFAULT_JOIN_SAMPLES: tuple = tuple(
    [(f"medulla[{o}::4,:,:125]", "medulla_fib", "raw_z000-124.ome.tif", "neurons_z000-124.ome.tif",
      np.s_[o::4, :, :125], (40.0, 10.0, 10.0)) for o in range(4)]
    + [("isbi[0:16]", "isbi2012_sstem", "raw_z00-19.ome.tif", "neurites_z00-19.ome.tif",
        np.s_[0:16], (50.0, 4.0, 4.0))]
    + [(f"gala[{o}::4]", "gala_fib", "raw.ome.tif", "neurons.ome.tif", np.s_[o::4],
        (40.0, 10.0, 10.0)) for o in range(4)]
)


def _masks(raw: np.ndarray, voxel_size: tuple, cut_h: float | None = None,
           sam: str | None = None, tta: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The 2D labels ``dendrosam run`` makes of ``raw`` with default settings, and their fill variant.

    ``cut_h``: cut the masks at cell interiors first (``segment.cut`` with that ``cut_h``);
    ``sam``: another SAM checkpoint (``segment.sam``) than the shipped default; ``tta``: views per
    prompt (``segment.tta``).
    """
    from dendrosam.segment.masks import fill_unlabelled

    from .config import SegmentSettings
    from .pipeline import _segment_block

    settings = SegmentSettings(device="cpu", fill=False, cut=cut_h is not None, cut_h=cut_h or SegmentSettings.cut_h,
                               sam=sam, tta=tta)
    labels, _ = _segment_block(raw, None, settings, 0, voxel_size)
    return labels, np.stack([fill_unlabelled(labels[z], raw[z]) for z in range(len(raw))])


def load_samples(data: Path, samples: tuple = DEFAULT_JOIN_SAMPLES):
    """Yield ``(name, raw, gt, voxel_size)`` of each training sample (:data:`DEFAULT_JOIN_SAMPLES`)."""
    import tifffile

    for name, folder, raw_f, lab_f, region, vs in samples:
        yield name, tifffile.imread(data / folder / raw_f)[region], tifffile.imread(data / folder / lab_f)[region], vs


def _train(graphs: list, groups: list, stages: int, classifier: str, members: int, steps: int,
           card: dict | None = None) -> Any:
    """The join model of ``graphs`` (:func:`.join_graph`): one stage (``classifier``) or two (trees, out of
    fold by ``groups``: :func:`.train_two_stage`)."""
    if stages == 2:
        return train_two_stage(graphs, groups, card=card)
    return train_join_model(JoinExamples.concat([g.known() for g in graphs]), members=members, steps=steps,
                            contacts=JoinExamples.concat([g.known(True) for g in graphs]), card=card,
                            classifier=classifier)


def validation_folds(samples, masks, folds: list[str], members: int = 5, steps: int = 1500,
                     repeats: int = 0, perturb: Any = None, stop: float | None = None,
                     linkage: str | None = None, classifier: str = "trees", stages: int = 1):
    """Score joins trained without each validation sample on it: the README's fold tables.

    Parameters
    ----------
    samples : iterable of (name, raw, gt, voxel_size)
        The training data (:func:`load_samples`).
    masks : callable
        ``masks(raw, gt, voxel_size) -> (labels, filled)``: the 2D labels to train on (both) and to
        score (``filled``, the pipeline's default), e.g. :func:`_masks` (``gt`` only for synthetic or
        oracle masks).
    folds : list of str
        Names of the samples to hold out, one at a time.
    members, steps : int
        Training settings (the shipped model: 5, 1500).
    classifier : {"mlp", "trees"}
        The classifiers to train (:func:`.train_join_model`; the shipped model: ``"trees"``).
    stages : {1, 2}
        ``2``: a second stage that reads the first's context (:func:`.train_two_stage`, trees only,
        out of fold by training sample; the shipped default join model's recipe, README).
    repeats : int
        Also score ``repeats`` perturbed copies of each fold's image, ``perturb(raw, k)`` for
        ``k = 1..repeats``, segmented with ``masks`` and linked with the same model: how far the
        fold's figures move for reasons no setting controls.
    perturb : callable, optional
        ``perturb(raw, seed) -> raw``; needed when ``repeats > 0``.
    stop : float, optional
        The joins' stop threshold (default: the pipeline's, ``JoinSettings().stop``).
    linkage : str, optional
        The linkage of :func:`linking_scores`'s first five linkings (default: the pipeline's).

    Yields
    ------
    (str, dict)
        Each fold's name and its :func:`linking_scores` for the model trained on every other sample,
        as soon as the fold is done (a fold takes minutes: the training dominates); then
        ``"<fold> ~k"`` for each perturbed copy.
    """
    if repeats and perturb is None:
        raise ValueError("repeats > 0 needs perturb")
    data = []
    for name, raw, gt, vs in samples:
        variants = masks(raw, gt, vs)
        data.append((name, raw, gt, vs, variants[-1], [join_graph(labels, raw, gt, vs) for labels in variants]))
    missing = set(folds) - {d[0] for d in data}
    if missing:
        raise ValueError(f"no sample named {sorted(missing)}")
    for fold in folds:
        rest = [d for d in data if d[0] != fold]
        model = _train([g for d in rest for g in d[5]], [d[0] for d in rest for _ in d[5]], stages, classifier,
                       members, steps)
        name, raw, gt, vs, filled = next(d for d in data if d[0] == fold)[:5]
        yield fold, linking_scores(raw, gt, filled, vs, model, linkage=linkage, stop=stop)
        for k in range(1, repeats + 1):
            copy = perturb(raw, k)
            yield f"{fold} ~{k}", linking_scores(copy, gt, masks(copy, gt, vs)[-1], vs, model, linkage=linkage,
                                                 stop=stop)


def linking_scores(raw: np.ndarray, gt: np.ndarray, labels: np.ndarray, vs: tuple, model: Any,
                   linkage: str | None = None, stop: float | None = None) -> dict:
    """VI split / merge and ARAND (3 decimals) of six linkings of one stack of 2D labels.

    ``tracker`` (the tracker alone), ``tracker+joins`` and ``tracker+joins+contacts`` (the joins
    starting from the tracker's objects), ``sections+joins`` and ``sections+joins+contacts`` (starting
    from every 2D object; the pipeline's default is the last), all with ``linkage`` (default: the
    pipeline's, ``JoinSettings().linkage``), and ``sections+joins+contacts+<other>``: the default
    linking with the other linkage rule; every join with the stop threshold ``stop`` (default:
    the pipeline's, ``JoinSettings().stop``).
    """
    from .config import LINKAGES, JoinSettings
    from .evaluation import evaluate
    from .joins import SectionObjectIds, learned_joins
    from .tracking import track

    linkage = linkage or JoinSettings().linkage
    stop = JoinSettings().stop if stop is None else stop
    weight = JoinSettings().contact_weight
    tracked = track(labels, vs)
    lab3d = np.asarray(tracked.labels)
    sections = SectionObjectIds(labels)
    every = sections[:]
    segs = {"tracker": lab3d}
    runs = [("tracker", lab3d, tracked.n_objects, c, linkage, "") for c in (False, True)]
    runs += [("sections", every, sections.n_objects, c, linkage, "") for c in (False, True)]
    runs += [("sections", every, sections.n_objects, True, other, "+" + other) for other in LINKAGES if other != linkage]
    for start, ids, n, contacts, rule, suffix in runs:
        joined = learned_joins(labels, raw, ids, vs, model, shifts=tracked.shifts, n_objects=n,
                               contacts=contacts, linkage=rule, stop=stop, contact_weight=weight)
        segs[start + ("+joins+contacts" if contacts else "+joins") + suffix] = joined.lut[ids]
    out = {}
    for name, seg in segs.items():
        m = evaluate(gt, seg).to_dict()
        out[name] = {k: round(float(m[k]), 3) for k in ("voi_split", "voi_merge", "arand")}
    return out


def default_joins_run(data: Path, models: Path, command: str, members: int = 5, steps: int = 1500,
                      sam: str | None = None, name: str = "dendrosam_joins_pieces",
                      classifier: str = "trees", stages: int = 1) -> dict:
    """Train the shipped join model on :data:`DEFAULT_JOIN_SAMPLES`; write it and its card to ``models``.

    ``sam``: train on the masks of this SAM (``segment.sam``; default: the shipped default SAM),
    installed as ``name`` (the shipped default's; ``dendrosam_joins_per_id`` for ``sam = "per-id"``). ``classifier``:
    gradient-boosted trees (the shipped model) or ``"mlp"`` ensembles (``members``, ``steps``).
    ``stages = 2`` adds a second stage of trees that reads the first's context, trained out of fold
    by sample (:func:`.train_two_stage`; the shipped default joins use it, the per-id joins do not).
    """
    graphs, groups, names = [], [], []
    for sample, raw, gt, vs in load_samples(data):
        for variant, labels in zip(("", "+fill"), _masks(raw, vs, sam=sam)):
            graphs.append(join_graph(labels, raw, gt, vs))
            groups.append(sample)
            names.append(sample + variant)
            print(f"{sample}{variant}: {int(graphs[-1].pair_known.sum())} pairs, "
                  f"{int(graphs[-1].contact_known.sum())} contacts", flush=True)
    examples = JoinExamples.concat([g.known() for g in graphs])
    model = _train(graphs, groups, stages, classifier, members, steps,
                   card={"samples": names, "command": command, "stop": 0.5, "sam": sam or "default"})
    card = {**model.card, **heldout_scores(data, model, sam),
            "data_licences": "medulla: Janelia FlyEM NeuroProof examples (CC-BY); ISBI 2012: Cardona et al. "
                             "2010 (non-commercial); gala: (c) 2012 HHMI, BSD-style"}
    _install(model, card, models, name)
    print(f"joins: {len(examples.labels)} pairs, {model.card['contacts']['n_pairs']} contacts; "
          f"held-out medulla {card[HELDOUT + '+fill']}", flush=True)
    return card


HELDOUT = "heldout_medulla[::4,:,125:]"


def heldout_scores(data: Path, model: Any, sam: str | None = None) -> dict:
    """VI split / merge and ARAND of ``model`` on the held-out medulla crop (masks of ``sam``), as card entries."""
    import tifffile

    from .config import JoinSettings

    med = data / "medulla_fib"
    raw = tifffile.imread(med / "raw_z000-124.ome.tif")[::4, :, 125:]
    gt = tifffile.imread(med / "neurons_z000-124.ome.tif")[::4, :, 125:]
    labels, filled = _masks(raw, (40.0, 10.0, 10.0), sam=sam)
    return {HELDOUT: linking_scores(raw, gt, labels, (40.0, 10.0, 10.0), model),
            HELDOUT + "+fill": linking_scores(raw, gt, filled, (40.0, 10.0, 10.0), model),
            "heldout_linkage": JoinSettings().linkage}


def refresh_card(data: Path, models: Path, command: str, sam: str | None = None,
                 name: str = "dendrosam_joins_pieces") -> dict:
    """Re-score an installed join model on the held-out crop; rewrite those card entries only.

    The weights and the training provenance stay as they are; the card records the command.
    """
    from .joins import JoinModel

    model = JoinModel.load(models / f"{name}.npz")
    card = {**model.card, **heldout_scores(data, model, sam), "heldout_command": command}
    _install(model, card, models, name)
    print(f"joins: held-out medulla {card[HELDOUT + '+fill']}", flush=True)
    return card


def _install(model: Any, card: dict, models: Path, name: str) -> None:
    model = replace(model, card=card)
    models.mkdir(parents=True, exist_ok=True)
    model.save(models / f"{name}.npz")
    (models / f"{name}.card.json").write_text(json.dumps(card, indent=1) + "\n")
