"""Precomputed publishing: every layer reads back through cloud-volume exactly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from cloudvolume import CloudVolume

from dendrosam.errors import InputError, OutputError, VoxelSizeError
from dendrosam.viz.publishing import publish
from dendrosam.viz.pyramid import downsample_mean, downsample_mode, pyramid_factors


def _read(path: str, mip: int) -> np.ndarray:
    """Level ``mip`` of a precomputed layer as a (Z, Y, X) array."""
    cv = CloudVolume(path, mip=mip, progress=False)
    return np.asarray(cv[:])[..., 0].transpose(2, 1, 0)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def published(tmp_path, synthetic):
    res = publish(None, tmp_path / "pc", image=synthetic["image"], labels=synthetic["labels"],
                  skeletons=synthetic["skeletons"], voxel_size=synthetic["voxel_size"],
                  morphometrics=synthetic["morphometrics"], chunk_size=(4, 32, 32))
    return res, tmp_path / "pc"


def test_three_level_pyramid_with_an_isotropic_step(tmp_path, rng):
    # 40 x 10 x 10 nm: xy halved twice, then all axes once
    labels = rng.integers(0, 4, (8, 256, 256)).astype(np.uint32)
    res = publish(None, tmp_path / "p3", labels=labels, voxel_size=(40, 10, 10), mesh=False, chunk_size=(4, 32, 32))
    assert res.voxel_sizes == ((40, 10, 10), (40, 20, 20), (40, 40, 40), (80, 80, 80))
    want = labels
    for mip, f in enumerate([(1, 2, 2), (1, 2, 2), (2, 2, 2)], start=1):
        want = downsample_mode(want, f)
        np.testing.assert_array_equal(_read(res.segmentation, mip), want)


def test_volumes_and_pyramids_round_trip(published, synthetic):
    res, _ = published
    factors = pyramid_factors(synthetic["labels"].shape, synthetic["voxel_size"])
    assert factors[0] == (1, 2, 2)  # anisotropic: only x and y are halved
    cv = CloudVolume(res.segmentation, progress=False)
    assert cv.info["scales"][0]["resolution"] == [8, 8, 40]  # x, y, z nm, exact
    assert cv.info["scales"][0]["encoding"] == "compressed_segmentation"
    assert res.voxel_sizes[:2] == ((40.0, 8.0, 8.0), (40.0, 16.0, 16.0))
    np.testing.assert_array_equal(_read(res.segmentation, 0), synthetic["labels"])
    np.testing.assert_array_equal(_read(res.image, 0), synthetic["image"])
    lab1 = downsample_mode(synthetic["labels"], factors[0])
    np.testing.assert_array_equal(_read(res.segmentation, 1), lab1)
    np.testing.assert_array_equal(_read(res.image, 1), downsample_mean(synthetic["image"], factors[0]))
    for mip in range(2, len(res.voxel_sizes)):  # every coarser level follows the same rule
        lab1 = downsample_mode(lab1, factors[mip - 1])
        np.testing.assert_array_equal(_read(res.segmentation, mip), lab1)
    assert res.segment_ids == (3, 7, 11)


def test_meshes_fill_each_object_bounding_box(published, synthetic):
    res, root = published
    assert res.n_meshes == 3
    cv = CloudVolume(res.segmentation, progress=False)
    assert (root / "segmentation/mesh/info").read_text().count("neuroglancer_legacy_mesh") == 1
    res_xyz = np.array(synthetic["voxel_size"][::-1])
    for obj in res.segment_ids:
        zyx = np.argwhere(synthetic["labels"] == obj)
        lo, hi = zyx.min(0)[::-1] * res_xyz, (zyx.max(0)[::-1] + 1) * res_xyz
        verts = cv.mesh.get(obj).vertices
        tol = 0.5  # nm: simplification moves boundary vertices by < 0.1 nm (voxels are 8-40 nm)
        assert (verts >= lo - tol).all() and (verts <= hi + tol).all()
        # and they reach it (within a quarter of the finest voxel): closed at the volume border too
        np.testing.assert_allclose(verts.min(0), lo, atol=2.0)
        np.testing.assert_allclose(verts.max(0), hi, atol=2.0)


def test_skeletons_round_trip_with_radius(published, synthetic):
    res, root = published
    assert res.n_skeletons == 2
    cv = CloudVolume(res.segmentation, progress=False)
    assert cv.skeleton.meta.info["vertex_attributes"][0]["id"] == "radius"
    for obj, g in synthetic["skeletons"].items():
        sk = cv.skeleton.get(obj)
        nodes = sorted(g.nodes)
        want = np.array([g.nodes[n]["pos"] for n in nodes])[:, ::-1]
        np.testing.assert_array_equal(sk.vertices, want.astype(np.float32))
        np.testing.assert_array_equal(sk.radius, [g.nodes[n]["radius"] for n in nodes])
        got = {tuple(sorted(e)) for e in sk.edges.tolist()}
        assert got == {tuple(sorted((nodes.index(a), nodes.index(b)))) for a, b in g.edges}


def test_segment_properties_carry_morphometrics(published):
    import json

    res, root = published
    info = json.loads((root / "segmentation/info").read_text())
    props = json.loads((root / "segmentation" / info["segment_properties"] / "info").read_text())
    assert props["inline"]["ids"] == ["3", "7", "11"]
    by_id = {p["id"]: p for p in props["inline"]["properties"]}
    assert by_id["length_nm"]["values"] == [440.0, 280.0, None]  # NaN -> null
    assert "kind" not in by_id  # text columns are not numeric properties


def test_republish_is_idempotent_and_resumes(published, synthetic):
    res, root = published
    before = _tree_digest(root)
    again = publish(None, root, image=synthetic["image"], labels=synthetic["labels"],
                    skeletons=synthetic["skeletons"], voxel_size=synthetic["voxel_size"],
                    morphometrics=synthetic["morphometrics"], chunk_size=(4, 32, 32))
    assert again.skipped == ("image", "segmentation")
    assert _tree_digest(root) == before
    # an interrupted run: no marker, meshes missing -> the re-run completes the layer
    (root / "segmentation/.complete").unlink()
    for p in (root / "segmentation/mesh").iterdir():
        p.unlink()
    resumed = publish(None, root, image=synthetic["image"], labels=synthetic["labels"],
                      skeletons=synthetic["skeletons"], voxel_size=synthetic["voxel_size"],
                      morphometrics=synthetic["morphometrics"], chunk_size=(4, 32, 32))
    assert resumed.skipped == ("image",) and resumed.n_meshes == 3
    assert _tree_digest(root) == before


def test_different_dataset_is_refused_unless_overwrite(published, synthetic):
    _, root = published
    other = synthetic["labels"].copy()
    other[0] = 0
    with pytest.raises(OutputError, match="different published dataset"):
        publish(None, root, labels=other, voxel_size=synthetic["voxel_size"], mesh=False)
    res = publish(None, root, labels=other, voxel_size=synthetic["voxel_size"], mesh=False,
                  overwrite=True, chunk_size=(4, 32, 32))
    np.testing.assert_array_equal(_read(res.segmentation, 0), other)


def test_user_mistakes_raise_typed_errors(tmp_path, synthetic):
    with pytest.raises(VoxelSizeError):
        publish(synthetic["image"], tmp_path / "a")
    with pytest.raises(InputError, match="nothing to publish"):
        publish(None, tmp_path / "b", voxel_size=(40, 8, 8))
    with pytest.raises(InputError, match="3D labels are needed"):
        publish(synthetic["image"], tmp_path / "c", voxel_size=(40, 8, 8), skeletons=synthetic["skeletons"])


def test_ome_zarr_copy(tmp_path, synthetic):
    import zarr

    res = publish(None, tmp_path / "pc", image=synthetic["image"], labels=synthetic["labels"],
                  voxel_size=synthetic["voxel_size"], mesh=False, ome_zarr=tmp_path / "v.ome.zarr",
                  chunk_size=(4, 32, 32))
    g = zarr.open_group(str(res.ome_zarr), mode="r")
    ms = g.attrs["multiscales"][0]
    assert ms["axes"][0] == {"name": "z", "type": "space", "unit": "nanometer"}
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [40.0, 16.0, 16.0]
    np.testing.assert_array_equal(g["0"][:], synthetic["image"])
    np.testing.assert_array_equal(g["labels/labels3d/0"][:], synthetic["labels"])
    np.testing.assert_array_equal(g["labels/labels3d/1"][:], downsample_mode(synthetic["labels"], (1, 2, 2)))
