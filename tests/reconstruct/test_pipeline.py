"""reconstruct_volume end to end on synthetic tubes (classical segmenter): exact answers,
serial vs Dask bit for bit, re-opening, refusal of conflicting runs, no complete marker on failure."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from dendrosam.errors import InputError, OutputError
from dendrosam.reconstruct.config import config_from_dict
from dendrosam.reconstruct.pipeline import open_run, reconstruct_volume

VOXEL = (40.0, 10.0, 10.0)
CENTRES = ((16, 16), (44, 44), (16, 48))


def tubes(depth: int = 12, size: int = 64, radius: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Bright straight z-tubes on a dark background, and their ground-truth ids (1, 2, 3)."""
    _, y, x = np.ogrid[:depth, :size, :size]
    gt = np.zeros((depth, size, size), np.uint32)
    for i, (cy, cx) in enumerate(CENTRES, start=1):
        gt[np.broadcast_to((y - cy) ** 2 + (x - cx) ** 2 <= radius**2, gt.shape)] = i
    img = np.where(gt > 0, 200, 40).astype(np.uint8)
    return img, gt


def config(**engine):
    return config_from_dict({
        "segment": {"method": "threshold", "threshold": 0.5, "sigma_px": 0.0},
        "engine": {"sections_per_task": 4, "block_sections": 5, "objects_per_task": 2, **engine},
    })


