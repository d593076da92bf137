"""``dendrosam train-joins`` and ``dendrosam track --joins``: files in, a model and joined labels out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr

from dendrosam.cli import main
from dendrosam.reconstruct.joins import JoinModel

from test_track_helpers import canonical, scramble, tubes


@pytest.fixture
def files(tmp_path):
    gt = tubes(6, (40, 40), [[(z, 12, 12, 5) for z in range(6)], [(z, 28, 26, 4) for z in range(6)]])
    gt[3] = 0  # a missing section: without a gap the tracker splits both tubes there
    image = np.random.default_rng(0).integers(0, 255, gt.shape, dtype=np.uint8)
    paths = {name: tmp_path / f"{name}.tif" for name in ("labels2d", "image", "gt")}
    tifffile.imwrite(paths["labels2d"], scramble(gt))
    tifffile.imwrite(paths["image"], image)
    tifffile.imwrite(paths["gt"], gt)
    return paths, gt


def test_train_joins_then_track_with_them(tmp_path, files, capsys):
    paths, gt = files
    model_path = tmp_path / "joins.npz"
    vs = ["--voxel-size", "40", "10", "10"]
    rc = main(["train-joins", "--sample", str(paths["labels2d"]), str(paths["image"]), str(paths["gt"]),
               "--out", str(model_path), "--classifier", "mlp", "--members", "2", "--steps", "100", *vs])
    assert rc == 0
    # per tube: gap-1 pairs 0-1, 1-2, 4-5 and gap-2 pairs 0-2, 2-4 (section 3 is empty), all one neuron
    # the two tubes never come within reach of each other: nothing to train a contact ensemble on
    assert "trained on 10 pairs (no contact ensemble: no touching objects) (100% same neuron)" in \
        capsys.readouterr().out
    model = JoinModel.load(model_path)
    assert len(model.members) == 2 and model.card["samples"][0]["gt"] == "gt.tif"

    plain, joined = tmp_path / "plain.zarr", tmp_path / "joined.zarr"
    assert main(["track", str(paths["labels2d"]), "--out", str(plain), "--gap", "0", *vs]) == 0
    assert "4 3D objects" in capsys.readouterr().out
    assert main(["track", str(paths["labels2d"]), "--out", str(joined), "--gap", "0", *vs,
                 "--joins", str(model_path), "--image", str(paths["image"])]) == 0
    assert "2 3D objects" in capsys.readouterr().out
    labels = zarr.open_array(str(joined / "labels" / "tracks" / "0"), mode="r")[:]
    np.testing.assert_array_equal(labels, canonical(gt))
    doc = json.loads((joined / "track_graph.json").read_text())
    assert doc["n_objects"] == 2 and sorted({n["label3d"] for n in doc["graph"]["nodes"]}) == [1, 2]
    # starting from the tracker's objects (split at the missing section) and without contacts: the same
    tracks = tmp_path / "tracks.zarr"
    assert main(["track", str(paths["labels2d"]), "--out", str(tracks), "--gap", "0", *vs, "--join-start", "tracks",
                 "--no-contacts", "--joins", str(model_path), "--image", str(paths["image"])]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tracks / "labels" / "tracks" / "0"), mode="r")[:], labels)
    assert json.loads((tracks / "track_graph.json").read_text())["graph"]["nodes"] == doc["graph"]["nodes"]
    additive = tmp_path / "additive.zarr"
    assert main(["track", str(paths["labels2d"]), "--out", str(additive), "--gap", "0", *vs,
                 "--joins", str(model_path), "--image", str(paths["image"]), "--linkage", "additive"]) == 0
    assert "2 3D objects" in capsys.readouterr().out
    np.testing.assert_array_equal(zarr.open_array(str(additive / "labels" / "tracks" / "0"), mode="r")[:], labels)
    # gradient-boosted trees (the default): every training pair is one neuron, so a constant "join" model
    trees_path = tmp_path / "trees.npz"
    assert main(["train-joins", "--sample", str(paths["labels2d"]), str(paths["image"]), str(paths["gt"]),
                 "--out", str(trees_path), *vs]) == 0
    trees = JoinModel.load(trees_path)
    assert trees.members == () and trees.card["classifier"] == "trees" and trees.trees.roots.size == 0
    assert trees.predict(np.zeros((1, trees.mean.size))).tolist() == pytest.approx([1 - 1e-6])
    by_trees = tmp_path / "by_trees.zarr"
    assert main(["track", str(paths["labels2d"]), "--out", str(by_trees), "--gap", "0", *vs,
                 "--joins", str(trees_path), "--image", str(paths["image"])]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(by_trees / "labels" / "tracks" / "0"), mode="r")[:], labels)


def test_join_cli_errors_are_one_line(tmp_path, files, capsys):
    paths, _ = files
    sample = [str(paths["labels2d"]), str(paths["image"]), str(paths["gt"])]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    assert main(["train-joins", "--sample", *sample, "--out", str(tmp_path / "m.npz"), "--members", "0"]) == 2
    assert main(["train-joins", "--sample", *sample, "--out", str(tmp_path / "m.pt")]) == 2
    assert main(["train-joins", "--sample", *sample, "--out", str(tmp_path / "m.npz"), "--reach-nm", "-1"]) == 2
    assert main(["train-joins", "--sample", *sample, "--out", str(tmp_path / "m.npz"), "--stages", "2"]) == 2
    assert main(["track", sample[0], "--out", str(tmp_path / "a.zarr"), "--joins", "default"]) == 2
    assert main(["track", sample[0], "--out", str(tmp_path / "w.zarr"), "--joins", "default", "--image", sample[1],
                 "--contact-weight", "0"]) == 2
    assert main(["track", sample[0], "--out", str(tmp_path / "b.zarr"), "--joins", str(bad),
                 "--image", sample[1]]) == 2
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((6, 20, 20), np.uint8))
    model = tmp_path / "m.npz"
    assert main(["train-joins", "--sample", *sample, "--out", str(model), "--members", "1", "--steps", "5"]) == 0
    assert main(["track", sample[0], "--out", str(tmp_path / "c.zarr"), "--joins", str(model),
                 "--image", str(tmp_path / "small.tif")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if line.startswith("dendrosam: error: ")]
    assert len(err) == 8 and all(line.startswith(("dendrosam: warning: ", "dendrosam: error: ")) or "pairs" in line
                                 for line in lines)  # one line per error, no traceback
    assert "--members" in err[0] and ".npz" in err[1] and "--reach-nm" in err[2]
    assert "--stages 2 needs two or more --sample" in err[3]
    assert "--image" in err[4] and "--contact-weight must be > 0" in err[5] and "bad.npz" in err[6]
    assert "small.tif" in err[7] and "shape" in err[7]
    # a bad model or image fails before anything is written
    assert not any((tmp_path / name).exists() for name in ("b.zarr", "c.zarr", "w.zarr"))


def test_train_joins_with_two_samples_fits_two_stages(tmp_path, capsys):
    # two neurons whose masks lie side by side (contacts within sections), one of them split in section 1
    lab = np.zeros((5, 12, 14), np.uint16)
    lab[:, 1:10, 1:6], lab[:, 1:10, 7:13] = 1, 2
    lab[1, 6:10, 1:6] = 3
    gt = np.where(lab == 2, 20, np.where(lab > 0, 10, 0)).astype(np.uint16)
    rng = np.random.default_rng(0)
    samples = []
    for k in range(2):
        paths = [tmp_path / f"{name}{k}.tif" for name in ("labels2d", "image", "gt")]
        for path, data in zip(paths, (lab, rng.integers(0, 255, lab.shape, dtype=np.uint8), gt)):
            tifffile.imwrite(path, data)
        samples += ["--sample", *map(str, paths)]
    model_path = tmp_path / "two.npz"
    assert main(["train-joins", *samples, "--out", str(model_path), "--voxel-size", "40", "10", "10",
                 "--stages", "2"]) == 0
    assert "(two stages) ->" in capsys.readouterr().out
    model = JoinModel.load(model_path)
    assert model.context is not None and model.card["stages"] == 2 and model.card["out_of_fold_groups"] == 2
    out = tmp_path / "joined.zarr"
    assert main(["track", samples[1], "--out", str(out), "--voxel-size", "40", "10", "10",
                 "--joins", str(model_path), "--image", samples[2]]) == 0
    assert zarr.open_array(str(out / "labels" / "tracks" / "0"), mode="r")[:].max() >= 1
