"""The compiled agglomeration against a brute-force one that recomputes every cluster pair each step."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.reconstruct.agglomerate import additive_agglomeration, agglomerate, average_agglomeration, logit


def brute_force(n: int, edges: np.ndarray, num: np.ndarray, den: np.ndarray, stop: float, mean: bool) -> list[int]:
    """Merge the best cluster pair (score, then smaller ids first), recounting all edges every time."""
    label = list(range(n))
    while True:
        sums: dict[tuple[int, int], list[float]] = {}
        for (u, v), x, y in zip(edges.tolist(), num.tolist(), den.tolist()):
            a, b = sorted((label[u], label[v]))
            if a != b:
                s = sums.setdefault((a, b), [0.0, 0.0])
                s[0] += x
                s[1] += y
        best = min(((-(s[0] / s[1] if mean else s[0]), a, b) for (a, b), s in sums.items()
                    if s[1] > 0 and (s[0] / s[1] >= stop if mean else s[0] > 0)), default=None)
        if best is None:
            return label
        _, a, b = best
        label = [a if c == b else c for c in label]


@pytest.mark.parametrize("mean", [True, False])
def test_same_merges_as_brute_force_on_random_graphs(mean):
    # dyadic probabilities and integer weights: every sum is exact, whatever the order of
    # additions, so the two must agree to the element, ties included (many equal scores)
    rng = np.random.default_rng(7)
    for _ in range(150):
        n = int(rng.integers(1, 40))
        e = int(rng.integers(0, 160))
        edges = rng.integers(0, n, (e, 2))
        p = rng.integers(0, 9, e) / 8.0
        w = rng.integers(1, 4, e).astype(np.float64)
        stop = float(rng.choice([0.25, 0.5, 0.75]))
        num, den, at = (w * p, w, stop) if mean else (w * (p - stop), w, 0.0)
        got = agglomerate(n, edges, num, den, at, mean)
        assert got.tolist() == brute_force(n, edges, num, den, at, mean)


@pytest.mark.parametrize("side,stop", [(24, 0.4), (20, 0.3), (30, 0.5)])
def test_grid_graphs_exercise_heap_compaction_growth_and_rehash(side, stop):
    # clusters growing on a grid push many more heap entries than there are edges and re-point
    # many edges: (24, 0.4) fills the heap and compacts it, (20, 0.3) also doubles it, (30, 0.5)
    # rebuilds the hash table (checked by instrumenting the loop when the cases were chosen)
    idx = np.arange(side * side).reshape(side, side)
    edges = np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)])
    rng = np.random.default_rng(0)
    p = rng.integers(4, 17, len(edges)) / 16.0
    w = rng.integers(1, 5, len(edges)).astype(np.float64)
    got = average_agglomeration(side * side, edges, p, w, stop=stop)
    assert got.tolist() == brute_force(side * side, edges, w * p, w, stop, True)
    assert {(24, 0.4): 13, (20, 0.3): 2, (30, 0.5): 76}[(side, stop)] == len(set(got.tolist()))


def test_pooling_self_loops_and_bounds():
    # repeats pool (1-2: (0.9 + 3 * 0.3) / 4 = 0.45 < 0.5), self-loops are ignored
    edges = np.array([[1, 2], [2, 1], [3, 3], [3, 4]])
    p, w = np.array([0.9, 0.3, 1.0, 0.5]), np.array([1.0, 3.0, 5.0, 1.0])
    assert average_agglomeration(5, edges, p, w).tolist() == [0, 1, 2, 3, 3]
    assert average_agglomeration(5, edges, p, w, stop=0.44).tolist() == [0, 1, 1, 3, 3]
    assert agglomerate(0, np.zeros((0, 2), int), np.zeros(0), np.zeros(0), 0.5, True).tolist() == []
    # a zero-weight pair has no mean and is never merged through
    assert average_agglomeration(2, np.array([[0, 1]]), np.array([1.0]), np.array([0.0])).tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"edge endpoints must lie in \[0, 3\)"):
        agglomerate(3, np.array([[0, 3]]), np.ones(1), np.ones(1), 0.5, True)


def test_additive_is_the_summed_log_odds():
    # a chain 0-1-2: 0-1 joins (logit 0.8 > 0), then {0,1}-2 sums logit 0.7 (0-2) and logit 0.2 (1-2)
    edges = np.array([[0, 1], [0, 2], [1, 2]])
    w = np.ones(3)
    assert logit(0.7) + logit(0.2) < 0 < logit(0.8)
    assert additive_agglomeration(3, edges, np.array([0.8, 0.7, 0.2]), w).tolist() == [0, 0, 2]
    assert additive_agglomeration(3, edges, np.array([0.8, 0.7, 0.4]), w).tolist() == [0, 0, 0]
    assert logit(np.array([0.0, 1.0])).tolist() == pytest.approx([-13.8155, 13.8155], abs=1e-4)
