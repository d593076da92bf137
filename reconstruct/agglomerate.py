"""Agglomeration of a weighted object graph: average linkage and GAEC, compiled (numba).

:func:`average_agglomeration` repeatedly merges the two clusters whose interface-weighted mean
edge probability is highest while it is at least ``stop`` (the "average" rule of GASP, Bailoni
et al. 2022); :func:`additive_agglomeration` is greedy additive edge contraction (GAEC, the
multicut heuristic) on weighted log-odds. Both run the same loop (:func:`agglomerate`): a heap of
candidate cluster pairs, lazily invalidated, over a graph held in flat arrays:

* one slot per distinct node pair (endpoints, summed numerator and denominator, alive flag);
* per node, a singly linked list of its half-edges (an edge ``e`` is half-edges ``2e`` and
  ``2e + 1``), so merging ``gone`` into ``keep`` walks ``gone``'s list only;
* an open-addressing hash table from node pair to edge, to find the edge ``keep``-``c`` that an
  edge ``gone``-``c`` folds into;
* an array heap of ``(-score, a, b, edge)``; when it is full its stale entries are dropped,
  and it doubles only if that leaves it more than half full.

That is about 150 bytes per node pair, against about 600 for the dict-of-dicts Python loop it
replaces (``tests/benchmarks/bench_joins.py`` measures both), and the merges are the same: the
same pooled sums (in input order), the same heap order (score, then the smaller id, then the
larger) and the same staleness test, so the result is identical to the element. The cluster of
two merged clusters is named by the smaller id.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .kernels import _njit

__all__ = ["agglomerate", "average_agglomeration", "additive_agglomeration", "logit", "merge_pooled", "pool_pairs"]

_EMPTY = -1  # hash slot never used
_GONE = -2  # hash slot whose pair was deleted (tombstone)


def logit(p: Any) -> Any:
    """``log(p / (1 - p))`` with ``p`` clipped to ``[1e-6, 1 - 1e-6]`` (0 and 1 stay finite)."""
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1.0 - 1e-6)
    return np.log(q) - np.log1p(-q)


def average_agglomeration(n: int, edges: np.ndarray, p: np.ndarray, w: np.ndarray,
                          stop: float = 0.5) -> np.ndarray:
    """Average-linkage agglomeration of a graph with weighted edge probabilities.

    Parameters
    ----------
    n : int
        Number of nodes ``0..n-1``.
    edges : numpy.ndarray
        (E, 2) node pairs (repeats and self-loops allowed; repeats are pooled).
    p, w : numpy.ndarray
        (E,) join probability and weight of each edge.
    stop : float
        Merge while the best cluster pair's weighted mean probability is ``>= stop``.

    Returns
    -------
    numpy.ndarray
        (n,) the smallest node of each node's cluster. Deterministic (ties: smaller ids first).
    """
    w = np.asarray(w, np.float64)
    return agglomerate(n, edges, w * np.asarray(p, np.float64), w, stop, mean=True)


def additive_agglomeration(n: int, edges: np.ndarray, p: np.ndarray, w: np.ndarray,
                           stop: float = 0.5) -> np.ndarray:
    """Greedy additive edge contraction (GAEC, the multicut heuristic) on weighted log-odds.

    Each edge costs ``w * (logit(p) - logit(stop))``; parallel edges add up, and the two
    clusters with the largest summed cost are merged while it is positive. Unlike the average
    linkage, a confident "two objects" edge (``p`` near 0) outweighs many mildly positive ones.
    Same parameters and form of result as :func:`average_agglomeration`.

    Examples
    --------
    >>> edges = np.array([[1, 2], [2, 3], [1, 3]]); p = np.array([0.9, 0.6, 0.01]); w = np.array([1, 10, 1])
    >>> average_agglomeration(4, edges, p, w).tolist()    # {1,2}, then {1,2}-3: (6 + 0.01) / 11 >= 0.5
    [0, 1, 1, 1]
    >>> additive_agglomeration(4, edges, p, w).tolist()   # {2,3} (10 logit 0.6), then 1: logit 0.9 + logit 0.01 < 0
    [0, 1, 2, 2]
    """
    w = np.asarray(w, np.float64)
    return agglomerate(n, edges, w * (logit(p) - logit(stop)), w, 0.0, mean=False)


def agglomerate(n: int, edges: np.ndarray, num: np.ndarray, den: np.ndarray, stop: float,
                mean: bool) -> np.ndarray:
    """Merge the cluster pair of largest ``num / den`` (``mean``) or ``num`` while ``>= stop`` (``> 0``).

    Parameters
    ----------
    n : int
        Number of nodes ``0..n-1``.
    edges : numpy.ndarray
        (E, 2) node pairs; repeats are pooled (:func:`pool_pairs`), self-loops ignored.
    num, den : numpy.ndarray
        (E,) what each edge adds to its pair's numerator and denominator. A pair whose
        denominator is not positive is never merged through directly.
    stop : float
        The merge threshold of the mean (``mean=True``); the sum must be ``> 0`` otherwise.
    mean : bool
        Score a cluster pair by ``num / den`` (average linkage) or by ``num`` (additive).

    Returns
    -------
    numpy.ndarray
        (n,) int64, the smallest node of each node's cluster.
    """
    return merge_pooled(n, *pool_pairs(edges, num, den), stop, mean)


def pool_pairs(edges: np.ndarray, num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct node pairs ``(a, b)``, ``a < b``, sorted, with ``num`` and ``den`` summed in input order.

    Self-loops are dropped. Pooling again after appending more edges gives the same sums as
    pooling everything at once, up to the order of additions (how :func:`.learned_joins` keeps
    its memory bounded by the number of distinct pairs).
    """
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    keep = e[:, 0] != e[:, 1]
    pairs, inv = np.unique(np.sort(e[keep], axis=1), axis=0, return_inverse=True)
    inv = inv.ravel()
    return (pairs.reshape(-1, 2), np.bincount(inv, np.asarray(num, np.float64)[keep], len(pairs)),
            np.bincount(inv, np.asarray(den, np.float64)[keep], len(pairs)))


