"""``benchmark-models``: the poster's protocol -- GT boxes and GT points for each SAM model.

Every model answers one box prompt and one point prompt per ground-truth object and section;
each answer is scored by IoU and Dice against its object
(:func:`dendrosam.reconstruct.prompted.prompted_mask_scores`). Outputs in the folder: a per-object
CSV table, a box plot of the IoU distributions, a bar plot of mean-IoU improvements relative to
the first model, and a Markdown summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import ConfigError

__all__ = ["parse_model_specs", "benchmark_models"]


def parse_model_specs(specs: list[str]) -> dict[str, tuple[str, str | None]]:
    """``["NAME=CKPT", "NAME=CKPT:TYPE"]`` -> ``{name: (checkpoint, model_type or None)}``."""
    out: dict[str, tuple[str, str | None]] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"--sam {spec!r}: expected NAME=CHECKPOINT")
        if name in out:
            raise ConfigError(f"--sam: model name {name!r} given twice")
        ckpt, _, mtype = rest.rpartition(":") if ":" in rest and not os.path.exists(rest) else (
            rest, "", "")
        out[name] = (ckpt, mtype or None)
    return out


def benchmark_models(
    raw, gt, models: dict[str, Any], out: str | os.PathLike, device: str | None = None
) -> str:
    """Score each model with GT boxes and GT points; write table, plots and summary to ``out``.

    Parameters
    ----------
    raw, gt : array-like, shape (Z, Y, X)
        Images and ground-truth labels.
    models : dict
        ``name -> SamModel`` or ``name -> (checkpoint, model_type)``.
    out : path
        Output folder (created).
    device : str, optional

    Returns
    -------
    str
        The Markdown summary (also written to ``out/summary.md``).
    """
    import pandas as pd

    from dendrosam.reconstruct.prompted import prompted_mask_scores, relative_improvement
    from dendrosam.segment.api import segment_slices
    from dendrosam.segment.sam import SamModel, load_sam

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, m in models.items():
        sam = m if isinstance(m, SamModel) else load_sam(m[0], m[1], device)
        for mode in ("gt-boxes", "gt-points"):
            res = segment_slices(raw, sam, prompts=mode, gt=gt, progress=False)
            for z in range(res.labels.shape[0]):
                g = np.asarray(gt[z])
                ids = np.unique(g)
                ids = ids[ids != 0]
                if ids.size == 0:
                    continue
                s = prompted_mask_scores(g, np.asarray(res.labels[z]), ids)
                rows += [(name, mode, z, int(i), float(a), float(d))
                         for i, a, d in zip(s.ids, s.iou, s.dice)]
    table = pd.DataFrame(rows, columns=["model", "prompts", "z", "id", "iou", "dice"])
    table.to_csv(out / "per_object.csv", index=False)
    means = table.groupby(["prompts", "model"], sort=False)[["iou", "dice"]].mean()
    base = next(iter(models))
    lines = ["# SAM model benchmark (GT prompts)", "",
             f"{table.id.nunique()} objects x {table.z.nunique()} sections; "
             f"relative improvement = mean IoU vs `{base}`.", "",
             "| prompts | model | mean IoU | mean Dice | rel. improvement |", "|---|---|---|---|---|"]
    rel = {}
    for (mode, name), r in means.iterrows():
        b = means.loc[(mode, base), "iou"]
        rel[(mode, name)] = relative_improvement(r.iou, b) if b > 0 else float("nan")
        lines.append(f"| {mode} | {name} | {r.iou:.3f} | {r.dice:.3f} | {rel[(mode, name)]:+.1%} |")
    _plots(table, rel, out)
    summary = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(summary)
    return summary


def _plots(table, rel, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(table.groupby(["prompts", "model"], sort=False))
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(groups)), 3.5))
    ax.boxplot([g.iou.to_numpy() for _, g in groups], showmeans=True)
    ax.set_xticks(range(1, len(groups) + 1), [f"{m}\n{p}" for (p, m), _ in groups], fontsize=8)
    ax.set_ylabel("per-object IoU")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out / "iou_distributions.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rel)), 3.5))
    ax.bar(range(len(rel)), [100 * v for v in rel.values()])
    ax.set_xticks(range(len(rel)), [f"{m}\n{p}" for p, m in rel], fontsize=8)
    ax.set_ylabel("mean IoU improvement (%)")
    fig.tight_layout()
    fig.savefig(out / "relative_improvement.png", dpi=120)
    plt.close(fig)
