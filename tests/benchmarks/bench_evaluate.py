"""Benchmark: evaluate() on a 250^3 label pair vs scikit-image's VOI + adapted Rand on the same data.

Run: ``python -m pytest tests/benchmarks/bench_evaluate.py -s`` (not collected by default).
evaluate() computes VOI, adapted Rand, IoU matching at 10 thresholds and per-object tables from
one contingency table; scikit-image computes only VOI and adapted Rand (two tables).
"""

from __future__ import annotations

import time

import numpy as np

from dendrosam.reconstruct.evaluation import evaluate

SHAPE = (250, 250, 250)


def blocks(rng: np.random.Generator, block: tuple[int, int, int], offset: int, n_ids: int) -> np.ndarray:
    """Labels constant on boxes of size ``block`` shifted by ``offset`` voxels (0 included)."""
    grid = tuple(-(-(s + offset) // b) for s, b in zip(SHAPE, block))
    ids = rng.integers(0, n_ids, size=grid).astype(np.uint32)
    big = np.repeat(np.repeat(np.repeat(ids, block[0], 0), block[1], 1), block[2], 2)
    return np.ascontiguousarray(big[offset : offset + SHAPE[0], offset : offset + SHAPE[1], offset : offset + SHAPE[2]])


def best_of(fn, repeat: int = 2) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def test_bench_evaluate_250_cubed():
    from skimage.metrics import adapted_rand_error, variation_of_information

    rng = np.random.default_rng(0)
    gt = blocks(rng, (10, 10, 10), 0, 2**20)  # ~15,600 objects
    seg = blocks(rng, (8, 12, 12), 3, 2**20)  # a different, shifted tiling: splits and merges
    t_ours = best_of(lambda: evaluate(gt, seg))
    t_sk = best_of(
        lambda: (variation_of_information(gt, seg, ignore_labels=(0,)), adapted_rand_error(gt, seg)), 1
    )
    m = evaluate(gt, seg)
    split, merge = variation_of_information(gt, seg, ignore_labels=(0,))
    assert np.isclose(m.voi_split, split) and np.isclose(m.voi_merge, merge)
    print(
        f"\n250^3 pair ({gt.size / 1e6:.1f} M voxels, {m.n_gt} GT / {m.n_seg} seg objects): "
        f"evaluate (VOI + ARAND + matching + tables) {t_ours:.2f} s; "
        f"skimage VOI + ARAND {t_sk:.2f} s; ratio skimage / ours = {t_sk / t_ours:.1f}x"
    )
