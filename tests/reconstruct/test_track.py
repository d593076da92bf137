"""Exact answers of the tracker on synthetic tubes (ids scrambled per section)."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError, LabelError, VoxelSizeError
from dendrosam.reconstruct.align import boundary_map, correlation_shift, phase_correlation_shift
from dendrosam.reconstruct.overlap import contingency, section_objects, shift_image
from dendrosam.reconstruct.tracking import TrackConfig, track

from test_track_helpers import canonical, scramble, tubes

SHAPE = (48, 48)


def straight(z_range, cy, cx, r=5.0):
    return [(z, cy, cx, r) for z in z_range]


def assert_tracks_to(gt3d: np.ndarray, config: TrackConfig = TrackConfig(), seed: int = 0):
    result = track(scramble(gt3d, seed), voxel_size=(40, 10, 10), config=config)
    expected = canonical(gt3d)
    assert result.labels.dtype == np.uint32
    assert result.n_objects == int(expected.max())
    np.testing.assert_array_equal(result.labels, expected)
    return result


def test_section_objects_tables():
    img = np.zeros((6, 7), np.uint16)
    img[1:3, 2:5] = 9  # 6 px, centroid (1.5, 3)
    img[4, 0] = 3
    objs = section_objects(img)
    # numbered in order of first pixel (C order): 9 comes first
    np.testing.assert_array_equal(objs.ids, [9, 3])
    np.testing.assert_array_equal(objs.size, [6, 1])
    np.testing.assert_allclose(objs.centroid, [[1.5, 3], [4, 0]])
    np.testing.assert_array_equal(objs.bbox, [[1, 2, 3, 5], [4, 0, 5, 1]])
    np.testing.assert_array_equal(objs.dense[img == 9], 1)
    ia, ib, count = contingency(objs.dense, np.roll(objs.dense, 1, axis=1))
    np.testing.assert_array_equal(np.c_[ia, ib, count], [[0, 0, 4]])


def test_section_tables_cc3d_equal_numpy_path():
    from dendrosam.reconstruct.overlap import _tables_numpy

    rng = np.random.default_rng(3)
    img = rng.integers(0, 40, (30, 50)).astype(np.uint32) * 7  # 39 objects, scattered pixels
    objs = section_objects(img)
    size, centroid, bbox = _tables_numpy(objs.dense, objs.n)
    np.testing.assert_array_equal(objs.size, size)
    np.testing.assert_allclose(objs.centroid, centroid, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(objs.bbox, bbox)
    empty = section_objects(np.zeros((5, 5), np.uint8))
    assert empty.size.shape == (0,) and empty.centroid.shape == (0, 2) and empty.bbox.shape == (0, 4)


def test_contingency_sparse_path_equals_dense_path():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 3000, (40, 40)).astype(np.uint32)  # 3000 x 3000 > 4 * pixels: sparse
    b = rng.integers(0, 3000, (40, 40)).astype(np.uint32)
    ia, ib, count = contingency(a, b)
    fg = (a > 0) & (b > 0)
    pairs, expected = np.unique(np.c_[a[fg], b[fg]], axis=0, return_counts=True)
    np.testing.assert_array_equal(np.c_[ia + 1, ib + 1], pairs)
    np.testing.assert_array_equal(count, expected)
    small_a, small_b = a % 7, b % 5  # dense bincount path
    ia, ib, count = contingency(small_a, small_b)
    fg = (small_a > 0) & (small_b > 0)
    pairs, expected = np.unique(np.c_[small_a[fg], small_b[fg]], axis=0, return_counts=True)
    np.testing.assert_array_equal(np.c_[ia + 1, ib + 1], pairs)
    np.testing.assert_array_equal(count, expected)


def test_phase_correlation_recovers_shift():
    gt = tubes(1, (64, 64), [straight([0], 20, 20, 6), straight([0], 40, 30, 9),
                             straight([0], 15, 45, 4)])[0]
    moved = shift_image(gt, 7, -11)
    dy, dx = phase_correlation_shift(boundary_map(gt), boundary_map(moved))
    assert (dy, dx) == (-7, 11)
    np.testing.assert_array_equal(shift_image(moved, dy, dx)[15:50, 15:50], gt[15:50, 15:50])


def test_straight_tube():
    gt = tubes(8, SHAPE, [straight(range(8), 20, 20)])
    result = assert_tracks_to(gt)
    assert result.graph.number_of_nodes() == 8
    assert result.graph.number_of_edges() == 7
    node = result.graph.nodes[(3, int(scramble(gt)[3, 20, 20]))]
    np.testing.assert_allclose(node["centroid_nm"], (120.0, 200.0, 200.0))
    assert node["label3d"] == 1 and node["size"] == int((gt[3] > 0).sum())


def test_oblique_tube():
    gt = tubes(10, SHAPE, [[(z, 10 + 2 * z, 12 + 2.5 * z, 6) for z in range(10)]])
    assert_tracks_to(gt)


def test_branching_y_is_one_object():
    stem = straight(range(0, 5), 24, 24, 6)
    left = [(z, 24, 24 - 2 * (z - 4), 4) for z in range(5, 10)]
    right = [(z, 24, 24 + 2 * (z - 4), 4) for z in range(5, 10)]
    gt = tubes(10, SHAPE, [stem + left + right])
    result = assert_tracks_to(gt)
    assert result.n_objects == 1
    assert any(d["kind"] == "contained" for *_, d in result.graph.edges(data=True))


def test_touching_tubes_stay_separate():
    # disks of radius 5 whose centres are 11 px apart: adjacent pixels touch in every section,
    # one of them drifts towards/away from the other
    a = straight(range(8), 24, 18)
    b = [(z, 24, 29 + (z % 2), 5) for z in range(8)]
    gt = tubes(8, SHAPE, [a, b])
    assert_tracks_to(gt)


def test_missing_section_bridged_by_gap():
    gt = tubes(9, SHAPE, [straight(range(9), 20, 20), straight(range(9), 30, 36, 4)])
    gt[4] = 0
    assert_tracks_to(gt)
    split = track(scramble(gt), config=TrackConfig(gap=0))
    assert split.n_objects == 4


@pytest.mark.parametrize("dx, iou, linked", [(5, 50 / 150, True), (7, 30 / 170, False)])
def test_gap_link_needs_gap_min_score(dx, iou, linked):
    """A 10 x 10 square, a missing section, the square moved by dx: IoU 1/3 links, 0.18 not."""
    stack = np.zeros((3, 32, 32), np.uint16)
    stack[0, 10:20, 10:20] = 4
    stack[2, 10:20, 10 + dx:20 + dx] = 9
    config = TrackConfig(align=False, gap_min_score=0.3)
    result = track(stack, config=config)
    assert result.n_objects == (1 if linked else 2)
    if linked:
        np.testing.assert_allclose(result.edges["score"], [iou])
        assert result.graph.edges[(0, 4), (2, 9)]["dz"] == 2
    # without the floor, any mutual gap overlap links
    assert track(stack, config=TrackConfig(align=False, gap_min_score=0.0)).n_objects == 1


def test_two_missing_sections_need_gap_two():
    gt = tubes(9, SHAPE, [straight(range(9), 20, 20)])
    gt[3:5] = 0
    assert track(scramble(gt), config=TrackConfig(gap=1)).n_objects == 2
    assert_tracks_to(gt, TrackConfig(gap=2))


def test_shifted_section_is_compensated():
    paths = [straight(range(8), 14, 14, 5), straight(range(8), 30, 20, 7),
             straight(range(8), 20, 36, 4), straight(range(8), 36, 38, 3)]
    gt = tubes(8, (56, 56), paths)
    gt[4] = shift_image(gt[4], 12, -9)
    result = assert_tracks_to(gt)
    np.testing.assert_array_equal(result.shifts[:, 0], [0, 0, 0, 0, -12, 0, 0, 0])
    np.testing.assert_array_equal(result.shifts[:, 1], [0, 0, 0, 0, 9, 0, 0, 0])
    assert track(scramble(gt), config=TrackConfig(align=False)).n_objects > 4


def test_min_z_extent_drops_short_objects():
    gt = tubes(6, SHAPE, [straight(range(6), 20, 20), straight([2, 3], 36, 36, 4)])
    kept = track(scramble(gt), config=TrackConfig(min_z_extent=3))
    assert kept.n_objects == 2
    dropped = track(scramble(gt), config=TrackConfig(min_z_extent=3, drop_short=True))
    assert dropped.n_objects == 1
    np.testing.assert_array_equal(dropped.labels, canonical(np.where(gt == 1, 1, 0)))


def test_empty_and_single_section():
    assert track(np.zeros((3, 5, 5), np.uint8)).n_objects == 0
    one = track(np.array([[[0, 4], [4, 2]]], np.uint16))
    np.testing.assert_array_equal(one.labels, [[[0, 1], [1, 2]]])  # first voxel order


@pytest.mark.parametrize(
    "kwargs, error",
    [({"gap": -1}, ConfigError), ({"contain_fraction": 1.5}, ConfigError),
     ({"min_z_extent": 0}, ConfigError), ({"max_shift": 0}, ConfigError)],
)
def test_config_validation(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        TrackConfig(**kwargs)


def test_input_validation():
    with pytest.raises(LabelError, match="shape"):
        track(np.zeros((4, 4), np.uint8))
    with pytest.raises(LabelError, match="integer"):
        track(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(LabelError, match="negative"):
        track(-np.ones((2, 4, 4), np.int32))
    with pytest.raises(VoxelSizeError, match="voxel_size"):
        track(np.zeros((2, 4, 4), np.uint8), voxel_size=(40, 0, 10))


def test_lazy_track_export_is_the_function_after_submodule_import():
    # the submodule is named ``tracking`` so that importing it cannot shadow the lazy name
    import importlib

    importlib.import_module("dendrosam.reconstruct.tracking")
    from dendrosam.reconstruct import TrackConfig as Config
    from dendrosam.reconstruct import track as track_fn

    assert callable(track_fn) and track_fn is track and Config is TrackConfig
    assert track_fn(np.ones((2, 3, 3), np.uint8)).n_objects == 1


def test_correlation_shift_survives_deformation():
    # the same disks, shifted by (6, -9) and each grown by one pixel: a non-rigid change
    paths = [(20, 20, 6), (40, 30, 9), (15, 45, 4), (45, 50, 5)]
    ref = tubes(1, (64, 64), [straight([0], cy, cx, r) for cy, cx, r in paths])[0]
    moved = tubes(1, (64, 64), [straight([0], cy + 6, cx - 9, r + 1) for cy, cx, r in paths])[0]
    assert correlation_shift(boundary_map(ref), boundary_map(moved)) == (-6, 9)
    assert correlation_shift(np.zeros((8, 8)), boundary_map(ref[:8, :8])) == (0, 0)


@pytest.mark.parametrize("offset", [0, 100_000])  # chains deep in a stack: section masks are relative
@pytest.mark.parametrize("child_extends_back, joined", [(False, True), (True, False)])
def test_one_sided_link_joins_coexisting_chains_only_at_a_branch_start(child_extends_back, joined, offset):
    from dendrosam.reconstruct.track_links import KIND_CONTAINED, KIND_MUTUAL, resolve_links

    # parent chain 0-1-2 in sections 0..2; child chain 3-4 in sections 1..2 (co-existing);
    # a one-sided link 0 -> 3 whose child takes 30 % of the parent. With node 5 (section 0)
    # linked to 3, the child chain runs past the parent: a neighbour, not a branch.
    node_z = np.array([0, 1, 2, 1, 2, 0]) + offset
    src, dst = [0, 1, 3, 0], [1, 2, 4, 3]
    kind = [KIND_MUTUAL] * 3 + [KIND_CONTAINED]
    if child_extends_back:
        src, dst, kind = src + [5], dst + [3], kind + [KIND_MUTUAL]
    n = len(src)
    comp, accepted = resolve_links(
        6, node_z, np.array(src), np.array(dst), np.array(kind), np.full(n, 0.8),
        np.full(n, 0.3), np.r_[np.zeros(3, bool), True, np.zeros(n - 4, bool)],
        mutual_min_score=0.1, branch_share=0.5, start_share=0.25)
    assert bool(comp[0] == comp[3]) is joined and bool(accepted[3]) is joined
    assert comp[0] == comp[1] == comp[2] and comp[3] == comp[4]


def test_one_sided_links_between_chains_that_never_coexist_always_join():
    from dendrosam.reconstruct.track_links import KIND_CONTAINED, KIND_MUTUAL, resolve_links

    # chains 0-1 (sections 7..8), 2-3 (9..10) and 4-5 (5..6): weak links 1 -> 2 and 5 -> 0 with a
    # small share join all three (no section in common); a third weak link 5 -> 3 then lies inside
    # the merged chain (sections 5..10) and is accepted
    node_z = np.array([7, 8, 9, 10, 5, 6])
    src, dst = np.array([0, 2, 4, 1, 5, 5]), np.array([1, 3, 5, 2, 0, 3])
    kind = np.array([KIND_MUTUAL] * 3 + [KIND_CONTAINED] * 3)
    comp, accepted = resolve_links(6, node_z, src, dst, kind, np.full(6, 0.8), np.full(6, 0.1),
                                   np.ones(6, bool), mutual_min_score=0.1, branch_share=0.5, start_share=0.25)
    assert len(set(comp.tolist())) == 1 and accepted.all()


def test_graph_is_built_lazily_from_tables():
    gt = tubes(4, SHAPE, [straight(range(4), 20, 20)])
    result = track(scramble(gt), (40, 10, 10))
    assert "graph" not in result.__dict__  # not built yet
    np.testing.assert_array_equal(result.nodes["z"], [0, 1, 2, 3])
    np.testing.assert_array_equal(result.nodes["label3d"], [1, 1, 1, 1])
    np.testing.assert_array_equal(np.c_[result.edges["src"], result.edges["dst"]], [[0, 1], [1, 2], [2, 3]])
    graph = result.graph
    assert result.graph is graph and graph.number_of_edges() == 3
    assert {d["dz"] for *_, d in graph.edges(data=True)} == {1}