def tree(out: Path) -> dict[str, bytes]:
    """Every output file's bytes, except the log, timings and provenance (run.json, config.toml
    with the engine placement, and the report that prints them) which legitimately differ."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out))
        if p.is_file() and rel not in ("run.log", "run.json", "config.toml", "report.html", "report.md") and "lock" not in rel:
            files[rel] = p.read_bytes()
    return files


def test_tubes_exact(tmp_path):
    img, gt = tubes()
    res = reconstruct_volume(img, tmp_path / "run", config(), VOXEL, gt=gt, progress=False)
    labels = res.labels3d[:]
    assert labels.dtype == np.uint32 and labels.shape == img.shape
    # three objects, each exactly one tube (ids may be permuted)
    assert len(np.unique(labels)) == 4
    assert all(len(np.unique(labels[gt == i])) == 1 for i in (1, 2, 3))
    np.testing.assert_array_equal(labels > 0, gt > 0)
    assert res.metrics["voi_split"] == pytest.approx(0.0, abs=1e-12)
    assert res.metrics["voi_merge"] == pytest.approx(0.0, abs=1e-12)
    assert res.metrics["arand"] == pytest.approx(0.0, abs=1e-12)
    # skeletons in nm: each tube is a straight line along z at its centre
    assert sorted(res.graphs) == [1, 2, 3]
    # 3D ids are canonical (order of first voxel in C order): tube (16,16), then (16,48), then (44,44)
    for label, centre in zip((1, 3, 2), CENTRES):
        assert len(np.unique(labels[gt == CENTRES.index(centre) + 1])) == 1
        assert labels[0, centre[0], centre[1]] == label
        pos = np.array([d["pos"] for _, d in res.graphs[label].nodes(data=True)])
        np.testing.assert_allclose(np.median(pos[:, 1:], axis=0), np.array(centre) * 10.0, atol=15.0)
        assert np.ptp(pos[:, 0]) >= 0.75 * (img.shape[0] - 1) * VOXEL[0]
    # run folder layout
    out = res.out
    for rel in ("volume.ome.zarr/labels/labels3d/0", "volume.ome.zarr/labels/labels2d/0", "skeletons/graphs.json",
                "skeletons/1.graphml", "tables/segments.csv", "tables/contacts.csv", "tables/morphometrics.csv",
                "metrics.json", "config.toml", "run.log"):
        assert (out / rel).exists(), rel
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["voxel_size"] == list(VOXEL)
    assert set(run["timings_s"]) >= {"segment", "track", "skeletonize"}
    # 2D ids are per section: every section holds ids 1..3
    assert all(set(np.unique(s)) == {0, 1, 2, 3} for s in res.labels2d[:])
    again = open_run(out)
    np.testing.assert_array_equal(again.labels3d[:], labels)
    assert sorted(again.graphs) == [1, 2, 3]
    assert again.metrics == json.loads(json.dumps(res.metrics))
    assert list(again.graphs[1].nodes(data=True)) == list(res.graphs[1].nodes(data=True))


@pytest.mark.slow
def test_serial_and_dask_bit_identical(tmp_path):
    img, _ = tubes(depth=10)
    serial = reconstruct_volume(img, tmp_path / "serial", config(), VOXEL, progress=False)
    dask = reconstruct_volume(img, tmp_path / "dask", config(workers=2), VOXEL, progress=False)
    a, b = tree(serial.out), tree(dask.out)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_conflicting_and_repeated_runs(tmp_path):
    img, _ = tubes(depth=6)
    out = tmp_path / "run"
    reconstruct_volume(img, out, config(), VOXEL, progress=False)
    before = tree(out)
    with pytest.raises(OutputError, match="different config"):
        reconstruct_volume(img, out, config(block_sections=3), VOXEL, progress=False)
    with pytest.raises(OutputError, match="different input"):
        reconstruct_volume(img[:, ::-1].copy(), out, config(), VOXEL, progress=False)
    with pytest.raises(OutputError, match="--resume"):
        reconstruct_volume(img, out, config(), VOXEL, progress=False)
    assert tree(out) == before
    reconstruct_volume(img, out, config(), VOXEL, resume=True, progress=False)  # all verified, nothing redone
    assert tree(out) == before
    reconstruct_volume(img, out, config(block_sections=3), VOXEL, overwrite=True, progress=False)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_disk_full_leaves_no_complete_marker(tmp_path, monkeypatch):
    from dendrosam.reconstruct.store import RunStore

    img, _ = tubes(depth=6)
    calls = []

    def full(self, arr, z0, data):
        calls.append(z0)
        if len(calls) > 2:  # raw + first block written, then the disk fills up
            raise OutputError(f"{self.zarr_path}: disk full while writing (No space left on device)")
        arr[z0 : z0 + len(data)] = data

    monkeypatch.setattr(RunStore, "write_region", full)
    with pytest.raises(OutputError, match="disk full"):
        reconstruct_volume(img, tmp_path / "run", config(), VOXEL, progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    with pytest.raises(OutputError, match="no complete run"):
        open_run(tmp_path / "run")
    assert not (tmp_path / "run" / ".dendrosam" / "lock").exists()


def test_disk_full_from_the_chunk_writer(tmp_path, monkeypatch):
    img, _ = tubes(depth=4)
    import zarr

    real = zarr.Array.__setitem__

    def full(self, key, value):
        if "labels2d" in str(self.store_path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", full)
    with pytest.raises(OutputError, match="disk full"):
        reconstruct_volume(img, tmp_path / "run", config(), VOXEL, progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] != "complete"


def test_array_input_needs_voxel_size(tmp_path):
    img, _ = tubes(depth=2)
    with pytest.raises(InputError, match="voxel_size"):
        reconstruct_volume(img, tmp_path / "run", config(), progress=False)
    with pytest.raises(InputError, match=r"\(Z, Y, X\)"):
        reconstruct_volume(img[0], tmp_path / "run", config(), VOXEL, progress=False)


@pytest.mark.parametrize("block", [1, 3, 7, 50])
def test_streamed_contacts_and_boxes_equal_whole_volume(rng, block):
    from dendrosam.reconstruct import contact_graph
    from dendrosam.reconstruct.pipeline import _object_boxes, _streamed_contacts
    from dendrosam.reconstruct.skeleton_chunks import object_boxes

    labels = rng.integers(0, 6, (9, 7, 8)).astype(np.uint32)
    vs = (40.0, 8.0, 10.0)
    whole, streamed = contact_graph(labels, vs), _streamed_contacts(labels, vs, block)
    assert sorted(whole.nodes(data=True)) == sorted(streamed.nodes(data=True))
    assert sorted(map(sorted, whole.edges())) == sorted(map(sorted, streamed.edges()))
    for a, b, d in whole.edges(data=True):
        e = streamed.edges[a, b]
        assert (e["n_faces"], e["n_faces_gap"]) == (d["n_faces"], d["n_faces_gap"])
        assert e["area_nm2"] == pytest.approx(d["area_nm2"], rel=1e-12)
        np.testing.assert_allclose(e["centroid"], d["centroid"], rtol=1e-9)
    assert _object_boxes(labels, labels.shape[0], block) == object_boxes(labels)


def test_cli_run_with_config_file_and_publish(tmp_path, capsys):
    import tifffile

    from dendrosam.cli import main

    img, _ = tubes(depth=12)
    tifffile.imwrite(tmp_path / "s.tif", img, photometric="minisblack")
    (tmp_path / "c.toml").write_text("[segment]\nmethod = 'threshold'\nsigma_px = 0.0\n[engine]\nblock_sections = 4\n")
    argv = ["run", str(tmp_path / "s.tif"), "--out", str(tmp_path / "o"), "--voxel-size", *map(str, VOXEL),
            "--config", str(tmp_path / "c.toml"), "--set", "segment.threshold=0.5", "--publish", "--no-progress"]
    assert main(argv) == 0
    assert "3 skeleton graphs" in capsys.readouterr().out
    used = (tmp_path / "o" / "config.toml").read_text()
    assert "threshold = 0.5" in used and "block_sections = 4" in used and "voxel_size = [40.0, 10.0, 10.0]" in used
    assert (tmp_path / "o" / "precomputed" / "segmentation" / "info").is_file()
    assert (tmp_path / "o" / "report.html").is_file()
    # The run folder references its input instead of copying it: viz reads the image from there.
    from dendrosam.viz import load_run_data

    data = load_run_data(tmp_path / "o")
    assert data.image.shape == img.shape and np.array_equal(np.asarray(data.image[3]), img[3])
    assert data.labels.shape == img.shape and len(data.skeletons) == 3
    assert data.voxel_size == tuple(map(float, VOXEL))
    assert main(["report", str(tmp_path / "o")]) == 0
