"""Tracker throughput and memory (not collected by default).

Run: ``python -m pytest tests/benchmarks/bench_track.py -s``. Prints sections/s (best of three
runs after a warm-up call, for both trackers) of
:func:`dendrosam.reconstruct.track` against a straightforward per-object Python tracker (one
boolean mask per object, ``np.unique`` of the previous section under it, best-IoU link) measured
in the same run on the same data, and the tracemalloc peak for 20 vs 80 sections of a lazily
generated stack (output discarded), which should be flat.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from scipy.spatial import cKDTree

from dendrosam.reconstruct.tracking import track

TILE = 256


class SyntheticStack:
    """Lazy (Z, Y, X) stack of drifting Voronoi cells, ids scrambled per section.

    A ``TILE``-pixel Voronoi tile of ``n_seeds`` cells is tiled ``reps x reps`` times with
    distinct ids, so a 2048-px section holds ``64 * n_seeds`` objects.
    """

    def __init__(self, depth: int, reps: int, n_seeds: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.shape = (depth, TILE * reps, TILE * reps)
        self.dtype = np.dtype(np.uint32)
        self._reps, self._n = reps, n_seeds
        self._seeds = rng.uniform(0, TILE, (n_seeds, 2))
        self._drift = rng.normal(0, 1.5, (n_seeds, 2))
        self._seed = seed
        yy, xx = np.mgrid[:TILE, :TILE]
        self._pix = np.c_[yy.ravel(), xx.ravel()]

    def __getitem__(self, z: int) -> np.ndarray:
        seeds = (self._seeds + z * self._drift) % TILE
        _, cell = cKDTree(seeds, boxsize=TILE).query(self._pix % TILE)
        tile = cell.reshape(TILE, TILE).astype(np.uint32)
        r = self._reps
        offsets = (np.arange(r * r, dtype=np.uint32) * self._n).reshape(r, r)
        big = np.kron(offsets, np.ones((TILE, TILE), np.uint32)) + np.tile(tile, (r, r)) + 1
        lut = np.random.default_rng(self._seed + z).permutation(r * r * self._n).astype(np.uint32) + 1
        return lut[big - 1]


class Sink:
    """Write target that keeps nothing but a checksum."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self.total = 0

    def __setitem__(self, z: int, section: np.ndarray) -> None:
        self.total += int(section.max(initial=0))


def naive_track(sections: list[np.ndarray]) -> int:
    """Per-object loop: link every object to the previous section's object of largest IoU.

    For each object, the candidate partners are the ids under its mask; the IoU with each is
    computed by comparing the two boolean masks.
    """
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    for z in range(1, len(sections)):
        prev, cur = sections[z - 1], sections[z]
        for obj in np.unique(cur):
            if obj == 0:
                continue
            mask = cur == obj
            best, best_iou = None, 0.0
            for cand in np.unique(prev[mask]):
                if cand == 0:
                    continue
                other = prev == cand
                iou = np.count_nonzero(mask & other) / np.count_nonzero(mask | other)
                if iou > best_iou:
                    best, best_iou = cand, iou
            if best is not None:
                parent[(z, int(obj))] = (z - 1, int(best))
    return len(parent)


