"""Stitch the scans of z-blocks: resolve links globally, assign canonical ids, write labels.

The inputs are small tables (one row per 2D object / candidate link), so this step is cheap
compared with the pixel pass; its output is independent of how the stack was cut into blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .track_links import KIND_MUTUAL, resolve_links
from .overlap import dense_labels
from .track_scan import ScanResult, read_section

__all__ = ["assemble", "canonical_labels"]


def canonical_labels(
    comp: np.ndarray, key: np.ndarray, keep: np.ndarray | None = None
) -> np.ndarray:
    """Consecutive ids ``1..K`` for components, ordered by their smallest ``key``.

    Parameters
    ----------
    comp : numpy.ndarray
        (N,) component index per node.
    key : numpy.ndarray
        (N,) int64 rank of each node's first voxel in C order (any monotonic stand-in).
    keep : numpy.ndarray of bool, optional
        Per component: False -> its nodes get id 0.

    Returns
    -------
    numpy.ndarray
        (N,) uint32 label per node.
    """
    if comp.size == 0:
        return np.zeros(0, dtype=np.uint32)
    n_comp = int(comp.max()) + 1
    first = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, comp, key)
    present = first < np.iinfo(np.int64).max
    if keep is not None:
        present &= keep
    order = np.argsort(np.where(present, first, np.iinfo(np.int64).max), kind="stable")
    rank = np.zeros(n_comp, dtype=np.uint32)
    n_kept = int(present.sum())
    rank[order[:n_kept]] = np.arange(1, n_kept + 1, dtype=np.uint32)
    return rank[comp]


def _concat(scans: list[ScanResult], part: str) -> dict[str, np.ndarray]:
    tables = [getattr(s, part) for s in scans]
    if not tables:
        return {}
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def assemble(
    labels2d: Any,
    scans: list[ScanResult],
    depth: int,
    voxel_size: tuple[float, float, float],
    config: Any,
    out: Any,
) -> dict[str, Any]:
    """Resolve the links of all blocks and write the 3D labels (fields of a TrackResult)."""
    import networkx as nx

    nodes = _concat(scans, "nodes")
    links = _concat(scans, "links")
    shape_yx = tuple(labels2d.shape[1:])
    node_z = nodes["z"].astype(np.int64) if nodes else np.zeros(0, np.int64)
    n_nodes = node_z.size
    offset = np.zeros(depth + 1, dtype=np.int64)
    offset[1:] = np.cumsum(np.bincount(node_z, minlength=depth))
    if links and links["za"].size:
        src = offset[links["za"].astype(np.int64)] + links["ia"].astype(np.int64)
        dst = offset[links["zb"].astype(np.int64)] + links["ib"].astype(np.int64)
        comp, accepted = resolve_links(
            n_nodes, node_z, src, dst, links["kind"], links["score"], links["share"],
            config.mutual_min_score, config.branch_share,
        )
    else:
        src = dst = np.zeros(0, np.int64)
        comp, accepted = np.arange(n_nodes), np.zeros(0, bool)
    # z extent per component -> short objects
    keep = None
    if config.min_z_extent > 1 and n_nodes:
        n_comp = int(comp.max()) + 1
        zmin = np.full(n_comp, depth, dtype=np.int64)
        zmax = np.full(n_comp, -1, dtype=np.int64)
        np.minimum.at(zmin, comp, node_z)
        np.maximum.at(zmax, comp, node_z)
        if config.drop_short:
            keep = (zmax - zmin + 1) >= config.min_z_extent
    # nodes are sorted by z, then by first pixel (C order) within a section, so the node index
    # orders 2D objects by their first voxel in the volume: canonical ids need nothing else
    label = canonical_labels(comp, np.arange(n_nodes, dtype=np.int64), keep)
    n_objects = int(label.max()) if label.size else 0

    # pass 2: write the labels section by section
    if out is None:
        out = np.zeros((depth, *shape_yx), dtype=np.uint32)
    for z in range(depth):
        dense, _ = dense_labels(read_section(labels2d, z))  # same numbering as in the scan
        lut = np.zeros(offset[z + 1] - offset[z] + 1, dtype=np.uint32)
        lut[1:] = label[offset[z]:offset[z + 1]]
        out[z] = lut[dense]

    # link graph
    vz, vy, vx = voxel_size
    graph = nx.Graph()
    if n_nodes:
        zs = node_z.tolist()
        ids = nodes["id"].astype(np.int64).tolist()
        cen = np.stack([node_z * vz, nodes["cy"] * vy, nodes["cx"] * vx], axis=1).tolist()
        graph.add_nodes_from(
            ((z, i), {"size": int(s), "centroid_nm": tuple(c), "bbox": tuple(int(v) for v in b),
                      "label3d": int(lab)})
            for z, i, s, c, b, lab in zip(zs, ids, nodes["size"].tolist(), cen,
                                          nodes["bbox"].astype(np.int64).tolist(), label.tolist())
        )
    if accepted.size:
        e = np.flatnonzero(accepted)
        node_ids = nodes["id"].astype(np.int64)
        graph.add_edges_from(
            ((int(node_z[s]), int(node_ids[s])), (int(node_z[d]), int(node_ids[d])),
             {"overlap": int(ov), "frac_a": float(fa), "frac_b": float(fb),
              "kind": "mutual" if k == KIND_MUTUAL else "contained", "score": float(sc),
              "dz": int(node_z[d] - node_z[s]), "shift": (int(dy), int(dx))})
            for s, d, ov, fa, fb, k, sc, dy, dx in zip(
                src[e].tolist(), dst[e].tolist(), links["overlap"][e].tolist(),
                links["frac_a"][e].tolist(), links["frac_b"][e].tolist(), links["kind"][e].tolist(),
                links["score"][e].tolist(), links["dy"][e].tolist(), links["dx"][e].tolist())
        )
    pair_shift = (np.concatenate([s.pair_shift for s in scans]) if scans
                  else np.zeros((0, 2), np.int64))
    shifts = np.cumsum(pair_shift, axis=0).astype(np.int64)
    return {"labels": out, "graph": graph, "shifts": shifts, "n_objects": n_objects}
