"""Learned joins: cost relative to the tracker it follows (not collected by default).

Run: ``python -m pytest tests/benchmarks/bench_joins.py -s``. On a lazily generated stack of drifting
Voronoi cells (the tracker benchmark's stack, ids scrambled per section) with a random image, times
:func:`dendrosam.reconstruct.track` and then :func:`learned_joins` with the shipped model (best of three
after a warm-up, same run, same data): starting from the tracker's objects with overlaps only, and starting
from every 2D object with the contacts within each section (the pipeline's default), and prints each as a
ratio to the tracker's time, with the scored pairs per second. Then the agglomeration alone on random graphs of
2·10⁵ and 10⁶ object pairs: the compiled one against the pure-Python loop it replaced (time and peak-memory
growth per pair, each in its own process, same graph, same partition).
"""

from __future__ import annotations

import textwrap
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


@pytest.mark.parametrize("reps,n_seeds", [(1, 100), (4, 30), (8, 30)])
def test_solidity_against_regionprops(reps, n_seeds):
    """The solidity column: compiled (:func:`dendrosam.reconstruct.convex.solidity`) against the
    ``skimage.measure.regionprops`` loop it replaced, same section, best of three, same values."""
    from skimage.measure import regionprops

    from dendrosam.reconstruct.convex import solidity
    from dendrosam.reconstruct.overlap import section_objects

    objects = section_objects(SyntheticStack(1, reps, n_seeds)[0])
    solidity(objects.dense[:8, :8], int(objects.dense[:8, :8].max()))  # compile
    times = {"compiled": [], "regionprops": []}
    for _ in range(3):
        t0 = time.perf_counter()
        ours = solidity(objects.dense, objects.n)
        times["compiled"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = np.array([r.solidity for r in regionprops(objects.dense)])
        times["regionprops"].append(time.perf_counter() - t0)
    tc, tr = min(times["compiled"]), min(times["regionprops"])
    print(f"\n{objects.dense.shape[0]}x{objects.dense.shape[1]} px, {objects.n} objects: solidity compiled {tc * 1e3:.1f} ms, "
          f"regionprops {tr * 1e3:.1f} ms ({tr / tc:.1f}x faster)")
    np.testing.assert_array_equal(ours, ref)


# The agglomeration the compiled one replaced (dict-of-dicts graph, heapq), kept as the baseline.
BASELINE = textwrap.dedent(
    """
    import heapq
    import numpy as np

    def python_agglomerate(n, edges, num, den, stop, mean):
        parent = np.arange(n)
        adj = [{} for _ in range(n)]
        for (a, b), x, y in zip(np.asarray(edges).tolist(), np.asarray(num).tolist(), np.asarray(den).tolist()):
            if a == b:
                continue
            s = adj[a].get(b)
            if s is None:
                s = adj[a][b] = adj[b][a] = [0.0, 0.0]
            s[0] += x
            s[1] += y
        score = (lambda s: s[0] / s[1]) if mean else (lambda s: s[0])
        mergeable = (lambda x: x >= stop) if mean else (lambda x: x > 0.0)
        heap = [(-x, a, b) for a in range(n) for b, s in adj[a].items()
                if a < b and s[1] > 0 and mergeable(x := score(s))]
        heapq.heapify(heap)
        while heap:
            neg, a, b = heapq.heappop(heap)
            s = adj[a].get(b)
            if s is None or score(s) != -neg:
                continue
            keep, gone = (a, b) if a < b else (b, a)
            parent[gone] = keep
            del adj[keep][gone], adj[gone][keep]
            for c, t in adj[gone].items():
                del adj[c][gone]
                u = adj[keep].get(c)
                if u is None:
                    u = adj[keep][c] = adj[c][keep] = t
                else:
                    u[0] += t[0]
                    u[1] += t[1]
                x = score(u)
                if mergeable(x):
                    heapq.heappush(heap, (-x, min(keep, c), max(keep, c)))
            adj[gone] = {}
        root = parent.copy()
        while not np.array_equal(root[root], root):
            root = root[root]
        return root
    """
)

CHILD = textwrap.dedent(
    """
    import hashlib, sys, time
    import numpy as np

    def peak_kib():  # this process's own high-water RSS (ru_maxrss would include the forking parent's)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

    which, n_pairs = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    n = n_pairs // 5  # about 5 pairs per object, as in the demo's graph (8,281 objects, 54,734 pairs)
    edges = rng.integers(0, n, (n_pairs, 2))
    p, w = rng.random(n_pairs), rng.random(n_pairs)
    if which == "python":
        exec(open(sys.argv[3]).read())
        run = python_agglomerate
    else:
        from dendrosam.reconstruct.agglomerate import agglomerate as run
        run(3, np.array([[0, 1]]), np.ones(1), np.ones(1), 0.5, True)  # compile (or load the cache)
    before = peak_kib()
    t0 = time.perf_counter()
    root = run(n, edges, w * p, w, 0.5, True)
    seconds = time.perf_counter() - t0
    grown = peak_kib() - before
    digest = hashlib.sha1(root.tobytes()).hexdigest()
    print("RESULT", seconds, grown * 1024 / n_pairs, int(np.unique(root).size), digest)
    """
)


@pytest.mark.parametrize("n_pairs", [200_000, 1_000_000])
def test_agglomeration_against_the_python_loop(tmp_path, n_pairs):
    """Time and peak-memory growth per pair of the compiled agglomeration and the Python loop it replaced."""
    import subprocess
    import sys

    (tmp_path / "baseline.py").write_text(BASELINE)
    (tmp_path / "child.py").write_text(CHILD)
    out = {}
    for which in ("python", "compiled"):
        proc = subprocess.run([sys.executable, str(tmp_path / "child.py"), which, str(n_pairs),
                               str(tmp_path / "baseline.py")], capture_output=True, text=True, check=True)
        seconds, per_pair, clusters, digest = proc.stdout.rsplit("RESULT", 1)[1].split()
        out[which] = (float(seconds), float(per_pair), int(clusters), digest)
    (tp, mp, cp, dp), (tc, mc, cc, dc) = out["python"], out["compiled"]
    print(f"\naverage linkage on a random graph of {n_pairs} pairs ({cp} clusters): Python loop {tp:.1f} s, "
          f"{mp:.0f} B/pair; compiled {tc:.2f} s ({tp / tc:.1f}x faster), {mc:.0f} B/pair ({mp / mc:.1f}x less)")
    assert (cp, dp) == (cc, dc)  # the same partition
