"""Learned joins: cost relative to the tracker it follows (not collected by default).

Run: ``python -m pytest tests/benchmarks/bench_joins.py -s``. On a lazily generated stack of drifting
Voronoi cells (the tracker benchmark's stack, ids scrambled per section) with a random image, times
:func:`dendrosam.reconstruct.track` and then :func:`learned_joins` with the shipped model (best of three
after a warm-up, same run, same data): starting from the tracker's objects with overlaps only, and starting
from every 2D object with the contacts within each section (the pipeline's default), and prints each as a
ratio to the tracker's time, with the scored pairs per second.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from dendrosam.reconstruct.joins import SectionObjectIds, default_join_model, learned_joins
from dendrosam.reconstruct.tracking import track

from bench_track import SyntheticStack


class Image:
    """Lazy random uint8 image of a given shape (one section per ``[z]``)."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape

    def __getitem__(self, z: int) -> np.ndarray:
        return np.random.default_rng(z).integers(0, 255, self.shape[1:], dtype=np.uint8)


@pytest.mark.parametrize("reps,n_seeds,depth", [(1, 100, 32), (4, 30, 16)])
def test_joins_cost_against_the_tracker(reps, n_seeds, depth):
    stack = SyntheticStack(depth, reps, n_seeds)
    sections = np.stack([stack[z] for z in range(depth)])
    image = Image(sections.shape)
    vs = (40.0, 10.0, 10.0)
    model = default_join_model()
    tr = track(sections[:2], vs)
    learned_joins(sections[:2], Image(sections[:2].shape), np.asarray(tr.labels), vs, model)  # warm-up
    t_track, t_pairs, t_join = [], [], []
    for _ in range(3):
        t0 = time.perf_counter()
        tr = track(sections, vs)
        t_track.append(time.perf_counter() - t0)
        lab = np.asarray(tr.labels)
        t0 = time.perf_counter()
        learned_joins(sections, image, lab, vs, model, shifts=tr.shifts, n_objects=tr.n_objects, contacts=False)
        t_pairs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ids = SectionObjectIds(sections)
        res = learned_joins(sections, image, ids, vs, model, shifts=tr.shifts, n_objects=ids.n_objects, contacts=True)
        t_join.append(time.perf_counter() - t0)
    tt, tp, tj = min(t_track), min(t_pairs), min(t_join)
    print(f"\n{sections.shape[1]}x{sections.shape[2]} px, {reps * reps * n_seeds} objects/section, {depth} sections: "
          f"track {tt:.2f} s; joins from the tracks, overlaps only {tp:.2f} s ({tp / tt:.2f}x the tracker); "
          f"from the 2D objects with contacts (the default) {tj:.2f} s ({tj / tt:.2f}x), "
          f"{res.n_pairs} pairs + {res.n_contacts} contacts ({(res.n_pairs + res.n_contacts) / tj:.0f}/s)")
    assert res.n_pairs > 0 and (res.n_contacts > 0 or model.contacts is None)
