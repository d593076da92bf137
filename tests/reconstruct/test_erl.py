"""Expected run length on hand-built skeletons with hand-computed answers."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dendrosam.errors import InputError, VoxelSizeError
from dendrosam.reconstruct.erl import expected_run_length, segment_ids_at_nodes
from dendrosam.reconstruct.evaluation import evaluate


def straight(n_nodes: int, step: float, y: float = 0.0) -> nx.Graph:
    """A straight skeleton along x with ``n_nodes`` nodes ``step`` nm apart, at height ``y``."""
    g = nx.path_graph(n_nodes)
    nx.set_node_attributes(g, {i: (0.0, y, i * step) for i in g}, "pos")
    return g


def test_uncut_skeleton_runs_its_full_length():
    r = expected_run_length({1: straight(5, 25.0)}, {1: dict.fromkeys(range(5), 3)})
    assert (r.erl, r.erl_perfect, r.normalized, r.total_length) == (100.0, 100.0, 1.0, 100.0)
    assert (r.n_split_edges, r.n_merged_skeletons, r.n_omitted_edges) == (0, 0, 0)


def test_skeleton_cut_in_the_middle_has_half_its_length():
    # The cut edge itself is lost, so the cut is placed on a zero-length edge between two
    # nodes at the midpoint: 0 -50 nm- 1 -0 nm- 3 -50 nm- 2, segments 7 | 8.
    g = nx.Graph()
    for node, x in ((0, 0.0), (1, 50.0), (3, 50.0), (2, 100.0)):
        g.add_node(node, pos=(0.0, 0.0, x))
    g.add_edges_from([(0, 1), (1, 3), (3, 2)])
    r = expected_run_length({1: g}, {1: {0: 7, 1: 7, 3: 8, 2: 8}})
    assert r.total_length == 100.0
    assert r.erl == pytest.approx((50.0**2 + 50.0**2) / 100.0) == 50.0  # L / 2
    assert r.normalized == 0.5 and r.n_split_edges == 1


def test_merged_skeleton_counts_zero():
    skels = {1: straight(3, 50.0), 2: straight(3, 50.0, y=500.0)}
    lut = {1: {0: 4, 1: 4, 2: 4}, 2: {0: 9, 1: 9, 2: 4}}  # segment 4 touches both skeletons
    r = expected_run_length(skels, lut)
    assert (r.erl, r.normalized) == (0.0, 0.0)
    assert r.n_merged_skeletons == 2 and r.n_merging_segments == 1
    # only skeleton 1 merged with a third, unrelated one: skeleton 2 keeps its run
    skels[3] = straight(2, 10.0, y=900.0)
    r = expected_run_length(skels, {1: {0: 4, 1: 4, 2: 4}, 2: dict.fromkeys(range(3), 9), 3: {0: 4, 1: 4}})
    assert r.total_length == 210.0
    assert r.erl == pytest.approx(100.0**2 / 210.0)
    assert r.erl_perfect == pytest.approx((100.0**2 + 100.0**2 + 10.0**2) / 210.0)


def test_background_nodes_lose_their_edges_but_do_not_merge():
    skels = {1: straight(5, 25.0), 2: straight(2, 100.0, y=500.0)}
    lut = {1: {0: 0, 1: 3, 2: 3, 3: 3, 4: 3}, 2: {0: 0, 1: 5}}
    r = expected_run_length(skels, lut)
    assert r.n_merged_skeletons == 0 and r.n_omitted_edges == 2
    assert r.erl == pytest.approx(75.0**2 / 200.0)


def test_same_segment_twice_on_one_skeleton_is_one_run():
    # funlib convention: the runs of a segment on a skeleton are summed before squaring
    g = straight(4, 10.0)
    r = expected_run_length({1: g}, {1: {0: 1, 1: 1, 2: 2, 3: 1}})
    assert r.erl == pytest.approx(10.0**2 / 30.0) and r.n_split_edges == 2


def test_segment_lookup_and_evaluate_with_skeletons():
    vs = (40.0, 10.0, 10.0)
    seg = np.zeros((3, 4, 10), np.uint32)
    seg[:, :, :5], seg[:, :, 5:] = 1, 2
    skel = straight(10, 10.0, y=20.0)  # x = 0..90 nm -> voxels 0..9 in row y = 2
    lut = segment_ids_at_nodes({6: skel}, seg, vs)
    assert [lut[6][i] for i in range(10)] == [1] * 5 + [2] * 5
    gt = np.ones_like(seg)
    m = evaluate(gt, seg, voxel_size=vs, skeletons={6: skel})
    assert m.erl.erl == pytest.approx((40.0**2 + 40.0**2) / 90.0)
    d = m.to_dict()
    assert d["erl_normalized"] == pytest.approx(m.erl.erl / 90.0) and d["n_split_edges"] == 1
    with pytest.raises(VoxelSizeError, match="ERL"):
        evaluate(gt, seg, skeletons={6: skel})
    far = straight(2, 1000.0)
    with pytest.raises(InputError, match="skeleton 7: node at .* outside"):
        segment_ids_at_nodes({7: far}, seg, vs)
