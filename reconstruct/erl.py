"""Expected run length (ERL) of a segmentation measured on ground-truth skeletons (funlib convention).

Input: GT skeletons ``{skeleton id: networkx graph}`` with node attribute ``pos`` (z, y, x) in nm,
and for every node the predicted segment id found at its position. Edge length = Euclidean
distance of its end nodes (nm). For every skeleton s of total length L_s:

- s is *merged* if a segment that covers one of its nodes also covers a node of another
  skeleton; all of s then counts 0 (every edge is a merge error);
- otherwise an edge whose end nodes carry different segments is a *split* (cut), an edge with
  an end node in segment 0 is *omitted*, and an edge with both ends in segment j is correct;
- the run of segment j on s is the summed length r_sj of its correct edges.

Then::

    ERL            = sum_s (L_s / L) * sum_j r_sj^2 / L_s  = sum_s sum_j r_sj^2 / L,   L = sum_s L_s
    ERL_perfect    = sum_s L_s^2 / L
    normalised ERL = ERL / ERL_perfect  (in [0, 1])

Difference from funlib: segment 0 (background) never merges skeletons; nodes in background
only cost the edges that touch them (funlib would also mark such skeletons merged).
A straight skeleton of length L cut in its middle has ERL L/2; merged with another, 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import InputError, VoxelSizeError

__all__ = ["ERLResult", "expected_run_length", "segment_ids_at_nodes"]


@dataclass(frozen=True)
class ERLResult:
    """Expected run length and its error counts.

    Attributes
    ----------
    erl, erl_perfect : float
        ERL of the segmentation and of a perfect one (nm).
    total_length : float
        Summed skeleton length L (nm).
    n_skeletons, n_merged_skeletons : int
        Skeletons evaluated and skeletons that count 0 because of a merge.
    n_split_edges, n_omitted_edges : int
        Edges cut between two segments, and edges touching segment 0 (non-merged skeletons).
    n_merging_segments : int
        Segments that cover nodes of more than one skeleton.
    """

    erl: float
    erl_perfect: float
    total_length: float
    n_skeletons: int
    n_merged_skeletons: int
    n_split_edges: int
    n_omitted_edges: int
    n_merging_segments: int

    @property
    def normalized(self) -> float:
        """ERL / ERL_perfect (NaN without skeleton length)."""
        return self.erl / self.erl_perfect if self.erl_perfect > 0 else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        """JSON-safe dictionary (prefixed ``erl_`` keys are used by :class:`Metrics`)."""
        return {
            "erl": self.erl,
            "erl_perfect": self.erl_perfect,
            "erl_normalized": self.normalized,
            "skeleton_length": self.total_length,
            "n_skeletons": self.n_skeletons,
            "n_merged_skeletons": self.n_merged_skeletons,
            "n_split_edges": self.n_split_edges,
            "n_omitted_edges": self.n_omitted_edges,
            "n_merging_segments": self.n_merging_segments,
        }


def _edge_arrays(graph: Any, segments: Mapping[Hashable, int], sid: Any) -> tuple[np.ndarray, ...]:
    """Edge lengths (nm) and end-node segment ids of one skeleton."""
    edges = list(graph.edges())
    try:
        pos_u = np.array([graph.nodes[u]["pos"] for u, _ in edges], np.float64).reshape(-1, 3)
        pos_v = np.array([graph.nodes[v]["pos"] for _, v in edges], np.float64).reshape(-1, 3)
        seg_u = np.array([segments[u] for u, _ in edges], np.int64)
        seg_v = np.array([segments[v] for _, v in edges], np.int64)
    except KeyError as exc:
        raise InputError(f"skeleton {sid}: node without 'pos' or without a segment id ({exc})") from None
    return np.linalg.norm(pos_u - pos_v, axis=1), seg_u, seg_v


def expected_run_length(
    gt_skeletons: Mapping[int, Any], node_segments: Mapping[int, Mapping[Hashable, int]]
) -> ERLResult:
    """Expected run length of a segmentation on GT skeletons; see the module docstring.

    Parameters
    ----------
    gt_skeletons : mapping of int to networkx.Graph
        GT skeleton per id; nodes carry ``pos`` (z, y, x) in nm.
    node_segments : mapping of int to mapping of node to int
        ``node_segments[skeleton id][node]`` = predicted segment id at that node (0 = none), e.g.
        from :func:`segment_ids_at_nodes`.

    Returns
    -------
    ERLResult

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.path_graph(3)
    >>> nx.set_node_attributes(g, {0: (0, 0, 0), 1: (0, 0, 50), 2: (0, 0, 100)}, "pos")
    >>> expected_run_length({1: g}, {1: {0: 7, 1: 7, 2: 7}}).erl
    100.0
    """
    owners: dict[int, set[int]] = {}
    for sid, segments in node_segments.items():
        for seg in set(int(v) for v in segments.values()) - {0}:
            owners.setdefault(seg, set()).add(int(sid))
    merging = {seg for seg, sids in owners.items() if len(sids) > 1}
    merged = set().union(*(owners[seg] for seg in merging)) if merging else set()

    total = perfect = run_sq = 0.0
    n_split = n_omit = 0
    for sid, graph in gt_skeletons.items():
        if sid not in node_segments:
            raise InputError(f"skeleton {sid}: no node segment lookup given")
        length, seg_u, seg_v = _edge_arrays(graph, node_segments[sid], sid)
        skel_len = float(length.sum())
        total += skel_len
        perfect += skel_len**2
        if int(sid) in merged:
            continue
        omitted = (seg_u == 0) | (seg_v == 0)
        split = ~omitted & (seg_u != seg_v)
        correct = ~omitted & ~split
        n_omit += int(omitted.sum())
        n_split += int(split.sum())
        _, inverse = np.unique(seg_u[correct], return_inverse=True)
        runs = np.bincount(inverse, weights=length[correct])
        run_sq += float(np.dot(runs, runs))
    return ERLResult(
        erl=run_sq / total if total > 0 else 0.0,
        erl_perfect=perfect / total if total > 0 else 0.0,
        total_length=total,
        n_skeletons=len(gt_skeletons),
        n_merged_skeletons=len(merged & {int(s) for s in gt_skeletons}),
        n_split_edges=n_split,
        n_omitted_edges=n_omit,
        n_merging_segments=len(merging),
    )


def segment_ids_at_nodes(
    gt_skeletons: Mapping[int, Any], seg: np.ndarray, voxel_size: tuple[float, float, float]
) -> dict[int, dict[Hashable, int]]:
    """Look up the segment id under every skeleton node.

    Node positions (nm, z y x, voxel centres at ``index * voxel_size``) are rounded to the
    nearest voxel.

    Parameters
    ----------
    gt_skeletons : mapping of int to networkx.Graph
        Skeletons with node attribute ``pos`` in nm.
    seg : numpy.ndarray
        (Z, Y, X) predicted labels.
    voxel_size : tuple of float
        (z, y, x) nm.

    Returns
    -------
    dict
        ``{skeleton id: {node: segment id}}`` for :func:`expected_run_length`.

    Raises
    ------
    InputError
        A node lies outside the volume (by more than half a voxel).
    """
    vs = np.asarray(voxel_size, dtype=np.float64)
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or (vs <= 0).any():
        raise VoxelSizeError(f"voxel_size must be 3 positive numbers (z, y, x) nm, got {voxel_size}")
    seg = np.asarray(seg)
    out: dict[int, dict[Hashable, int]] = {}
    for sid, graph in gt_skeletons.items():
        nodes = list(graph.nodes())
        try:
            pos = np.array([graph.nodes[n]["pos"] for n in nodes], np.float64).reshape(-1, 3)
        except KeyError:
            raise InputError(f"skeleton {sid}: a node has no 'pos' attribute") from None
        idx = np.rint(pos / vs).astype(np.int64)
        bad = ((idx < 0) | (idx >= np.array(seg.shape))).any(axis=1)
        if bad.any():
            raise InputError(
                f"skeleton {sid}: node at {pos[bad][0].tolist()} nm lies outside the segmentation "
                f"of shape {seg.shape} with voxel size {tuple(vs.tolist())} nm"
            )
        values = seg[idx[:, 0], idx[:, 1], idx[:, 2]]
        out[int(sid)] = dict(zip(nodes, values.astype(np.int64).tolist()))
    return out
