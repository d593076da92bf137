"""``dendrosam track``: files in, OME-Zarr labels + node-link JSON out, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr

from dendrosam.cli import main
from dendrosam.reconstruct.tracking import track

from test_track_helpers import canonical, scramble, tubes


@pytest.fixture
def stack_file(tmp_path):
    gt = tubes(6, (40, 40), [[(z, 12, 12, 5) for z in range(6)], [(z, 28, 26, 4) for z in range(6)]])
    gt[3] = 0  # a missing section
    path = tmp_path / "labels2d.tif"
    tifffile.imwrite(path, scramble(gt))
    return path, gt


@pytest.mark.parametrize("block", [[], ["--block-size", "2"]])
def test_track_cli_writes_labels_and_graph(tmp_path, stack_file, capsys, block):
    path, gt = stack_file
    out = tmp_path / "run.zarr"
    rc = main(["track", str(path), "--out", str(out), "--voxel-size", "40", "10", "10", *block])
    assert rc == 0
    assert "2 3D objects from 10 2D objects in 6 sections" in capsys.readouterr().out
    labels = zarr.open_array(str(out / "labels" / "tracks" / "0"), mode="r")[:]
    np.testing.assert_array_equal(labels, canonical(gt))
    doc = json.loads((out / "track_graph.json").read_text())
    assert doc["n_objects"] == 2 and doc["voxel_size_nm"] == [40.0, 10.0, 10.0]
    assert len(doc["graph"]["nodes"]) == 10
    assert sorted(e["dz"] for e in doc["graph"]["edges"]) == [1, 1, 1, 1, 1, 1, 2, 2]
    np.testing.assert_array_equal(labels, track(scramble(gt), (40, 10, 10)).labels)


def test_track_cli_errors_are_one_line(tmp_path, stack_file, capsys):
    path, _ = stack_file
    assert main(["track", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o.zarr")]) == 2
    assert main(["track", str(path), "--out", str(tmp_path / "o.zarr"), "--gap", "-1"]) == 2
    assert main(["track", str(path), "--out", str(tmp_path / "o.zarr"), "--contest-share", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("dendrosam: error: ") for line in err)
    assert "missing.tif" in err[0] and "--gap" in err[1] and "contest_share" in err[2]
    assert not (tmp_path / "o.zarr").exists()
