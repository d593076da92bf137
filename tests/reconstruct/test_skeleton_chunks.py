"""Per-object crops equal the whole-volume skeletons exactly; border targets; object boxes."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.skeleton import SkeletonConfig, skeletonize
from dendrosam.reconstruct.skeleton_chunks import object_boxes, skeletonize_objects
from dendrosam.reconstruct.teasar import border_targets

VS = (40.0, 15.0, 15.0)


def canonical(graph):
    """Nodes (pos, radius) and edges as position pairs: independent of node numbering."""
    nodes = sorted((d["pos"], d["radius"]) for _, d in graph.nodes(data=True))
    edges = sorted(tuple(sorted((graph.nodes[u]["pos"], graph.nodes[v]["pos"]))) for u, v in graph.edges)
    return nodes, edges


def assert_identical(whole, parts):
    assert sorted(parts) == sorted(whole)
    for label in whole:
        assert canonical(parts[label]) == canonical(whole[label]), label


def several_objects():
    """Touching, border-cut, branched and multi-component objects with uint64 ids."""
    labels = np.zeros((24, 64, 96), np.uint64)
    labels[:, 10:20, 10:20] = 5  # runs through the whole stack: cut by both z faces
    labels[:, 20:30, 10:20] = 2**40  # touches 5 along a y face, huge id
    labels[4:12, 40:52, :] = 7  # cut by both x faces
    labels[14:22, 40:50, 30:90] = 9  # interior bar ...
    labels[14:22, 50:64, 55:65] = 9  # ... with a side branch reaching the y border
    labels[2:8, 2:8, 60:95] = 11  # two separate components of one label
    labels[16:22, 2:8, 60:95] = 11
    return labels


def test_objects_equal_whole_volume_in_batches():
    labels = several_objects()
    whole = skeletonize(labels, VS)
    assert sorted(whole) == [5, 7, 9, 11, 2**40]
    boxes = object_boxes(labels)
    ids = sorted(boxes)
    union = {}
    for batch in (ids[:2], ids[2:4], ids[4:]):  # what the engine's workers receive
        union.update(skeletonize_objects(labels, VS, batch, boxes=boxes))
    assert_identical(whole, union)
    assert {g.graph["source"] for g in union.values()} == {"kimimaro-objects"}


def test_pad_zero_is_not_exact():
    # without background around the crop, the distance transform runs on past the crop edge
    # (kimimaro's black_border is off for multi-label input): radii and paths change
    labels = several_objects()
    whole = skeletonize(labels, VS)
    tight = skeletonize_objects(labels, VS, [9], pad=0)
    assert canonical(tight[9]) != canonical(whole[9])
    assert canonical(skeletonize_objects(labels, VS, [9], pad=1)[9]) == canonical(whole[9])
    with pytest.raises(ConfigError, match="pad"):
        skeletonize_objects(labels, VS, pad=-1)


def test_translation_invariance_of_border_cut_object():
    # an object cut by two volume faces gets the same skeleton wherever the volume starts;
    # kimimaro's own fix_borders picks the root from a set of coordinate tuples and does not
    one = np.zeros((20, 30, 80), np.uint32)
    one[3:15, 5:25, :] = 1
    one[3:15, 20:30, 30:40] = 1  # branch to the y border
    big = np.zeros((20, 47, 80), np.uint32)
    big[:, 17:, :] = one
    big[:, :16, :] = 2  # something else, away from the object
    shift = np.array([0.0, 17 * VS[1], 0.0])
    a = skeletonize(one, VS)[1]
    b = skeletonize(big, VS)[1]
    nodes_a, _ = canonical(a)
    nodes_b = sorted((tuple(np.asarray(p) - shift), r) for p, r in canonical(b)[0])
    assert len(nodes_a) == len(nodes_b)
    np.testing.assert_allclose([p for p, _ in nodes_a], [p for p, _ in nodes_b], atol=1e-3)
    assert [r for _, r in nodes_a] == [r for _, r in nodes_b]


def test_border_targets_exact():
    labels = np.zeros((10, 20, 30), np.uint8)
    labels[2:7, 4:13, 0:5] = 3  # cut by the x = 0 face: cross-section z 2..6, y 4..12
    labels[0, 15:18, 20:23] = 4  # a 3x3 patch on the z = 0 face
    points = border_targets(labels, VS)
    # 3 x 3 patch: its centre. 5 x 9 section (200 x 135 nm): y = 8 is the centre, and z = 3, 4, 5
    # all lie 75 nm from the outline (the y sides are nearer): the tie goes to the smallest index
    assert points.tolist() == [[0, 16, 21], [3, 8, 0]]
    assert border_targets(np.zeros((4, 4, 4), np.uint8), VS).shape == (0, 3)


def test_object_boxes():
    labels = np.zeros((6, 7, 8), np.uint64)
    labels[1:3, 2:5, 3:4] = 2**50
    labels[5, 6, 7] = 3
    boxes = object_boxes(labels, pad=1)
    assert boxes == {3: ((4, 5, 6), (6, 7, 8), 1), 2**50: ((0, 1, 2), (4, 6, 5), 6)}
    assert object_boxes(labels, object_ids=[3, 99], pad=0) == {3: ((5, 6, 7), (6, 7, 8), 1)}


def test_dust_skipped_like_whole_volume():
    labels = np.zeros((10, 20, 40), np.uint32)
    labels[2:8, 2:8, 2:38] = 1  # 1296 voxels
    labels[2:4, 12:14, 2:10] = 2  # 32 voxels: dust
    config = SkeletonConfig(dust_threshold=100)
    assert sorted(skeletonize_objects(labels, VS, config=config)) == sorted(skeletonize(labels, VS, config)) == [1]


def test_real_pinky40_crop_objects_equal_whole(shared_data):
    tifffile = pytest.importorskip("tifffile")
    path = shared_data / "pinky40_seg" / "segmentation.ome.tif"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with tifffile.TiffFile(path) as tif:
        z0 = 224
        labels = np.stack([tif.pages[z].asarray()[224:272, 224:272] for z in range(z0, z0 + 48)])
    vs = (40.0, 32.0, 32.0)
    config = SkeletonConfig(scale=4.0, const=500.0, dust_threshold=200)
    whole = skeletonize(labels, vs, config)
    assert len(whole) >= 15
    boxes = object_boxes(labels)
    ids = sorted(boxes)
    union = {}
    for i in range(0, len(ids), 7):
        union.update(skeletonize_objects(labels, vs, ids[i : i + 7], config, boxes=boxes))
    assert_identical(whole, union)
