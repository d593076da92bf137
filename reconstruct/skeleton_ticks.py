"""Tick removal that keeps a skeleton's topology: only tip-to-branch-point paths are ever cut.

kimimaro's ``remove_ticks`` (step 4 of :func:`kimimaro.postprocess`) works on a graph of paths between
critical points. When a tick is removed and its branch point drops to two paths, it fuses them and
marks the fused path as a *terminal* one even when both of its ends are branch points; if that inner
path is shorter than the threshold it is removed next, which cuts a tree in two (an H-shaped tree with
a tick on its short bar comes out as two pieces; ``tests/reconstruct/test_skeleton_ticks.py``). On
pinky40's largest object this split a block-fused skeleton that was whole before post-processing.

:func:`remove_ticks` implements what kimimaro documents: repeatedly remove the shortest path from a
tip to the nearest branch point while it is shorter than the threshold, re-evaluated after every
removal (a branch point that drops to two paths lets the branches through it grow). A path from tip
to tip (an unbranched object) is never removed, and no edge between two branch points ever is, so
the number of connected components never changes.
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["remove_ticks"]


def _walk(adj: list[set], length: dict, tip: int) -> tuple[float, list[int], int]:
    """From a tip to the first vertex of degree >= 3: (length, path without that vertex, that vertex).

    The end is -1 when the walk reaches another tip (an unbranched path).
    """
    path, prev, cur, total = [tip], -1, tip, 0.0
    while True:
        nxt = [v for v in adj[cur] if v != prev]
        if not nxt:
            return total, path, -1
        prev, cur = cur, nxt[0]
        total += length[(min(prev, cur), max(prev, cur))]
        if len(adj[cur]) != 2:
            return (total, path, cur) if len(adj[cur]) >= 3 else (total, path, -1)
        path.append(cur)


def remove_ticks(vertices: np.ndarray, edges: np.ndarray, threshold: float) -> np.ndarray:
    """Edges left after removing every tip-to-branch-point path shorter than ``threshold``.

    Parameters
    ----------
    vertices : ndarray of float, (N, 3)
        Positions in physical units (the threshold's).
    edges : ndarray of int, (E, 2)
        A forest (post-processing removes loops first).
    threshold : float
        Paths from a tip to its branch point shorter than this are removed, shortest first,
        re-evaluated after each removal; 0 removes nothing.

    Returns
    -------
    ndarray of int, (E', 2)
        The kept edges (vertices are not renumbered; drop unused ones with ``consolidate``).

    Examples
    --------
    A T with a 1-unit stub on a 10-unit bar: the stub goes, the bar stays whole.

    >>> v = np.array([[0, 0, 0], [0, 0, 5], [0, 0, 10], [0, 1, 5.]])
    >>> remove_ticks(v, np.array([[0, 1], [1, 2], [1, 3]]), 2.0).tolist()
    [[0, 1], [1, 2]]
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    if threshold <= 0 or not len(edges):
        return edges
    vertices = np.asarray(vertices, np.float64)
    adj: list[set] = [set() for _ in range(len(vertices))]
    length = {}
    for a, b in edges.tolist():
        if a != b:
            adj[a].add(b)
            adj[b].add(a)
            length[(min(a, b), max(a, b))] = float(np.linalg.norm(vertices[a] - vertices[b]))
    heap, ends_at = [], {}

    def push(tip: int) -> None:
        total, path, end = _walk(adj, length, tip)
        if end >= 0 and total < threshold:
            heapq.heappush(heap, (total, tip, end, len(path)))
            ends_at.setdefault(end, set()).add(tip)

    for tip in (v for v in range(len(adj)) if len(adj[v]) == 1):
        push(tip)
    while heap:
        total, tip, end, n = heapq.heappop(heap)
        if len(adj[tip]) != 1 or len(adj[end]) < 3:
            continue  # stale: the tip was removed, or its branch point is no longer one
        now, path, now_end = _walk(adj, length, tip)
        if now_end != end or len(path) != n:
            continue  # stale: the branch grew through a former branch point (pushed again then)
        for a, b in zip(path, path[1:] + [end]):
            adj[a].discard(b)
            adj[b].discard(a)
        ends_at.get(end, set()).discard(tip)
        if len(adj[end]) == 2:  # no longer a branch point: the tips that ended here reach farther
            for other in list(ends_at.pop(end, ())):
                push(other)
    kept = [(a, b) for a in range(len(adj)) for b in adj[a] if a < b]
    return np.asarray(sorted(kept), np.int64).reshape(-1, 2)
