"""Stitch the scans of z-blocks: resolve links globally, assign canonical ids, write labels.

The inputs are small tables (one row per 2D object / candidate link), so this step is cheap
compared with the pixel pass; its output is independent of how the stack was cut into blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .track_agglo import join_chains
from .track_links import resolve_links
from .overlap import relabel_section
from .track_scan import ScanResult, read_section

__all__ = ["assemble", "canonical_labels", "link_graph", "KIND_CHAIN"]

KIND_CHAIN = 3
_KIND_NAMES = {1: "mutual", 2: "contained", KIND_CHAIN: "chain"}


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
            links["child_b"].astype(bool), config.mutual_min_score, config.branch_share,
            config.start_share,
        )
    else:
        src = dst = np.zeros(0, np.int64)
        comp, accepted = np.arange(n_nodes), np.zeros(0, bool)
    pair_shift = (np.concatenate([s.pair_shift for s in scans]) if scans
                  else np.zeros((0, 2), np.int64))
    pair_warp = (np.concatenate([s.pair_warp for s in scans]) if scans
                 else np.zeros((0, 2, 3), np.float64))
    e = np.flatnonzero(accepted)
    edge_table = {"src": src[e], "dst": dst[e]}
    for key in ("overlap", "frac_a", "frac_b", "kind", "score", "dy", "dx"):
        edge_table[key] = links[key][e] if e.size else np.zeros(0)
    if config.join_chains and n_nodes:
        comp, edge_table = _join_chains(comp, node_z, nodes["size"], offset,
                                        _concat(scans, "overlaps"), pair_shift, config, edge_table)
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
    node_id = nodes["id"].astype(np.int64) if n_nodes else node_z
    for z in range(depth):
        lo, hi = offset[z], offset[z + 1]
        out[z] = relabel_section(read_section(labels2d, z), node_id[lo:hi], label[lo:hi])

    node_table = {"z": node_z, "id": node_id,
                  "size": nodes["size"].astype(np.int64) if n_nodes else node_z,
                  "cy": nodes["cy"] if n_nodes else np.zeros(0), "cx": nodes["cx"] if n_nodes else np.zeros(0),
                  "bbox": nodes["bbox"].astype(np.int64).reshape(-1, 4), "label3d": label}
    shifts = np.cumsum(pair_shift, axis=0).astype(np.int64)
    return {"labels": out, "nodes": node_table, "edges": edge_table, "shifts": shifts, "warps": pair_warp,
            "n_objects": n_objects, "voxel_size": tuple(voxel_size)}


def _join_chains(comp: np.ndarray, node_z: np.ndarray, node_size: np.ndarray, offset: np.ndarray,
                 overlaps: dict[str, np.ndarray], pair_shift: np.ndarray, config: Any,
                 edges: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Chain-level joins (:mod:`.track_agglo`); one ``KIND_CHAIN`` edge per join."""
    src = offset[overlaps["za"]] + overlaps["ia"]
    dst = offset[overlaps["zb"]] + overlaps["ib"]
    size = node_size.astype(np.int64)
    joins = join_chains(comp, node_z, size, src, dst, overlaps["count"],
                        config.chain_end_fraction, config.chain_end_share)
    r = joins.rows
    count = overlaps["count"][r]
    frac_a, frac_b = count / size[src[r]], count / size[dst[r]]
    new = {"src": src[r], "dst": dst[r], "overlap": count, "frac_a": frac_a, "frac_b": frac_b,
           "kind": np.full(r.size, KIND_CHAIN, np.int8), "score": np.maximum(frac_a, frac_b),
           "dy": pair_shift[overlaps["zb"][r], 0], "dx": pair_shift[overlaps["zb"][r], 1]}
    merged = {k: np.concatenate([np.asarray(edges[k]), new[k]]).astype(
        np.result_type(np.asarray(edges[k]).dtype, new[k].dtype)) for k in new}
    return joins.component, merged


def link_graph(nodes: dict[str, np.ndarray], edges: dict[str, np.ndarray],
               voxel_size: tuple[float, float, float]) -> Any:
    """Build the networkx link graph from the node and accepted-link tables in bulk.

    Nodes are ``(z, id2d)`` with ``size``, ``centroid_nm``, ``bbox``, ``label3d``; edges carry
    ``overlap``, ``frac_a``, ``frac_b``, ``kind``, ``score``, ``dz`` and ``shift``.
    """
    import networkx as nx

    graph = nx.Graph()
    keys = list(zip(nodes["z"].tolist(), nodes["id"].tolist()))
    vz, vy, vx = voxel_size
    cen = zip((nodes["z"] * vz).tolist(), (nodes["cy"] * vy).tolist(), (nodes["cx"] * vx).tolist())
    graph.add_nodes_from(
        (k, {"size": s, "centroid_nm": c, "bbox": tuple(b), "label3d": lab})
        for k, s, c, b, lab in zip(keys, nodes["size"].tolist(), cen, nodes["bbox"].tolist(),
                                   nodes["label3d"].tolist())
    )
    kind = [_KIND_NAMES[int(k)] for k in edges["kind"].tolist()]
    dz = (nodes["z"][edges["src"]] - nodes["z"][edges["dst"]]) * -1
    graph.add_edges_from(
        (keys[s], keys[d], {"overlap": ov, "frac_a": fa, "frac_b": fb, "kind": k, "score": sc,
                            "dz": z, "shift": (dy, dx)})
        for s, d, ov, fa, fb, k, sc, z, dy, dx in zip(
            edges["src"].tolist(), edges["dst"].tolist(), edges["overlap"].astype(np.int64).tolist(),
            edges["frac_a"].astype(float).tolist(), edges["frac_b"].astype(float).tolist(), kind,
            edges["score"].astype(float).tolist(), dz.tolist(), edges["dy"].astype(np.int64).tolist(),
            edges["dx"].astype(np.int64).tolist())
    )
    return graph
