"""Contact graph: exact areas of touching boxes, gaps, centroids."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError, LabelError, VoxelSizeError
from dendrosam.reconstruct.contacts import contact_graph, contacts_table

VS = (40.0, 15.0, 10.0)


def two_boxes(gap: int) -> np.ndarray:
    """Box 1 (z 2-5, y 3-9, x 2-6) and box 2 beyond it along x after ``gap`` empty columns."""
    labels = np.zeros((8, 12, 20), np.uint32)
    labels[2:6, 3:10, 2:7] = 1
    labels[2:6, 3:10, 7 + gap : 12 + gap] = 2
    return labels


def test_touching_boxes_exact_area_and_centroid():
    g = contact_graph(two_boxes(0), VS)
    assert sorted(g.edges) == [(1, 2)]
    e = g.edges[1, 2]
    # 4 sections x 7 rows of x-faces, each 40 x 15 nm
    assert e["n_faces"] == 28 and e["n_faces_gap"] == 0
    assert e["area_nm2"] == pytest.approx(28 * 40.0 * 15.0)
    # faces between x = 6 and 7 -> x = 6.5 voxels; z centre 3.5, y centre 6
    assert e["centroid"] == pytest.approx((3.5 * 40, 6 * 15, 6.5 * 10))
    assert g.nodes[1]["voxels"] == 4 * 7 * 5
    assert g.nodes[2]["volume_nm3"] == pytest.approx(4 * 7 * 5 * 40 * 15 * 10)


def test_face_area_per_axis():
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[1, 1, 1], labels[2, 1, 1], labels[1, 2, 1] = 1, 2, 3  # 2 above 1 in z, 3 beside 1 in y
    g = contact_graph(labels, VS)
    assert g.edges[1, 2]["area_nm2"] == pytest.approx(15.0 * 10.0)  # z-face: vy * vx
    assert g.edges[1, 3]["area_nm2"] == pytest.approx(40.0 * 10.0)  # y-face: vz * vx
    assert not g.has_edge(2, 3)  # diagonal neighbours share no face


def test_gap_of_one_voxel_bridged_two_voxels_not():
    assert contact_graph(two_boxes(1), VS).number_of_edges() == 0
    g = contact_graph(two_boxes(1), VS, gap=1)
    e = g.edges[1, 2]
    assert e["n_faces"] == e["n_faces_gap"] == 28
    assert e["area_nm2"] == pytest.approx(28 * 40.0 * 15.0)
    assert e["centroid"][2] == pytest.approx(7.0 * 10)  # the middle of the gap column
    assert contact_graph(two_boxes(2), VS, gap=1).number_of_edges() == 0


def test_gap_not_bridged_through_a_third_object():
    labels = np.zeros((1, 1, 5), np.uint16)
    labels[0, 0] = [1, 3, 2, 0, 0]
    g = contact_graph(labels, (1.0, 1.0, 1.0), gap=1)
    assert sorted(g.edges) == [(1, 3), (2, 3)]


def test_table_and_random_volume_symmetry(rng):
    labels = rng.integers(0, 4, size=(6, 7, 8)).astype(np.uint32)
    g = contact_graph(labels, VS)
    total = sum(d["n_faces"] for *_, d in g.edges(data=True))
    # brute force over every face-adjacent pair
    expected = 0
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        expected += int(((a[:-1] != a[1:]) & (a[:-1] > 0) & (a[1:] > 0)).sum())
    assert total == expected
    table = contacts_table(g)
    assert (table["id_a"] < table["id_b"]).all() and len(table) == g.number_of_edges()


def test_user_errors():
    with pytest.raises(ConfigError, match="gap"):
        contact_graph(two_boxes(0), VS, gap=2)
    with pytest.raises(LabelError):
        contact_graph(np.zeros((3, 3)), VS)
    with pytest.raises(VoxelSizeError):
        contact_graph(two_boxes(0), (40.0, -1.0, 10.0))
