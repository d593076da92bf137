"""Measure the tracker alone: perfect 2D masks from ground truth in, 3D labels out, VI / ARAND.

Usage::

    python examples/tracker_quality.py [DATA_DIR]

DATA_DIR holds ``medulla_fib/`` and ``isbi2012_sstem/`` (default: $DENDROSAM_SHARED_DATA or
``../shared/data`` beside the repository). Two definitions of "perfect 2D masks":

(a) every section's GT ids renumbered independently (one 2D object per neuron and section);
(b) every section's 2D connected components (4-connected) of the GT: what a segmenter really
    produces, since a neuron's cross-section is often several pieces.

pinky40 (an automatic segmentation, taken as the truth for the linking alone) and the gala crop at
40 nm (``[::4]``), when present, were never used to choose a setting. Perturbations (on (a) and (b)): 5 % of
the 2D objects removed, one section missing (all zero), one
section shifted by 20 px, one section rotated by 4 degrees about its centre (the default
tracker only compensates translations; "track, affine alignment" is
``TrackConfig(align_model="affine")``). The perturbed voxels are removed from the GT too (a missing object
cannot be tracked), so the figures measure the linking only. Baselines: "greedy" links every 2D
object to the previous section's object of largest IoU; "all" joins every overlapping pair.
"track + chain joins" is the tracker with ``TrackConfig(join_chains=True)``; "per-neuron masks" is
``TrackConfig.per_neuron_masks()`` (a mutual link that a chain end without a partner competes for is
refused, no branch starts join co-existing chains, a section is bridged only where the ends' places
are mostly empty, and sections are aligned affinely where overlaps collapse); "per-neuron masks,
translations" is the same with ``align_model="translation"``. The last tables say where ISBI's VI merge comes
from: the accepted links that join two GT ids, by kind, and the figures with each kind removed using the
GT (a diagnosis, not a method).
Defaults were chosen on medulla x < 125 and ISBI z 0-9; medulla x >= 125 and ISBI z 10-19 are
the held-out rows. Metrics (``dendrosam.reconstruct.evaluate``) over GT foreground voxels: VI split = H(seg|gt),
VI merge = H(gt|seg) in bits, and the adapted Rand error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np


def metrics(gt: np.ndarray, seg: np.ndarray) -> dict[str, float]:
    """VI split / merge (bits) and adapted Rand error over the voxels where ``gt > 0``."""
    from dendrosam.reconstruct import evaluate

    m = evaluate(gt, seg, ignore_background=True).to_dict()
    return {"vi_split": m["voi_split"], "vi_merge": m["voi_merge"], "arand": m["arand"]}


def per_section(gt: np.ndarray, mode: str) -> np.ndarray:
    """Perfect 2D masks: 'a' = GT ids renumbered per section, 'b' = 2D connected components."""
    import cc3d
    import fastremap

    out = np.zeros(gt.shape, dtype=np.uint32)
    for z in range(gt.shape[0]):
        if mode == "a":
            out[z] = fastremap.renumber(gt[z].astype(np.uint32), in_place=False)[0]
        else:
            out[z] = cc3d.connected_components(gt[z], connectivity=4)
    return out


def baseline(labels2d: np.ndarray, join_all: bool) -> np.ndarray:
    """'greedy' (each object -> previous object of largest IoU) or 'all' overlapping pairs."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    from dendrosam.reconstruct.overlap import contingency, section_objects

    objs = [section_objects(s) for s in labels2d]
    offset = np.cumsum([0] + [o.n for o in objs])
    src, dst = [], []
    for z in range(1, len(objs)):
        a, b = objs[z - 1], objs[z]
        ia, ib, c = contingency(a.dense, b.dense)
        if not join_all and c.size:
            iou = c / (a.size[ia] + b.size[ib] - c)
            order = np.lexsort((-iou, ib))
            first = np.r_[True, ib[order][1:] != ib[order][:-1]]
            ia, ib = ia[order[first]], ib[order[first]]
        src.append(offset[z - 1] + ia)
        dst.append(offset[z] + ib)
    src, dst = np.concatenate(src), np.concatenate(dst)
    n = int(offset[-1])
    _, comp = connected_components(sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)))
    out = np.zeros(labels2d.shape, dtype=np.uint32)
    for z, o in enumerate(objs):
        lut = np.r_[0, comp[offset[z]:offset[z + 1]] + 1].astype(np.uint32)
        out[z] = lut[o.dense]
    return out


