"""Skeleton stage on a real segmentation crop: our graphs vs raw kimimaro, per-object and chunked.

Run: ``python -m pytest tests/benchmarks/bench_skeleton.py -s --timeout=0`` (minutes of CPU; the
project-wide 10-minute test timeout would stop a 512-voxel crop).
``DENDROSAM_BENCH_CROP`` sets the cube edge of the pinky40 crop (default 256 voxels), taken from
the centre of the volume (the corner is 99.9% one giant object).
Figures are printed as ratios against raw ``kimimaro.skeletonize`` timed in the same run.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

VS = (40.0, 32.0, 32.0)  # pinky40, (z, y, x) nm


def test_bench_skeleton(shared_data):
    import kimimaro
    import tifffile

    from dendrosam.reconstruct.morphometry import morphometrics
    from dendrosam.reconstruct.skeleton import SkeletonConfig, skeletonize
    from dendrosam.reconstruct.skeleton_chunks import skeletonize_blocks
    from dendrosam.reconstruct.skeleton_chunks import skeletonize_objects

    path = shared_data / "pinky40_seg" / "segmentation.ome.tif"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    edge = int(os.environ.get("DENDROSAM_BENCH_CROP", "256"))
    full = tifffile.imread(path)
    lo = [max(0, (n - edge) // 2) for n in full.shape]
    labels = np.ascontiguousarray(full[lo[0] : lo[0] + edge, lo[1] : lo[1] + edge, lo[2] : lo[2] + edge])
    del full
    config = SkeletonConfig(scale=4.0, const=500.0)  # kimimaro's README parameters, nm

    t0 = time.perf_counter()
    raw = kimimaro.skeletonize(
        labels.T, teasar_params=config.teasar_params(), anisotropy=VS[::-1],
        dust_threshold=config.dust_threshold, fix_branching=True, fix_borders=True, progress=False, parallel=1,
    )
    t_raw = time.perf_counter() - t0

    t0 = time.perf_counter()
    graphs = skeletonize(labels, VS, config)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    objects = skeletonize_objects(labels, VS, None, config)
    t_objects = time.perf_counter() - t0
    exact = sorted(objects) == sorted(graphs) and all(
        sorted(objects[k].nodes(data=True)) == sorted(graphs[k].nodes(data=True))
        and sorted(map(sorted, objects[k].edges)) == sorted(map(sorted, graphs[k].edges))
        for k in graphs
    )

    t0 = time.perf_counter()
    table = morphometrics(graphs)
    t_morph = time.perf_counter() - t0
    t0 = time.perf_counter()
    morphometrics(graphs, labels, VS)
    t_morph_vol = time.perf_counter() - t0

    half = (edge + 1) // 2
    t0 = time.perf_counter()
    blocks = skeletonize_blocks(labels, VS, (edge, half, half), config)  # 4 blocks
    t_blocks = time.perf_counter() - t0
    contained = skeletonize_blocks(labels, VS, (edge, half, half), config, max_object_voxels=0)
    fused = skeletonize_blocks(labels, VS, (edge, half, half), config, whole_objects=False)

    whole = table.set_index("label")[["n_branch_points", "n_tips"]]

    def agreement(result):
        chunk = morphometrics(result).set_index("label")
        common = whole.index.intersection(chunk.index)
        same = (whole.loc[common] == chunk.loc[common, ["n_branch_points", "n_tips"]]).all(axis=1)
        cable = chunk.loc[common, "cable_length_nm"] / table.set_index("label").loc[common, "cable_length_nm"]
        return common, same, cable

    def betti(graph):  # the graph's topology: connected components and independent cycles
        import networkx as nx

        c = nx.number_connected_components(graph)
        return c, graph.number_of_edges() - graph.number_of_nodes() + c

    def same_betti(result):
        return np.mean([betti(result[k]) == betti(graphs[k]) for k in graphs if k in result])

    common, agree, cable_ratio = agreement(blocks)
    _, agree_contained, _ = agreement(contained)
    _, agree_fused, _ = agreement(fused)
    # Baseline for "same topology": TEASAR's own answer for the same objects in a mirrored volume
    # (the traversal order changes, the geometry does not; branch and tip counts are mirror-invariant).
    mirrored = {name: agreement(skeletonize(np.ascontiguousarray(np.flip(labels, axis)), VS, config))[1].mean()
                for axis, name in enumerate("zyx")}
    def n_exact(result):
        return sum(result[k].number_of_nodes() == graphs[k].number_of_nodes()
                   and sorted(result[k].nodes(data=True)) == sorted(graphs[k].nodes(data=True)) for k in common)
    print(f"\npinky40 crop {labels.shape}, voxel {VS} nm, {len(raw)} objects (dust {config.dust_threshold} vox)")
    print(f"raw kimimaro.skeletonize      {t_raw:8.1f} s   1.00x")
    print(f"skeletonize (graphs, smooth)  {t_ours:8.1f} s   {t_ours / t_raw:.2f}x raw")
    print(f"skeletonize_objects (crops)   {t_objects:8.1f} s   {t_objects / t_raw:.2f}x raw, "
          f"identical to whole: {exact}")
    print(f"morphometrics (graphs only)   {t_morph:8.1f} s   {t_morph / t_raw:.2f}x raw")
    print(f"morphometrics (+volume, area) {t_morph_vol:8.1f} s   {t_morph_vol / t_raw:.2f}x raw")
    print(f"skeletonize_blocks (4 blocks) {t_blocks:8.1f} s   {t_blocks / t_raw:.2f}x raw")
    print(f"objects in both: {len(common)} of {len(whole)} whole / {len(blocks)} chunked; "
          f"{n_exact(blocks)} identical to whole ({n_exact(contained)} when only objects inside a "
          f"block's padded region are traced whole, max_object_voxels=0)")
    print(f"same components + cycles chunked vs whole: {same_betti(blocks):.1%} "
          f"(max_object_voxels=0: {same_betti(contained):.1%}; whole_objects=False: {same_betti(fused):.1%})")
    print(f"same branch+tip counts chunked vs whole: {agree.mean():.1%} "
          f"(max_object_voxels=0: {agree_contained.mean():.1%}; "
          f"every object traced piecewise, whole_objects=False: {agree_fused.mean():.1%})")
    print("baseline, whole vs whole of the volume mirrored in "
          + ", ".join(f"{name}: {value:.1%}" for name, value in mirrored.items()))
    print(f"chunked / whole cable length: median {cable_ratio.median():.3f}, "
          f"within 5%: {(abs(cable_ratio - 1) <= 0.05).mean():.1%}")
    assert len(graphs) == len(raw)
    assert exact
