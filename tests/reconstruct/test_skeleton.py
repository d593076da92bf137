"""Skeletons of exact synthetic shapes: lengths, radii, anisotropy, topology, chunked merge."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dendrosam.errors import ConfigError, LabelError, VoxelSizeError
from dendrosam.reconstruct.skeleton import (
    SkeletonConfig,
    skeletonize,
    smooth_graph,
    unbranched_paths,
)
from dendrosam.reconstruct.skeleton_chunks import skeletonize_blocks

VS = (40.0, 15.0, 15.0)  # serial-section geometry: 40 nm sections, 15 nm pixels


def segment_mask(shape, vs, p0, p1, radius, caps=False):
    """Voxels within ``radius`` nm of the segment p0-p1 ((z, y, x) nm); flat or round ends."""
    grid = np.indices(shape).reshape(3, -1).T * np.asarray(vs)
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    t = (grid - p0) @ axis
    length = np.linalg.norm(p1 - p0)
    dist = np.linalg.norm(grid - (p0 + np.clip(t, 0, length)[:, None] * axis), axis=1)
    inside = dist <= radius if caps else (dist <= radius) & (t >= 0) & (t <= length)
    return inside.reshape(shape)


def cable(graph):
    return graph.size(weight="length")


def degrees(graph):
    return sorted(d for _, d in graph.degree if d != 2)


def y_shape():
    """Three round-capped arms (2 um, radius 150 nm) meeting at one point, in the y-x plane."""
    shape = (16, 200, 200)
    centre = np.array([320.0, 1500.0, 1500.0])
    mask = np.zeros(shape, bool)
    for angle in (90.0, 210.0, 330.0):
        a = np.deg2rad(angle)
        end = centre + 1200.0 * np.array([0.0, np.sin(a), np.cos(a)])
        mask |= segment_mask(shape, VS, centre, end, 150.0, caps=True)
    return mask.astype(np.uint32)


def test_straight_tube_length_and_radius():
    # along x: 300 pixels of 15 nm, radius 200 nm, flat ends -> centre line 299 * 15 nm
    labels = segment_mask((20, 40, 300), VS, (400, 300, 0), (400, 300, 299 * 15), 200.0).astype(np.uint8)
    graphs = skeletonize(labels, VS)
    assert list(graphs) == [1]
    g = graphs[1]
    assert cable(g) == pytest.approx(299 * 15, rel=0.02)
    radius = np.median([r for _, r in g.nodes(data="radius")])
    assert radius == pytest.approx(200.0, rel=0.10)
    assert degrees(g) == [1, 1]
    assert g.graph == {"label": 1, "voxel_size": VS, "source": "kimimaro", "smooth_sigma_nm": 60.0}
    pos = np.array([p for _, p in g.nodes(data="pos")])
    # (z, y, x) order: the tube runs along the last axis, at z = 400 nm, y = 300 nm
    assert pos[:, 2].max() - pos[:, 2].min() == pytest.approx(299 * 15, rel=0.02)
    assert np.abs(pos[:, 0] - 400).max() < 41 and np.abs(pos[:, 1] - 300).max() < 16


def test_oblique_tube_smoothing_removes_staircase():
    # crosses 105 sections at 34 deg to the section plane: the raw voxel path zig-zags
    p0, p1 = (100.0, 300.0, 100.0), (4300.0, 300.0, 2900.0)
    labels = segment_mask((110, 40, 200), VS, p0, p1, 150.0).astype(np.uint32)
    true_length = float(np.linalg.norm(np.subtract(p1, p0)))
    raw = skeletonize(labels, VS, SkeletonConfig(smooth_sigma=0))[1]
    smooth = skeletonize(labels, VS)[1]
    assert cable(raw) > 1.10 * true_length  # the staircase the smoothing has to remove
    assert cable(smooth) == pytest.approx(true_length, rel=0.05)
    assert degrees(smooth) == [1, 1]


def test_anisotropy_scales_lengths_along_z():
    # the same voxels along z; doubling the section thickness doubles the cable length
    labels = np.zeros((60, 30, 30), np.uint8)
    labels[:, 10:20, 10:20] = 1
    short = skeletonize(labels, (40.0, 15.0, 15.0))[1]
    long = skeletonize(labels, (80.0, 15.0, 15.0))[1]
    assert cable(short) == pytest.approx(59 * 40, rel=0.02)
    assert cable(long) / cable(short) == pytest.approx(2.0, rel=0.02)


def test_anisotropy_oblique_tube_ratio():
    # voxel-space diagonal in (z, x): physical length sqrt((dz vz)^2 + (dx vx)^2)
    labels = np.zeros((60, 12, 100), np.uint8)
    z = np.arange(60)
    for dx in range(-3, 4):
        labels[z, 4:8, np.clip(z + 20 + dx, 0, 99)] = 1
    a = skeletonize(labels, (40.0, 15.0, 15.0))[1]
    b = skeletonize(labels, (80.0, 15.0, 15.0))[1]
    expected = np.hypot(59 * 80, 59 * 15) / np.hypot(59 * 40, 59 * 15)
    assert cable(b) / cable(a) == pytest.approx(expected, rel=0.05)


def test_y_has_one_branch_point_three_tips():
    g = skeletonize(y_shape(), VS)[1]
    assert degrees(g) == [1, 1, 1, 3]
    assert cable(g) == pytest.approx(3 * 1350.0, rel=0.08)  # arms 1200 nm + 150 nm cap each


def test_several_objects_and_object_ids():
    labels = np.zeros((20, 40, 200), np.uint32)
    labels[5:15, 5:15, 10:190] = 7
    labels[5:15, 25:35, 10:190] = 9
    graphs = skeletonize(labels, VS)
    assert sorted(graphs) == [7, 9]
    assert [g.graph["label"] for g in graphs.values()] == [7, 9]
    assert sorted(skeletonize(labels, VS, object_ids=[9])) == [9]


# blocks cut across the arms
@pytest.mark.parametrize("block", [(16, 100, 64), (16, 50, 70)])
def test_blocks_same_topology_as_whole_y(block):
    labels = y_shape()
    whole = skeletonize(labels, VS)[1]
    merged = skeletonize_blocks(labels, VS, block, whole_objects=False)[1]
    assert merged.graph["source"] == "kimimaro-blocks"
    assert nx.is_connected(merged)
    assert degrees(merged) == degrees(whole) == [1, 1, 1, 3]
    assert cable(merged) == pytest.approx(cable(whole), rel=0.03)


# Box-shaped tubes are the worst case for blocks: their distance-to-boundary has a flat ridge
# several voxels wide (the short side limits it), so the centre line may run anywhere on it and
# neighbouring blocks choose different rails; the joins at the shared face targets add up to
# ~10% cable. Topology is still exact.
def test_blocks_same_topology_several_tubes():
    labels = np.zeros((24, 60, 240), np.uint32)
    for i, (y0, z0) in enumerate([(5, 3), (25, 10), (45, 14)], start=1):
        labels[z0 : z0 + 8, y0 : y0 + 10, 5:235] = i  # crosses x and z faces
    whole = skeletonize(labels, VS)
    merged = skeletonize_blocks(labels, VS, (24, 20, 80), whole_objects=False)
    assert sorted(merged) == sorted(whole) == [1, 2, 3]
    for k in whole:
        assert nx.number_connected_components(merged[k]) == 1
        assert degrees(merged[k]) == degrees(whole[k]) == [1, 1]
        assert cable(merged[k]) == pytest.approx(cable(whole[k]), rel=0.10)


def test_smoothing_keeps_tips_and_branch_points():
    g = nx.Graph()
    zigzag = [(0.0, 0.0, 0.0), (10.0, 0.0, 10.0), (0.0, 0.0, 20.0), (10.0, 0.0, 30.0), (0.0, 0.0, 40.0)]
    for i, p in enumerate(zigzag):
        g.add_node(i, pos=p, radius=5.0)
    g.add_edges_from(zip(range(4), range(1, 5)))
    g.add_node(5, pos=(0.0, 50.0, 20.0), radius=5.0)
    g.add_edge(2, 5)  # node 2 becomes a branch point
    before = {n: g.nodes[n]["pos"] for n in (0, 2, 4, 5)}
    smooth_graph(g, 10.0)
    assert {n: g.nodes[n]["pos"] for n in (0, 2, 4, 5)} == before
    assert g.nodes[1]["pos"][0] < 10.0 and g.nodes[3]["pos"][0] < 10.0
    assert sorted(map(len, unbranched_paths(g))) == [2, 3, 3]


def test_unbranched_paths_of_a_cycle():
    g = nx.cycle_graph(5)
    (path,) = unbranched_paths(g)
    assert path[0] == path[-1] and sorted(path[:-1]) == [0, 1, 2, 3, 4]


def test_user_errors():
    with pytest.raises(LabelError, match="3D"):
        skeletonize(np.zeros((4, 4), np.uint8), VS)
    with pytest.raises(LabelError, match="integer"):
        skeletonize(np.zeros((4, 4, 4), np.float32), VS)
    with pytest.raises(VoxelSizeError, match="voxel_size"):
        skeletonize(np.zeros((4, 4, 4), np.uint8), (40.0, 0.0, 15.0))
    with pytest.raises(ConfigError, match="scale"):
        SkeletonConfig(scale=0)
    with pytest.raises(ConfigError, match="block_shape"):
        skeletonize_blocks(np.zeros((4, 4, 4), np.uint8), VS, (1, 2, 2))
    with pytest.raises(ConfigError, match="halo_nm"):
        skeletonize_blocks(np.zeros((4, 4, 4), np.uint8), VS, (2, 2, 2), halo_nm=-1.0)
    assert skeletonize(np.zeros((4, 4, 4), np.uint8), VS) == {}


def test_blocks_object_along_a_face():
    # the flat Y lies in z 5..11; a z-face at 8 runs through its middle. Without a halo each
    # slab traced its own half (a doubled, ladder-like skeleton); with one, each edge is kept
    # by exactly one block
    labels = y_shape()
    whole = skeletonize(labels, VS)[1]
    merged = skeletonize_blocks(labels, VS, (8, 200, 200), whole_objects=False)[1]
    assert nx.is_connected(merged)
    assert degrees(merged) == degrees(whole) == [1, 1, 1, 3]
    assert cable(merged) == pytest.approx(cable(whole), rel=0.03)


def test_blocks_take_objects_that_fit_a_halo_region_whole():
    """Small objects come out exactly as from the whole volume; a long one is still fused."""
    labels = np.zeros((24, 60, 240), np.uint32)
    labels[4:12, 5:15, 5:235] = 1  # crosses every x face: longer than a block plus its halo
    labels[14:20, 30:40, 20:40] = 2  # inside the first block's halo region
    labels[14:20, 30:40, 145:170] = 3  # straddles the x face at 160, within the halo above it
    labels[14:20, 45:55, 150:175] = 4  # straddles it too: only the halo *below* the next block holds it
    whole = skeletonize(labels, VS)
    halo = 12 * VS[2]  # 12 voxels in x: object 1 cannot fit, 2, 3 and 4 can
    merged = skeletonize_blocks(labels, VS, (24, 60, 80), halo_nm=halo, max_object_voxels=0)
    assert sorted(merged) == [1, 2, 3, 4]
    for k in (2, 3, 4):
        assert sorted(merged[k].nodes(data=True)) == sorted(whole[k].nodes(data=True))
        assert sorted(map(sorted, merged[k].edges)) == sorted(map(sorted, whole[k].edges))
        assert merged[k].graph["source"] == "kimimaro-blocks"
    assert degrees(merged[1]) == degrees(whole[1]) == [1, 1]
    assert nx.is_connected(merged[1])


def test_blocks_take_objects_no_larger_than_a_padded_block_whole():
    """An object that crosses every block face is traced whole from its own crop when its
    padded box holds no more voxels than the largest padded block (the default budget), and
    piecewise when it holds one voxel more than the budget given."""
    labels = np.zeros((24, 60, 240), np.uint32)
    labels[4:12, 5:15, 5:235] = 1  # padded box 10 x 12 x 232 = 27,840 voxels
    whole = skeletonize(labels, VS)[1]
    halo = 12 * VS[2]  # largest padded block: 24 x 60 x (80 + 2 * 12) = 149,760 voxels
    for budget, exact in ((None, True), (27_840, True), (27_839, False)):
        merged = skeletonize_blocks(labels, VS, (24, 60, 80), halo_nm=halo, max_object_voxels=budget)[1]
        same = sorted(merged.nodes(data=True)) == sorted(whole.nodes(data=True))
        assert same is exact, budget
        assert degrees(merged) == degrees(whole) == [1, 1]
    with pytest.raises(ConfigError, match="max_object_voxels"):
        skeletonize_blocks(labels, VS, (24, 60, 80), max_object_voxels=-1)


def test_blocks_no_spur_to_a_face_target_inside_a_bulge():
    """A ribbon with a side bulge that crosses a block face: both blocks trace to the shared
    target on that face, which leaves a spur beside the real side branch unless face tips
    inside the invalidation ball of the rest are cut (without the cut: 4 tips, 2 branch points,
    +9% cable)."""
    labels = np.zeros((24, 80, 240), np.uint32)
    labels[2:22, 8:50, 5:235] = 1
    labels[6:18, 40:62, 100:120] = 1  # the bulge crosses the y face at 52
    whole = skeletonize(labels, VS)[1]
    merged = skeletonize_blocks(labels, VS, (24, 52, 240), whole_objects=False)[1]
    assert degrees(whole) == [1, 1, 1, 3]
    assert degrees(merged) == degrees(whole)
    assert cable(merged) == pytest.approx(cable(whole), rel=0.01)


@pytest.mark.parametrize(("border_ends", "kept"), [
    (np.empty((0, 3), np.int64), False),  # a face tip on the volume border, no fix_borders end: cut
    (np.array([[0, 20, 22]]), True),  # the whole volume's end point 30 nm away: a real, displaced tip
    (np.array([[0, 55, 20]]), False),  # an end point 35 voxels (525 nm) away does not protect it
])
def test_face_tip_on_the_volume_border_is_kept_only_beside_a_border_end_point(border_ends, kept):
    """The face-tip cut spares a tip only where the whole volume's own ``fix_borders`` end point
    lies within ``const`` nm, not anywhere near the volume border."""
    from dendrosam.reconstruct.skeleton_chunks import _Piece, _prune_face_tips

    main = [(5, y, 16) for y in range(5, 36)]  # the object's path, 60 nm from the inner face x = 20
    spur = [(5, 20, 17), (4, 20, 18), (3, 20, 19), (2, 20, 20), (1, 20, 20), (0, 20, 20)]  # to a face
    # target on the z = 0 volume border, 209 nm from the path: inside its invalidation ball
    voxels = np.array(main + spur, np.int64)
    edges = [(i, i + 1) for i in range(len(main) - 1)]
    edges += [(15, len(main))] + [(len(main) + i, len(main) + i + 1) for i in range(len(spur) - 1)]
    piece = _Piece(voxels, np.empty((0, 2), np.int64), np.full(len(voxels), 20.0, np.float32))
    slabs = {(2, 20): np.ones((10, 60, 2), np.uint32)}  # one piece of the object crosses the face
    crossings = {(2, 20): np.array([1], np.uint32)}
    out, out_edges = _prune_face_tips(piece, np.array(edges), border_ends, slabs, crossings,
                                      VS, SkeletonConfig(scale=4.0, const=500.0))
    assert len(out.voxels) == (len(voxels) if kept else len(main))
    assert len(out_edges) == (len(edges) if kept else len(main) - 1)


def test_blocks_no_target_on_a_face_the_object_only_touches():
    """A ribbon lying on the upper side of a block face, touching it without crossing: a shared
    target there would make both blocks trace a ~0.5 um branch to the face (4 tips, 2 branch
    points, +12% cable before face targets were limited to crossing pieces)."""
    labels = np.zeros((24, 130, 240), np.uint32)
    labels[2:22, 52:110, 5:235] = 1
    whole = skeletonize(labels, VS)[1]
    merged = skeletonize_blocks(labels, VS, (24, 52, 240), whole_objects=False)[1]
    assert degrees(whole) == degrees(merged) == [1, 1]
    assert cable(merged) == pytest.approx(cable(whole), rel=1e-6)