def perturb(gt: np.ndarray, seg2d: np.ndarray, kind: str, seed: int = 0):
    """Return (gt, labels2d) with one perturbation applied to both (see module docstring)."""
    gt, seg2d = gt.copy(), seg2d.copy()
    z_mid = gt.shape[0] // 2
    if kind == "drop5":
        rng = np.random.default_rng(seed)
        for z in range(seg2d.shape[0]):
            ids = np.unique(seg2d[z])[1:]
            gone = rng.choice(ids, size=int(round(0.05 * ids.size)), replace=False)
            hit = np.isin(seg2d[z], gone)
            seg2d[z][hit] = 0
            gt[z][hit] = 0
    elif kind == "missing":
        seg2d[z_mid] = 0
        gt[z_mid] = 0
    elif kind == "shift20":
        from dendrosam.reconstruct.overlap import shift_image

        seg2d[z_mid] = shift_image(seg2d[z_mid], 20, 20)
        gt[z_mid] = shift_image(gt[z_mid], 20, 20)
    elif kind == "rotate4":  # not a translation: the tracker's alignment cannot undo it
        from scipy.ndimage import rotate

        seg2d[z_mid] = rotate(seg2d[z_mid], 4.0, reshape=False, order=0, mode="constant")
        gt[z_mid] = rotate(gt[z_mid], 4.0, reshape=False, order=0, mode="constant")
    return gt, seg2d


def gt_continuity(gt: np.ndarray) -> list[tuple[int, int, int]]:
    """Per section pair (z, z + 1): GT ids that end and that begin there, away from the borders.

    An id "ends" at z when it is in sections z - 1 and z but not in z + 1, and its profile in z
    does not touch the section's border (it could leave the field there); it "begins" at z + 1
    when it is in z + 1 but not in z. In a GT built from 3D connected pieces, a jump in the
    alignment cuts thin neurites apart and shows up as a burst of both.
    """
    rows = []
    for z in range(1, gt.shape[0] - 1):
        before, here, after = (set(np.unique(gt[k])) - {0} for k in (z - 1, z, z + 1))
        border = set(np.unique(np.concatenate([gt[z][0], gt[z][-1], gt[z][:, 0], gt[z][:, -1]])))
        rows.append((z, len((before & here) - after - border), len(after - here)))
    return rows


def wrong_links(gt: np.ndarray, labels2d: np.ndarray, result) -> dict[str, np.ndarray]:
    """Classify the tracker's accepted links against the GT (input (a): one GT id per 2D object).

    Returns boolean arrays over ``result.edges``: ``wrong`` (the link joins two GT ids),
    ``shifted`` (a shift was compensated between its two sections) and ``end_begin`` (the earlier
    object's GT id ends before the later section and the later one's begins after the earlier
    section: a GT split of one neurite, or a neurite ending where another begins).
    """
    nodes, edges = result.nodes, result.edges
    node_gt = np.zeros(nodes["z"].size, dtype=np.int64)
    first, last = {}, {}
    for z in range(gt.shape[0]):
        rows = np.flatnonzero(nodes["z"] == z)
        pick = labels2d[z] > 0
        pairs = np.unique(np.stack([labels2d[z][pick], gt[z][pick]]).astype(np.int64), axis=1)
        lut = dict(zip(pairs[0].tolist(), pairs[1].tolist()))  # (a): each 2D id is one GT id
        node_gt[rows] = [lut[i] for i in nodes["id"][rows].tolist()]
        for g in np.unique(gt[z][gt[z] > 0]).tolist():
            first.setdefault(g, z)
            last[g] = z
    src, dst = edges["src"], edges["dst"]
    za, zb = nodes["z"][src], nodes["z"][dst]
    ga, gb = node_gt[src], node_gt[dst]
    shifted = np.any(result.shifts[zb] != result.shifts[za], axis=1)
    end_begin = np.array([last[a] < b and first[c] > d for a, b, c, d in
                          zip(ga.tolist(), zb.tolist(), gb.tolist(), za.tolist())], dtype=bool)
    return {"wrong": ga != gb, "shifted": shifted, "end_begin": end_begin & (ga != gb)}