@pytest.mark.parametrize("reps, n_seeds, depth, naive_depth", [(1, 100, 40, 6), (8, 31, 6, 2)])
def test_throughput(reps, n_seeds, depth, naive_depth):
    stack = SyntheticStack(depth, reps, n_seeds)
    sections = np.stack([stack[z] for z in range(depth)])  # generation not timed
    result = track(sections[:3], (40, 10, 10))  # warm-up: lazy imports are not throughput
    naive_track(list(sections[:2]))
    t_fast = t_naive = np.inf
    for _ in range(3):  # best of three runs of each, interleaved
        t0 = time.perf_counter()
        result = track(sections, (40, 10, 10))
        t_fast = min(t_fast, time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive_track(list(sections[:naive_depth]))
        t_naive = min(t_naive, time.perf_counter() - t0)
    fast_rate = depth / t_fast
    naive_rate = (naive_depth - 1) / t_naive  # links per section pair
    n_obj = len(np.unique(sections[0])) - 1
    print(f"\n{sections.shape[1]}x{sections.shape[2]} px, {n_obj} objects/section: "
          f"track {fast_rate:.2f} sections/s ({result.n_objects} 3D objects), "
          f"per-object loop {naive_rate:.3f} sections/s -> {fast_rate / naive_rate:.0f}x")
    assert fast_rate > naive_rate


def test_memory_flat_in_depth():
    """Peak memory must not grow with Z: the pixel working set is ``gap + 2`` sections.

    1024 x 1024 sections with ~100 objects each, generated lazily, output discarded. What does
    grow is the returned graph (one node per 2D object): reported separately.
    """
    peaks, kept = {}, {}
    for depth in (20, 80):
        stack = SyntheticStack(depth, 4, 6)
        tracemalloc.start()
        result = track(stack, (40, 10, 10), out=Sink(stack.shape))
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[depth], kept[depth] = peak / 2**20, current / 2**20
        del result
    print(f"\ntracemalloc peak, 1024x1024 sections: 20 sections {peaks[20]:.1f} MiB, "
          f"80 sections {peaks[80]:.1f} MiB -> ratio {peaks[80] / peaks[20]:.2f} "
          f"(returned graph + tables: {kept[20]:.2f} / {kept[80]:.2f} MiB)")
    assert peaks[80] < 1.2 * peaks[20]


def test_affine_alignment_cost():
    """Cost of ``align_model="affine"`` against the default translations, same stack, same run.

    1024 x 1024 sections (4 x 4 Voronoi tiles), every fifth section rotated by 3 degrees about
    its centre, so both models search for a shift there and the affine one also fits and warps.
    """
    from dendrosam.reconstruct.tracking import TrackConfig

    depth = 20
    sections = _rotated_sections(depth)
    times, results = _time_configs(sections, {m: TrackConfig(align_model=m) for m in ("translation", "affine")})
    warped = int((results["affine"].warps[:, :, :2] != np.eye(2)).any(axis=(1, 2)).sum())
    print(f"\n1024x1024 px, {depth} sections, 4 rotated: translation {depth / times['translation']:.2f} "
          f"sections/s ({results['translation'].n_objects} 3D objects), affine "
          f"{depth / times['affine']:.2f} sections/s ({results['affine'].n_objects} 3D objects, {warped} "
          f"pairs warped) -> {times['affine'] / times['translation']:.2f}x the time")
    assert warped >= 4


def _rotated_sections(depth: int) -> np.ndarray:
    """1024 x 1024 Voronoi sections (4 x 4 tiles), every fifth one rotated by 3 degrees about its centre."""
    from scipy import ndimage

    stack = SyntheticStack(depth, 4, 31)
    sections = np.stack([stack[z] for z in range(depth)])
    for z in range(2, depth, 5):
        sections[z] = ndimage.rotate(sections[z], 3.0, reshape=False, order=0, mode="constant")
    return sections


def _time_configs(sections: np.ndarray, configs: dict) -> tuple[dict, dict]:
    """Best of three runs of ``track`` per named config (after a warm-up), runs interleaved."""
    times = dict.fromkeys(configs, np.inf)
    results = {}
    for config in configs.values():
        track(sections[:3], (40, 10, 10), config)
    for _ in range(3):
        for name, config in configs.items():
            t0 = time.perf_counter()
            results[name] = track(sections, (40, 10, 10), config)
            times[name] = min(times[name], time.perf_counter() - t0)
    return times, results


def test_per_neuron_masks_cost():
    """``TrackConfig.per_neuron_masks()`` against the default, on aligned sections (the linking
    rules alone) and on the stack with rotated sections (where the preset also fits affine transforms)."""
    from dendrosam.reconstruct.tracking import TrackConfig

    depth = 20
    stack = SyntheticStack(depth, 4, 31)
    configs = {"default": TrackConfig(), "per-neuron": TrackConfig.per_neuron_masks()}
    for what, sections in (("aligned", np.stack([stack[z] for z in range(depth)])),
                           ("4 rotated", _rotated_sections(depth))):
        times, results = _time_configs(sections, configs)
        print(f"\n1024x1024 px, {depth} sections, {what}: default {depth / times['default']:.2f} sections/s "
              f"({results['default'].n_objects} 3D objects), per-neuron masks "
              f"{depth / times['per-neuron']:.2f} sections/s ({results['per-neuron'].n_objects} 3D objects) -> "
              f"{times['per-neuron'] / times['default']:.2f}x the time")
        if what == "aligned":
            assert results["per-neuron"].n_objects >= results["default"].n_objects
        else:  # the affine fits undo the rotations the default's translations cannot
            assert results["per-neuron"].n_objects < results["default"].n_objects


def test_missing_section_shift_cost():
    """The fallback shift search across a missing section (the candidates, then hill-climbing the
    mean best IoU from each, ``_climb_across_gap``) against the neighbours' search
    (``_translate_pair``), on the same pair of 1024 x 1024 sections two apart, the later one shifted
    by (9, -14) px. The fallback runs after the neighbours' search, where that found no shift, so
    its time adds to it."""
    from dendrosam.reconstruct.align import boundary_map, correlation_shift, phase_correlation_shift
    from dendrosam.reconstruct.overlap import contingency, section_objects, shift_image
    from dendrosam.reconstruct.track_scan import _climb_across_gap, _translate_pair
    from dendrosam.reconstruct.tracking import TrackConfig

    stack = SyntheticStack(5, 4, 31)
    a = section_objects(stack[2])
    b = section_objects(shift_image(stack[4], 9, -14))
    config = TrackConfig(align_trigger=1.0)  # both always search

    def neighbours_search():
        return _translate_pair(a, b, config)

    def climb_search():
        ref, mov = boundary_map(a.dense), boundary_map(b.dense)
        candidates = {phase_correlation_shift(ref, mov), correlation_shift(ref, mov)}
        return _climb_across_gap(a, b, contingency(a.dense, b.dense), candidates, config, 0.0)

    times = {}
    for name, fn in (("neighbours", neighbours_search), ("missing section", climb_search)):
        fn()
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            found = fn()[0]
            best = min(best, time.perf_counter() - t0)
        times[name] = best
        print(f"\n{name}: shift {found}, {best * 1e3:.0f} ms")
        assert found == (-9, 14)
    print(f"the search across a missing section takes {times['missing section'] / times['neighbours']:.1f}x "
          f"a neighbour pair's")
