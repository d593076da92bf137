"""Block-wise tracking equals whole-volume tracking; streaming input; random-label properties."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dendrosam.reconstruct.overlap import contingency, section_objects, shift_image
from dendrosam.reconstruct.tracking import TrackConfig, track, track_blocks

from test_track_helpers import scramble, tubes


@pytest.fixture(scope="module")
def hard_stack() -> np.ndarray:
    """Many drifting, branching, touching tubes with a missing and a shifted section."""
    rng = np.random.default_rng(7)
    depth, shape = 14, (64, 64)
    paths = []
    for _ in range(12):
        cy, cx = rng.uniform(8, 56, 2)
        vy, vx = rng.uniform(-1.5, 1.5, 2)
        r = rng.uniform(3, 7)
        z0 = int(rng.integers(0, 4))
        paths.append([(z, cy + vy * z, cx + vx * z, r) for z in range(z0, depth)])
    stack = scramble(tubes(depth, shape, paths), seed=3)
    stack[6] = 0
    stack[9] = shift_image(stack[9], 9, -6)
    return stack


def _edges(graph: nx.Graph) -> set:
    return {(min(u, v), max(u, v), tuple(sorted(d.items()))) for u, v, d in graph.edges(data=True)}


@pytest.mark.parametrize("preset", [TrackConfig, TrackConfig.per_neuron_masks])
@pytest.mark.parametrize("gap", [0, 1, 2])
@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 13])
def test_blocks_equal_whole_volume(hard_stack, block_size, gap, preset):
    config = preset(gap=gap)
    whole = track(hard_stack, (40, 10, 10), config)
    blocks = track_blocks(hard_stack, block_size, (40, 10, 10), config)
    np.testing.assert_array_equal(blocks.labels, whole.labels)
    np.testing.assert_array_equal(blocks.shifts, whole.shifts)
    assert blocks.n_objects == whole.n_objects
    assert dict(blocks.graph.nodes(data=True)) == dict(whole.graph.nodes(data=True))
    assert _edges(blocks.graph) == _edges(whole.graph)


def test_hard_stack_figures(hard_stack):
    result = track(hard_stack, (40, 10, 10))
    # the shifted section (9) is compensated: one cumulative jump, undone at section 10
    # (each pair estimate also carries the tubes' own drift of up to 1.5 px per section)
    np.testing.assert_array_equal(result.shifts[:9], 0)
    assert np.abs(result.shifts[9] - (-9, 6)).max() <= 1
    assert np.abs(result.shifts[10:]).max() <= 2
    assert any(d["dz"] == 2 for *_, d in result.graph.edges(data=True))  # over the gap


class CountingStack:
    """Lazy (Z, Y, X) array-like that records every section read."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.reads: list[int] = []

    def __getitem__(self, z: int) -> np.ndarray:
        self.reads.append(int(z))
        return self._data[z].copy()


def test_streaming_input_reads_each_section_twice(hard_stack):
    lazy = CountingStack(hard_stack)
    result = track(lazy, (40, 10, 10))
    np.testing.assert_array_equal(result.labels, track(hard_stack, (40, 10, 10)).labels)
    assert sorted(lazy.reads) == sorted(list(range(hard_stack.shape[0])) * 2)


def test_out_target_is_filled(hard_stack):
    target = np.full(hard_stack.shape, 99, dtype=np.uint32)
    result = track(hard_stack, (40, 10, 10), out=target)
    assert result.labels is target
    np.testing.assert_array_equal(target, track(hard_stack, (40, 10, 10)).labels)


label_stacks = arrays(
    np.uint8,
    st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9)),
    elements=st.integers(0, 4),
)


def _overlap_components(stack: np.ndarray, reach: int) -> dict:
    """(z, id2d) -> component of 'every pair overlapping within `reach` sections'."""
    graph = nx.Graph()
    objs = [section_objects(s) for s in stack]
    for z, o in enumerate(objs):
        graph.add_nodes_from((z, int(i)) for i in o.ids)
        for d in range(1, reach + 1):
            if z + d < len(objs):
                ia, ib, _ = contingency(o.dense, objs[z + d].dense)
                graph.add_edges_from(((z, int(o.ids[i])), (z + d, int(objs[z + d].ids[j])))
                                     for i, j in zip(ia, ib))
    return {n: k for k, comp in enumerate(nx.connected_components(graph)) for n in comp}


@settings(max_examples=60, deadline=None, derandomize=True)
@given(stack=label_stacks, gap=st.integers(0, 2), align=st.booleans(), contest=st.sampled_from([1.0, 0.5]),
       empty=st.sampled_from([0.0, 0.5]))
def test_random_labels_properties(stack, gap, align, contest, empty):
    config = TrackConfig(gap=gap, align=align, contest_share=contest, gap_empty_fraction=empty)
    result = track(stack, (40, 4, 4), config)
    labels = result.labels
    # background preserved, ids consecutive 1..n
    np.testing.assert_array_equal(labels == 0, stack == 0)
    np.testing.assert_array_equal(np.unique(labels[labels > 0]), np.arange(1, result.n_objects + 1))
    # every 2D object maps to exactly one 3D id, as recorded in the graph
    for z in range(stack.shape[0]):
        fg = stack[z] > 0
        pairs = np.unique(np.c_[stack[z][fg], labels[z][fg]], axis=0)
        assert len(pairs) == len(np.unique(stack[z][fg]))
        for i2d, i3d in pairs:
            assert result.graph.nodes[(z, int(i2d))]["label3d"] == int(i3d)
    if not align:
        # no 3D object joins 2D objects that no chain of overlaps connects
        comp = _overlap_components(stack, gap + 1)
        owner: dict[int, int] = {}
        for (z, i2d), data in result.graph.nodes(data=True):
            assert owner.setdefault(data["label3d"], comp[(z, i2d)]) == comp[(z, i2d)]
