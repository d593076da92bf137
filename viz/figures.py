"""QC figures (matplotlib, Agg): section overlays, label projections, skeletons, histograms, metrics.

Every ``plot_*`` function takes arrays / graphs / tables and returns a matplotlib Figure;
:func:`write_figures` renders whatever a :class:`~dendrosam.viz.rundata.RunData` holds to PNGs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

__all__ = [
    "label_colours",
    "plot_section_overlays",
    "plot_label_projections",
    "plot_skeletons",
    "plot_morphometrics",
    "plot_metrics",
    "write_figures",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def label_colours(labels: np.ndarray, alpha: float = 1.0, seed: int = 0) -> np.ndarray:
    """RGBA float image giving every id a stable colour (0 transparent), same shape + (4,)."""
    import fastremap

    labels = np.asarray(labels)
    ids, inverse = fastremap.unique(labels, return_inverse=True)
    # golden-ratio hues: the colour depends on the id itself, so it is the same in every figure
    table = np.empty((len(ids), 4))
    table[:, :3] = (np.outer(ids.astype(np.float64) * 0.618034 + seed, [1.0, 1.7, 2.3]) % 1.0) * 0.75 + 0.25
    table[:, 3] = alpha
    table[ids == 0] = 0
    return table[inverse.reshape(labels.shape)]


def plot_section_overlays(
    image: Any, labels2d: Any, sections: Sequence[int] | None = None, *, n: int = 4
) -> Any:
    """Raw sections with 2D masks (filled + outlined) and their bounding boxes.

    Parameters
    ----------
    image, labels2d : array-like
        (Z, Y, X) image and per-section labels.
    sections : sequence of int, optional
        Sections to show (default: ``n`` evenly spaced).
    n : int
        Number of sections when ``sections`` is not given.
    """
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    plt = _plt()
    from matplotlib.patches import Rectangle

    zs = list(sections) if sections is not None else sorted(set(np.linspace(0, image.shape[0] - 1, n).astype(int)))
    fig, axes = plt.subplots(1, len(zs), figsize=(4 * len(zs), 4.2), squeeze=False)
    for ax, z in zip(axes[0], zs):
        img, lab = np.asarray(image[z]), np.asarray(labels2d[z])
        ax.imshow(img, cmap="gray")
        ax.imshow(label_colours(lab, 0.35))
        edge = find_boundaries(lab, mode="inner")
        ax.imshow(np.where(edge[..., None], label_colours(lab, 1.0), 0.0))
        for sl in ndimage.find_objects(lab.astype(np.int64)):
            if sl is not None:
                y, x = sl
                ax.add_patch(Rectangle((x.start - 0.5, y.start - 0.5), x.stop - x.start, y.stop - y.start,
                                       fill=False, lw=0.8, ec="yellow"))
        ax.set_title(f"section z={z}: {len(np.unique(lab)) - (lab == 0).any()} masks")
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_label_projections(labels: Any, voxel_size: Sequence[float]) -> Any:
    """Colour-coded z-projection (top-most id) and an xz re-slice through the middle, in nm."""
    plt = _plt()
    lab = np.asarray(labels)
    vz, vy, vx = (float(v) for v in voxel_size)
    Z, Y, X = lab.shape
    first = (lab > 0).argmax(axis=0)
    proj = np.take_along_axis(lab, first[None], axis=0)[0]
    xz = lab[:, Y // 2, :]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [1, 1]})
    a.imshow(label_colours(proj), extent=(0, X * vx, Y * vy, 0), interpolation="nearest")
    a.set(title=f"z-projection: {len(np.unique(lab)) - 1} objects", xlabel="x (nm)", ylabel="y (nm)")
    b.imshow(label_colours(xz), extent=(0, X * vx, Z * vz, 0), interpolation="nearest", aspect="equal")
    b.set(title=f"xz re-slice at y = {Y // 2 * vy:.0f} nm", xlabel="x (nm)", ylabel="z (nm)")
    for ax in (a, b):
        ax.set_facecolor("black")
    fig.tight_layout()
    return fig


def plot_skeletons(graphs: Mapping[int, nx.Graph], *, width_per_nm: float = 0.05) -> Any:
    """Skeletons projected on xy and xz (nm), one colour per object, line width from the radius."""
    plt = _plt()
    from matplotlib.collections import LineCollection

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 5))
    for obj, g in sorted(graphs.items()):
        if g.number_of_edges() == 0:
            continue
        pos = {n: np.asarray(d["pos"], float) for n, d in g.nodes(data=True)}
        seg = np.array([(pos[u], pos[v]) for u, v in g.edges])  # (E, 2, 3) z, y, x
        rad = np.array([(g.nodes[u].get("radius", 0) + g.nodes[v].get("radius", 0)) / 2 for u, v in g.edges])
        colour = label_colours(np.array([obj]))[0]
        lw = np.clip(rad * width_per_nm, 0.5, 8)
        a.add_collection(LineCollection(seg[:, :, [2, 1]], linewidths=lw, colors=[colour], label=str(obj)))
        b.add_collection(LineCollection(seg[:, :, [2, 0]], linewidths=lw, colors=[colour]))
    a.set(title=f"skeletons, xy ({len(graphs)} objects)", xlabel="x (nm)", ylabel="y (nm)")
    b.set(title="skeletons, xz", xlabel="x (nm)", ylabel="z (nm)")
    for ax in (a, b):
        ax.autoscale()
        ax.invert_yaxis()
        ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig


def plot_morphometrics(table: Any, columns: Sequence[str] | None = None) -> Any:
    """Histograms of the numeric morphometric columns (one panel each, at most 8)."""
    plt = _plt()
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    cols = list(columns) if columns else [
        c for c in table.columns if c != "label" and is_numeric_dtype(table[c]) and not is_bool_dtype(table[c])
    ][:8]
    ncol = min(4, max(1, len(cols)))
    nrow = max(1, -(-len(cols) // ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.5 * ncol, 3 * nrow), squeeze=False)
    for ax, c in zip(axes.flat, cols):
        vals = table[c].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        bins: Any = min(30, max(5, len(vals) // 3))
        if vals.size and np.ptp(vals) <= 1e-9 * max(1.0, float(np.abs(vals).max())):
            bins = [vals.min() - 0.5, vals.max() + 0.5]  # (nearly) equal values: numpy cannot split them
        ax.hist(vals, bins=bins, color="tab:blue")
        ax.set(title=c, ylabel="objects")
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_metrics(metrics: Mapping[str, Any]) -> Any:
    """Bars of the scalar metrics, per-section VI / SA bars and worst objects when present.

    ``metrics`` may hold ``per_section`` (list of dicts with ``z`` and numeric keys such as
    ``voi_split``, ``voi_merge``, ``SA50``) and ``worst_objects`` (list of dicts with ``label``
    and ``iou``), besides scalar entries.
    """
    plt = _plt()
    scalars = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}
    per = metrics.get("per_section") or []
    worst = metrics.get("worst_objects") or []
    panels = 1 + bool(per) + bool(worst)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    ax = axes[0, 0]
    ax.barh(list(scalars), list(scalars.values()), color="tab:green")
    for i, v in enumerate(scalars.values()):
        ax.text(v, i, f" {v:.3g}", va="center")
    ax.set(title="metrics")
    k = 1
    if per:
        ax = axes[0, k]
        zs = [row.get("z", i) for i, row in enumerate(per)]
        keys = [key for key in per[0] if key != "z"][:3]
        width = 0.8 / max(1, len(keys))
        for j, key in enumerate(keys):
            ax.bar(np.arange(len(zs)) + j * width, [row.get(key, np.nan) for row in per], width, label=key)
        ax.set_xticks(np.arange(len(zs)) + 0.4 - width / 2, [str(z) for z in zs], fontsize=7)
        ax.set(title="per section", xlabel="z")
        ax.legend()
        k += 1
    if worst:
        ax = axes[0, k]
        rows = sorted(worst, key=lambda r: r.get("iou", 0))[:15]
        ax.barh([str(r.get("label")) for r in rows], [r.get("iou", 0) for r in rows], color="tab:red")
        ax.set(title="worst objects", xlabel="IoU", xlim=(0, 1))
    fig.tight_layout()
    return fig


def write_figures(run_data: Any, figures_dir: str | Path, *, dpi: int = 110) -> dict[str, Path]:
    """Render every figure the run's contents allow into ``figures_dir``; name -> PNG path."""
    plt = _plt()
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo: dict[str, Any] = {}
    if run_data.image is not None and (run_data.labels2d is not None or run_data.labels is not None):
        lab2 = run_data.labels2d if run_data.labels2d is not None else run_data.labels
        todo["sections"] = lambda: plot_section_overlays(run_data.image, lab2)
    if run_data.labels is not None:
        todo["projections"] = lambda: plot_label_projections(run_data.labels, run_data.voxel_size)
    if run_data.skeletons:
        todo["skeletons"] = lambda: plot_skeletons(run_data.skeletons)
    if run_data.morphometrics is not None and len(run_data.morphometrics):
        todo["morphometrics"] = lambda: plot_morphometrics(run_data.morphometrics)
    if run_data.metrics:
        todo["metrics"] = lambda: plot_metrics(run_data.metrics)
    paths = {}
    for name, make in todo.items():
        fig = make()
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name], dpi=dpi)
        plt.close(fig)
    return paths
