"""Chain-level joins (``TrackConfig.join_chains``): exact answers on hand-built stacks."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.track_agglo import end_contacts, join_chains
from dendrosam.reconstruct.tracking import TrackConfig, track, track_blocks

from test_track_helpers import canonical, scramble

JOIN = TrackConfig(join_chains=True)


def split_neuron() -> np.ndarray:
    """One neuron, a 20 x 24 px rectangle in sections 0..5, cut by a 1-px column into an
    18-px-wide and a 5-px-wide piece in sections 2 and 3 (the small piece: 100 of the
    480 px of the whole cross-section, share 0.208, below the pairwise ``start_share``)."""
    gt = np.zeros((6, 40, 40), np.uint32)
    gt[:, 10:30, 4:28] = 1
    gt[2:4, 10:30, 22] = 0
    return gt


def test_fragmented_cross_section_rejoins_into_one_object():
    gt = split_neuron()
    stack = scramble(gt)
    assert len(np.unique(stack[2])) == 3  # two pieces in sections 2 and 3
    pairwise = track(stack, (40, 10, 10))
    assert pairwise.n_objects == 2  # the pairwise pass refuses the co-existing piece
    joined = track(stack, (40, 10, 10), JOIN)
    assert joined.n_objects == 1
    np.testing.assert_array_equal(joined.labels, canonical(gt))
    chain_edges = [(u, v, d) for u, v, d in joined.graph.edges(data=True) if d["kind"] == "chain"]
    assert len(chain_edges) == 1
    (u, v, d), = chain_edges
    # the piece's first section (2) lies entirely inside the whole cross-section of section 1
    assert sorted((u[0], v[0])) == [1, 2] and d["overlap"] == 100 and d["score"] == 1.0
    np.testing.assert_array_equal(np.sort(joined.edges["kind"]), [1, 1, 1, 1, 1, 1, 3])


def test_neighbour_starting_inside_a_neuron_stays_separate():
    # neuron A (480 px up to section 2) narrows from section 3 on; neuron B (12 px) starts in
    # section 3 where A was: its whole first section lies inside A's section 2 (end fraction
    # 1) but takes 12 / 480 = 0.025 of it, far below chain_end_share
    gt = np.zeros((6, 40, 40), np.uint32)
    gt[:3, 10:30, 4:28] = 1
    gt[3:, 10:30, 4:22] = 1
    gt[3:, 18:22, 24:27] = 2
    for config in (TrackConfig(), JOIN):
        result = track(scramble(gt), (40, 10, 10), config)
        np.testing.assert_array_equal(result.labels, canonical(gt))


def test_weak_end_overlap_is_not_joined():
    # the same piece as in split_neuron, but shifted so that only 60 % of its first section
    # lies inside the neuron in section 1: end fraction 0.6 < 0.9
    gt = split_neuron()
    gt[2:4, 10:30, 23:28] = 0
    gt[2:4, 10:30, 25:30] = 2
    result = track(scramble(gt), (40, 10, 10), JOIN)
    assert result.n_objects == 2
    np.testing.assert_array_equal(result.labels, canonical(gt))


def test_end_contacts_and_join_on_tables():
    # chain 0: nodes 0 (z0, 100 px), 1 (z1, 60 px), 2 (z2, 100 px); chain 1: nodes 3 (z1, 40 px)
    # and 4 (z2, 30 px). Overlaps between neighbouring sections:
    comp = np.array([0, 0, 0, 1, 1])
    node_z = np.array([0, 1, 2, 1, 2])
    size = np.array([100.0, 60.0, 100.0, 40.0, 30.0])
    src, dst = np.array([0, 0, 1, 3, 3]), np.array([1, 3, 2, 4, 2])
    count = np.array([60, 40, 55, 30, 10])
    c = end_contacts(comp, node_z, size, src, dst, count)
    # only the start of chain 1 (node 3 in z1) touches another chain just outside it (node 0)
    np.testing.assert_array_equal(np.c_[c["chain"], c["other"], c["row"]], [[1, 0, 1]])
    np.testing.assert_allclose(np.c_[c["end_fraction"], c["end_share"]], [[1.0, 0.4]])
    joined = join_chains(comp, node_z, size, src, dst, count, 0.9, 0.2)
    np.testing.assert_array_equal(joined.component, [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(joined.rows, [1])
    kept = join_chains(comp, node_z, size, src, dst, count, 0.9, 0.5)
    np.testing.assert_array_equal(kept.component, comp)
    assert kept.rows.size == 0


@pytest.mark.parametrize("block_size", [1, 2, 4])
def test_chain_joins_blocks_equal_whole_volume(block_size):
    gt = np.concatenate([split_neuron(), split_neuron()[::-1]])
    stack = scramble(gt, seed=4)
    whole = track(stack, (40, 10, 10), JOIN)
    blocks = track_blocks(stack, block_size, (40, 10, 10), JOIN)
    np.testing.assert_array_equal(blocks.labels, whole.labels)
    assert whole.n_objects == 1
    for key in whole.edges:
        np.testing.assert_array_equal(blocks.edges[key], whole.edges[key])


@pytest.mark.parametrize("kwargs", [{"chain_end_fraction": 1.5}, {"chain_end_share": -0.1},
                                    {"join_chains": "yes"}])
def test_chain_config_validation(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        TrackConfig(**kwargs)
