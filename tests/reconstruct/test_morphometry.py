"""Morphometrics and spines on synthetic dendrites with known answers."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.morphometry import COLUMNS, morphometrics, strahler_order, surface_areas
from dendrosam.reconstruct.skeleton import skeletonize
from dendrosam.reconstruct.spines import SpineConfig, detect_spines, spines_table

VS = (40.0, 15.0, 15.0)
SHAFT_R, NECK_R, NECK_LEN, HEAD_R = 400.0, 60.0, 700.0, 250.0
SPINE_X = (1200.0, 2400.0, 3600.0, 4800.0)


def spiny_dendrite() -> np.ndarray:
    """A 6 um shaft (radius 400 nm) along x with four spines alternating +y / -y.

    Each spine: a neck of radius 60 nm from the shaft surface, 700 nm long, then a spherical
    head of radius 250 nm, so the neck length (shaft surface to head surface) is exactly 700 nm.
    """
    z, y, x = (np.indices((30, 280, 400), dtype=np.float32) * np.reshape(VS, (3, 1, 1, 1)).astype(np.float32))
    cz, cy = 600.0, 2100.0
    vol = (z - cz) ** 2 + (y - cy) ** 2 <= SHAFT_R**2
    for i, sx in enumerate(SPINE_X):
        sign = 1 if i % 2 == 0 else -1
        lo, hi = sorted((cy + sign * (SHAFT_R - 50), cy + sign * (SHAFT_R + NECK_LEN)))
        vol |= ((z - cz) ** 2 + (x - sx) ** 2 <= NECK_R**2) & (y >= lo) & (y <= hi)
        head = cy + sign * (SHAFT_R + NECK_LEN + HEAD_R)
        vol |= (z - cz) ** 2 + (y - head) ** 2 + (x - sx) ** 2 <= HEAD_R**2
    return vol.astype(np.uint32)


@pytest.fixture(scope="module")
def spiny():
    labels = spiny_dendrite()
    return labels, skeletonize(labels, VS)


def test_spines_of_synthetic_dendrite(spiny):
    _, graphs = spiny
    spines = detect_spines(graphs[1])
    assert len(spines) == 4
    assert sorted(round(s.base_pos[2]) for s in spines) == [1200, 2400, 3600, 4800]
    for s in spines:
        assert s.neck_length == pytest.approx(NECK_LEN, abs=60.0)
        assert s.head_radius == pytest.approx(HEAD_R, rel=0.10)
        assert s.neck_radius == pytest.approx(NECK_R, rel=0.25)
    table = spines_table(graphs)
    assert len(table) == 4 and {"neck_length", "head_pos_x", "base_pos_z"} <= set(table.columns)


def test_spine_thresholds(spiny):
    _, graphs = spiny
    assert detect_spines(graphs[1], SpineConfig(max_length=1000.0)) == []  # branches are ~1.6 um
    assert detect_spines(graphs[1], SpineConfig(head_neck_ratio=5.0)) == []  # heads are ~4x necks
    with pytest.raises(ConfigError, match="head_neck_ratio"):
        SpineConfig(head_neck_ratio=0.5)


def test_morphometrics_of_spiny_dendrite(spiny):
    labels, graphs = spiny
    table = morphometrics(graphs, labels)
    assert list(table.columns) == list(COLUMNS)
    row = table.iloc[0]
    assert row["label"] == 1 and row["n_spines"] == 4
    assert row["n_branch_points"] == 4 and row["n_tips"] == 6
    assert row["strahler_order"] == 2
    # shaft: 400 voxels of 15 nm along x; density = 4 spines / 6 um
    assert row["shaft_length_nm"] == pytest.approx(399 * 15, rel=0.02)
    assert row["main_path_length_nm"] == pytest.approx(399 * 15, rel=0.02)
    assert row["tortuosity"] == pytest.approx(1.0, abs=0.02)
    assert row["spine_density_per_um"] == pytest.approx(4 / 5.985, rel=0.03)
    assert row["volume_nm3"] == pytest.approx(labels.sum() * np.prod(VS))
    assert row["radius_max_nm"] == pytest.approx(SHAFT_R, rel=0.05)


def test_morphometrics_without_labels_has_nan_volume(spiny):
    _, graphs = spiny
    table = morphometrics(graphs)
    assert math.isnan(table.loc[0, "volume_nm3"]) and math.isnan(table.loc[0, "surface_area_nm2"])


def test_surface_area_of_a_sphere_and_a_box():
    vs = (20.0, 10.0, 10.0)
    z, y, x = np.indices((60, 120, 120)) * np.reshape(vs, (3, 1, 1, 1))
    ball = ((z - 600) ** 2 + (y - 600) ** 2 + (x - 600) ** 2 <= 500.0**2).astype(np.uint8)
    box = np.zeros((10, 10, 10), np.uint32)
    box[2:8, 2:8, 2:8] = 5
    assert surface_areas(ball, vs, [1])[1] == pytest.approx(4 * math.pi * 500.0**2, rel=0.01)
    # the raw-mask mesh is terraced: 12% too large on a sphere
    assert surface_areas(ball, vs, [1], sigma=0)[1] == pytest.approx(1.12 * 4 * math.pi * 500.0**2, rel=0.01)
    # a 6-voxel cube: the blurred surface rounds edges and corners, below the voxel-face area
    area = surface_areas(box, (1.0, 1.0, 1.0), [5, 9])
    assert 0.6 * 6 * 36 < area[5] < 6 * 36 and math.isnan(area[9])


def test_strahler_of_binary_tree():
    tree = nx.balanced_tree(2, 3)  # 8 leaves, root has degree 2
    nx.set_edge_attributes(tree, 1.0, "length")
    assert strahler_order(tree) == 3  # rooted at a leaf: the root-side branch is one order lower
    path = nx.path_graph(5)
    nx.set_edge_attributes(path, 1.0, "length")
    assert strahler_order(path) == 1


def test_surface_area_of_a_one_voxel_object_is_finite():
    """A blurred single voxel never reaches the iso-level; the raw mask is measured instead."""
    from dendrosam.reconstruct.morphometry import surface_areas

    labels = np.zeros((5, 5, 5), np.uint32)
    labels[2, 2, 2] = 4
    area = surface_areas(labels, (40, 10, 10), [4])[4]
    # marching cubes at 0.5 around one voxel: an octahedron with vertices half a voxel out
    # along each axis; its area is 8 triangles of the half-axes (20, 5, 5) nm.
    a, b, c = 20.0, 5.0, 5.0
    tri = 0.5 * np.sqrt((a * b) ** 2 + (b * c) ** 2 + (a * c) ** 2)
    assert area == pytest.approx(8 * tri, rel=1e-6)