def merge_pooled(n: int, pairs: np.ndarray, num: np.ndarray, den: np.ndarray, stop: float,
                 mean: bool) -> np.ndarray:
    """:func:`agglomerate` on pairs already pooled by :func:`pool_pairs` (distinct, ``a < b``)."""
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"edge endpoints must lie in [0, {n}), got [{pairs.min()}, {pairs.max()}]")
    parent = np.arange(n, dtype=np.int64)
    if pairs.size:
        _merge_loop(parent, pairs[:, 0].copy(), pairs[:, 1].copy(), np.array(num, np.float64),
                    np.array(den, np.float64), float(stop), bool(mean))
    root = parent.copy()
    while True:  # parents point to smaller ids, so this converges
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt


@_njit
def _slot(table_key, key):  # pragma: no cover - compiled
    """The slot holding ``key``, or the first free slot of its probe sequence (negative: -1 - slot)."""
    mask = table_key.size - 1
    x = key * -7046029254386353131  # Fibonacci hashing (2**64 / golden ratio), wrapping in int64
    i = (x ^ (x >> 29)) & mask
    free = -1
    while True:
        k = table_key[i]
        if k == key:
            return i
        if k == _EMPTY:
            return -1 - (free if free >= 0 else i)
        if k == _GONE and free < 0:
            free = i
        i = (i + 1) & mask


@_njit
def _rehash(table_key, table_val, alive, ea, eb, n):  # pragma: no cover - compiled
    table_key[:] = _EMPTY
    for e in range(alive.size):
        if alive[e]:
            key = ea[e] * n + eb[e]
            s = -1 - _slot(table_key, key)
            table_key[s] = key
            table_val[s] = e


@_njit
def _less(hk, ha, hb, i, j):  # pragma: no cover - compiled
    """Whether heap entry ``i`` comes before entry ``j``: (-score, a, b) in lexicographic order."""
    ki, kj = hk[i], hk[j]
    if ki != kj:
        return ki < kj
    ai, aj = ha[i], ha[j]
    if ai != aj:
        return ai < aj
    return hb[i] < hb[j]


@_njit
def _swap(hk, ha, hb, he, i, j):  # pragma: no cover - compiled
    hk[i], hk[j] = hk[j], hk[i]
    ha[i], ha[j] = ha[j], ha[i]
    hb[i], hb[j] = hb[j], hb[i]
    he[i], he[j] = he[j], he[i]


@_njit
def _sift_down(hk, ha, hb, he, i, size):  # pragma: no cover - compiled
    while 2 * i + 1 < size:
        c = 2 * i + 1
        if c + 1 < size and _less(hk, ha, hb, c + 1, c):
            c += 1
        if not _less(hk, ha, hb, c, i):
            return
        _swap(hk, ha, hb, he, i, c)
        i = c