def relink(labels2d: np.ndarray, result, keep: np.ndarray) -> np.ndarray:
    """3D labels from the tracker's nodes joined by the accepted links where ``keep`` is True."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    nodes, edges = result.nodes, result.edges
    n = nodes["z"].size
    graph = sp.coo_matrix((np.ones(int(keep.sum())), (edges["src"][keep], edges["dst"][keep])), shape=(n, n))
    comp = connected_components(graph, directed=False)[1] + 1
    out = np.zeros(labels2d.shape, dtype=np.uint32)
    for z in range(labels2d.shape[0]):
        rows = np.flatnonzero(nodes["z"] == z)
        lut = np.zeros(int(labels2d[z].max()) + 1, dtype=np.uint32)
        lut[nodes["id"][rows]] = comp[rows]
        out[z] = lut[labels2d[z]]
    return out


def merge_sources(gt: np.ndarray, labels2d: np.ndarray, result) -> list[tuple[str, int, dict[str, float]]]:
    """Where the VI merge comes from: the figures with classes of wrong links removed (an oracle).

    Each row removes, with knowledge of the GT, one class of the accepted links that join two GT
    ids, and recomputes the metrics. The last row keeps only the end-to-begin links across
    compensated shifts: what a linker that keeps neurites whole across a misalignment (as the
    tracker must) can reach at best on a GT cut at those sections.
    """
    c = wrong_links(gt, labels2d, result)
    wrong, shifted, eb = c["wrong"], c["shifted"], c["end_begin"]
    rows = [("as tracked", 0, np.zeros_like(wrong)),
            ("without every wrong link", int(wrong.sum()), wrong),
            ("without the wrong links of aligned pairs", int((wrong & ~shifted).sum()), wrong & ~shifted),
            ("without the wrong links of shifted pairs", int((wrong & shifted).sum()), wrong & shifted),
            ("without every wrong link but end-to-begin ones at shifted pairs",
             int((wrong & ~(eb & shifted)).sum()), wrong & ~(eb & shifted))]
    return [(name, n, metrics(gt, relink(labels2d, result, ~drop))) for name, n, drop in rows]


def main(data_dir: Path) -> None:
    import tifffile

    from dendrosam.reconstruct.tracking import TrackConfig, track

    med_cube = tifffile.imread(data_dir / "medulla_fib" / "neurons_z000-124.ome.tif")
    med = med_cube[::4]
    isbi = tifffile.imread(data_dir / "isbi2012_sstem" / "neurites_z00-19.ome.tif")
    volumes = {
        "medulla 40nm": (med, (40, 10, 10)),
        "medulla x<125": (med[:, :, :125], (40, 10, 10)),
        "medulla x>=125": (med[:, :, 125:], (40, 10, 10)),
        "ISBI": (isbi, (50, 4, 4)),
        "ISBI z0-9": (isbi[:10], (50, 4, 4)),
        "ISBI z10-19": (isbi[10:], (50, 4, 4)),
        **{f"medulla [{k}::4]": (med_cube[k::4], (40, 10, 10)) for k in (1, 2, 3)},  # the other 40 nm stacks
    }
    # never used to choose a setting: pinky40 (an automatic segmentation of mouse cortex, taken as the
    # truth for the linking alone) and the gala FIB-SEM crop at 40 nm
    pinky = data_dir / "pinky40_seg" / "segmentation.ome.tif"
    if pinky.exists():
        volumes["pinky40 (independent)"] = (tifffile.imread(pinky), (40, 32, 32))
    gala = data_dir / "gala_fib" / "neurons.ome.tif"
    if gala.exists():
        volumes["gala [::4] (independent)"] = (tifffile.imread(gala)[::4], (40, 10, 10))
    config = TrackConfig()
    joins = TrackConfig(join_chains=True)
    affine = TrackConfig(align_model="affine")
    per_neuron = TrackConfig.per_neuron_masks()
    per_neuron_shifts = TrackConfig.per_neuron_masks(align_model="translation")
    print("| volume | input | method | VI split | VI merge | VI | ARAND | objects |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (gt, vs) in volumes.items():
        rows = []
        for mode in ("a", "b"):
            seg2d = per_section(gt, mode)
            rows.append((f"({mode})", "track", gt, track(seg2d, vs, config).labels))
            rows.append((f"({mode})", "track + chain joins", gt, track(seg2d, vs, joins).labels))
            rows.append((f"({mode})", "track, affine alignment", gt, track(seg2d, vs, affine).labels))
            rows.append((f"({mode})", "track, per-neuron masks", gt, track(seg2d, vs, per_neuron).labels))
            rows.append((f"({mode})", "track, per-neuron masks, translations", gt,
                         track(seg2d, vs, per_neuron_shifts).labels))
            rows.append((f"({mode})", "greedy IoU", gt, baseline(seg2d, join_all=False)))
            if mode == "b":
                rows.append((f"({mode})", "all overlaps", gt, baseline(seg2d, join_all=True)))
        if name in ("medulla 40nm", "ISBI"):
            for mode in ("a", "b"):
                seg2d = per_section(gt, mode)
                methods = {"track": config, "track, per-neuron masks": per_neuron}
                if mode == "b":
                    methods.update({"track + chain joins": joins, "track, affine alignment": affine})
                for kind in ("drop5", "missing", "shift20", "rotate4"):
                    gt_p, seg_p = perturb(gt, seg2d, kind)
                    for method, cfg in methods.items():
                        rows.append((f"({mode})+{kind}", method, gt_p, track(seg_p, vs, cfg).labels))
                    rows.append((f"({mode})+{kind}", "greedy IoU", gt_p, baseline(seg_p, join_all=False)))
        for inp, method, g, seg in rows:
            m = metrics(g, seg)
            n_obj = len(np.unique(seg)) - (1 if (seg == 0).any() else 0)
            print(f"| {name} | {inp} | {method} | {m['vi_split']:.3f} | {m['vi_merge']:.3f} | "
                  f"{m['vi_split'] + m['vi_merge']:.3f} | {m['arand']:.3f} | {n_obj} |")
    isbi_a = per_section(isbi, "a")
    results = {}
    for label, cfg in (("default", config), ("per-neuron masks", per_neuron)):
        result = results[label] = track(isbi_a, (50, 4, 4), cfg)
        c = wrong_links(isbi, isbi_a, result)
        print(f"\nISBI (a), {label}: {int(c['wrong'].sum())} of {c['wrong'].size} accepted links join two GT ids; "
              f"{int((c['wrong'] & c['shifted']).sum())} at shifted pairs, "
              f"{int((c['end_begin'] & c['shifted']).sum())} of them from a GT id that ends to one that begins")
        print("| wrong links removed with the GT's knowledge | links | VI split | VI merge |")
        print("|---|---|---|---|")
        for name, n, m in merge_sources(isbi, isbi_a, result):
            print(f"| {name} | {n} | {m['vi_split']:.3f} | {m['vi_merge']:.3f} |")
    shifts = results["default"].shifts  # the translations (the affine fits refine some of them)
    print("\nISBI GT ids ending at z / beginning at z + 1 inside the field, and the tracker's shift between them")
    for z, ends, begins in gt_continuity(isbi):
        print(f"z {z:2d} -> {z + 1:2d}: {ends:3d} end, {begins:3d} begin, shift {tuple(int(v) for v in shifts[z + 1] - shifts[z])}")


if __name__ == "__main__":
    default = os.environ.get("DENDROSAM_SHARED_DATA",
                             str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    main(Path(sys.argv[1] if len(sys.argv) > 1 else default))
