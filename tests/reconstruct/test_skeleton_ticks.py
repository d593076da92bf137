"""Tick removal keeps the tree whole: kimimaro's cuts an H with a tick on its bar, ours does not."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dendrosam.reconstruct.skeleton_ticks import remove_ticks


def build(paths):
    """Vertices and edges of polylines given as lists of points; equal points are one vertex."""
    pts, edges = [], []
    for line in paths:
        idx = []
        for p in map(tuple, np.round(np.asarray(line, float), 6)):
            if p not in pts:
                pts.append(p)
            idx.append(pts.index(p))
        edges += list(zip(idx[:-1], idx[1:]))
    return np.array(pts, np.float64), np.array(edges, np.int64)


def seg(p0, p1, n):
    return np.linspace(np.asarray(p0, float), np.asarray(p1, float), n)


def h_with_a_tick():
    """Two branch points 200 nm apart, each with two 1.1 um arms; a 60 nm tick in the bar's middle."""
    return build([seg((0, 0, 0), (0, 1000, -500), 21), seg((0, 0, 0), (0, -1000, -500), 21),
                  seg((0, 0, 0), (0, 0, 100), 3), seg((0, 0, 100), (0, 60, 100), 3),
                  seg((0, 0, 100), (0, 0, 200), 3),
                  seg((0, 0, 200), (0, 1000, 700), 21), seg((0, 0, 200), (0, -1000, 700), 21)])


def test_h_with_a_tick_on_its_bar_stays_whole():
    v, e = h_with_a_tick()
    kept = nx.Graph(remove_ticks(v, e, 300.0).tolist())
    assert nx.number_connected_components(kept) == 1
    assert kept.number_of_edges() == len(e) - 2  # exactly the tick's two edges
    assert sorted(d for _, d in kept.degree if d != 2) == [1, 1, 1, 1, 3, 3]


def test_kimimaro_remove_ticks_cuts_the_same_h():
    """The reason for our own: kimimaro's post-processing splits this tree (if it ever stops, drop ours)."""
    import kimimaro
    from osteoid import Skeleton

    v, e = h_with_a_tick()
    skel = Skeleton(v.astype(np.float32), e.astype(np.uint32), np.ones(len(v), np.float32), segid=1,
                    space="physical")
    out = kimimaro.postprocess(skel, dust_threshold=0, tick_threshold=300)
    assert nx.number_connected_components(nx.Graph(out.edges.tolist())) == 2


def test_removal_is_reevaluated_after_each_cut():
    # a 50 nm stalk off a long path splits into two 80 nm ticks: removing one makes the other a
    # 130 nm branch from the path, which goes too; with a threshold of 100 the second one stays
    v, e = build([seg((0, 0, -2000), (0, 0, 2000), 41), seg((0, 0, 0), (0, 50, 0), 2),
                  seg((0, 50, 0), (0, 130, 0), 3), seg((0, 50, 0), (0, 50, 80), 3)])
    kept = nx.Graph(remove_ticks(v, e, 300.0).tolist())
    assert sorted(d for _, d in kept.degree if d != 2) == [1, 1] and kept.number_of_edges() == 40
    kept = nx.Graph(remove_ticks(v, e, 100.0).tolist())
    assert sorted(d for _, d in kept.degree if d != 2) == [1, 1, 1, 3]
    assert kept.size() == 40 + 1 + 2  # the path, the stalk and the remaining 80 nm tick (2 edges)


def test_unbranched_and_star_objects_keep_a_path():
    v, e = build([seg((0, 0, 0), (0, 0, 100), 5)])
    assert remove_ticks(v, e, 300.0).tolist() == e.tolist()  # shorter than the threshold, kept
    v, e = build([seg((0, 0, 0), (0, 0, 50), 2), seg((0, 0, 0), (0, 60, 0), 2), seg((0, 0, 0), (0, -70, 0), 2)])
    kept = nx.Graph(remove_ticks(v, e, 300.0).tolist())
    assert kept.number_of_edges() == 2 and nx.is_connected(kept)  # the shortest arm goes, a path stays
    assert sorted(kept.nodes) == [0, 2, 3]


@pytest.mark.parametrize("seed", range(5))
def test_random_trees_keep_components_and_lose_only_short_tips(seed):
    rng = np.random.default_rng(seed)
    forest = nx.random_labeled_tree(60, seed=seed) if hasattr(nx, "random_labeled_tree") else nx.random_tree(60, seed=seed)
    forest = nx.disjoint_union(forest, nx.path_graph(5))
    pos = rng.uniform(0, 400, (forest.number_of_nodes(), 3))
    e = np.array(forest.edges, np.int64)
    kept = nx.Graph()
    kept.add_nodes_from(range(len(pos)))
    kept.add_edges_from(remove_ticks(pos, e, 250.0).tolist())
    used = kept.subgraph([n for n in kept if kept.degree(n) > 0])
    assert nx.number_connected_components(used) == nx.number_connected_components(forest)
    assert nx.is_forest(used)
    for tip in (n for n in used if used.degree(n) == 1):  # every tip left is on a long branch or a bare path
        path, prev, cur, total = [tip], None, tip, 0.0
        while True:
            nxt = [n for n in used.neighbors(cur) if n != prev]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            total += float(np.linalg.norm(pos[prev] - pos[cur]))
            if used.degree(cur) != 2:
                break
        assert used.degree(cur) == 1 or total >= 250.0