@_njit
def _sift_up(hk, ha, hb, he, i):  # pragma: no cover - compiled
    while i > 0 and _less(hk, ha, hb, i, (i - 1) // 2):
        _swap(hk, ha, hb, he, i, (i - 1) // 2)
        i = (i - 1) // 2


@_njit
def _score(num, den, mean):  # pragma: no cover - compiled
    if not mean:
        return num
    return num / den if den > 0.0 else -np.inf


@_njit
def _mergeable(x, stop, mean):  # pragma: no cover - compiled
    return x >= stop if mean else x > 0.0


@_njit
def _compact(hk, ha, hb, he, size, alive, ea, eb, enum, eden, mean):  # pragma: no cover - compiled
    """Keep the heap entries that are still valid (same pair, same score), re-heapify; new size."""
    kept = 0
    for i in range(size):
        q = he[i]
        if alive[q] and ea[q] == ha[i] and eb[q] == hb[i] and _score(enum[q], eden[q], mean) == -hk[i]:
            hk[kept], ha[kept], hb[kept], he[kept] = hk[i], ha[i], hb[i], q
            kept += 1
    for i in range(kept // 2 - 1, -1, -1):
        _sift_down(hk, ha, hb, he, i, kept)
    return kept


@_njit
def _merge_loop(parent, ea, eb, enum, eden, stop, mean):  # pragma: no cover - compiled
    n = parent.size
    n_edges = ea.size
    alive = np.ones(n_edges, np.bool_)
    head = np.full(n, -1, np.int64)
    nxt = np.empty(2 * n_edges, np.int64)
    for e in range(n_edges):
        nxt[2 * e] = head[ea[e]]
        head[ea[e]] = 2 * e
        nxt[2 * e + 1] = head[eb[e]]
        head[eb[e]] = 2 * e + 1
    cap = 16
    while cap < 2 * n_edges:
        cap *= 2
    table_key = np.empty(cap, np.int64)
    table_val = np.empty(cap, np.int64)
    _rehash(table_key, table_val, alive, ea, eb, n)
    used = n_edges  # live keys + tombstones
    live = n_edges

    hcap = max(16, n_edges)
    hk = np.empty(hcap, np.float64)
    ha = np.empty(hcap, np.int64)
    hb = np.empty(hcap, np.int64)
    he = np.empty(hcap, np.int64)
    size = 0
    for e in range(n_edges):
        x = _score(enum[e], eden[e], mean)
        if eden[e] > 0.0 and _mergeable(x, stop, mean):
            hk[size], ha[size], hb[size], he[size] = -x, ea[e], eb[e], e
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(hk, ha, hb, he, i, size)

    while size:
        neg, a, b, e = hk[0], ha[0], hb[0], he[0]
        size -= 1
        hk[0], ha[0], hb[0], he[0] = hk[size], ha[size], hb[size], he[size]
        _sift_down(hk, ha, hb, he, 0, size)
        if not alive[e] or ea[e] != a or eb[e] != b or _score(enum[e], eden[e], mean) != -neg:
            continue  # stale: a or b was merged since, or the pair's score changed
        keep, gone = a, b  # a < b
        parent[gone] = keep
        alive[e] = False
        live -= 1
        table_key[_slot(table_key, keep * n + gone)] = _GONE
        h = head[gone]
        head[gone] = -1
        while h >= 0:
            h_next = nxt[h]
            g = h >> 1
            if alive[g]:
                c = ea[g] + eb[g] - gone
                table_key[_slot(table_key, min(gone, c) * n + max(gone, c))] = _GONE
                lo, hi = min(keep, c), max(keep, c)
                s = _slot(table_key, lo * n + hi)
                if s >= 0:  # keep-c exists: pool into it
                    f = table_val[s]
                    enum[f] += enum[g]
                    eden[f] += eden[g]
                    alive[g] = False
                    live -= 1
                else:  # move the edge over to keep
                    f = g
                    ea[g], eb[g] = lo, hi
                    s = -1 - s
                    if table_key[s] == _EMPTY:
                        used += 1
                    table_key[s] = lo * n + hi
                    table_val[s] = g
                    nxt[h] = head[keep]
                    head[keep] = h
                x = _score(enum[f], eden[f], mean)
                if _mergeable(x, stop, mean):
                    if size == hk.size:  # full: drop the stale entries, grow if still half full
                        size = _compact(hk, ha, hb, he, size, alive, ea, eb, enum, eden, mean)
                        if 2 * size > hk.size:
                            hk = np.concatenate((hk, np.empty(hk.size, np.float64)))
                            ha = np.concatenate((ha, np.empty(ha.size, np.int64)))
                            hb = np.concatenate((hb, np.empty(hb.size, np.int64)))
                            he = np.concatenate((he, np.empty(he.size, np.int64)))
                    hk[size], ha[size], hb[size], he[size] = -x, lo, hi, f
                    size += 1
                    _sift_up(hk, ha, hb, he, size - 1)
            h = h_next
        if 10 * used > 7 * table_key.size:  # too many tombstones: rebuild the table
            _rehash(table_key, table_val, alive, ea, eb, n)
            used = live
