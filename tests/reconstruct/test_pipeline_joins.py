"""The pipeline's learned-joins stage: it merges what the model says, is recorded, and resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from dendrosam.errors import CheckpointError, ConfigError
from dendrosam.reconstruct.config import config_from_dict
from dendrosam.reconstruct.join_features import FEATURE_NAMES
from dendrosam.reconstruct.joins import JoinModel
from dendrosam.reconstruct.pipeline import reconstruct_volume

from test_pipeline import VOXEL, tubes


pytestmark = pytest.mark.filterwarnings("ignore:section 10 is constant")


@pytest.fixture
def iou_model(tmp_path):
    """A model that joins pairs with IoU > 0.5 (one member, logit 50 * (iou - 0.5))."""
    n = len(FEATURE_NAMES)
    w = np.zeros((1, n))
    w[0, FEATURE_NAMES.index("iou")] = 50.0
    path = tmp_path / "iou.npz"
    JoinModel(np.zeros(n), np.ones(n), (((w, np.array([-25.0])),),), {"name": "iou>0.5"}).save(path)
    return path


def config(model, **joins):
    return config_from_dict({
        "segment": {"method": "threshold", "threshold": 0.5, "sigma_px": 0.0},
        "engine": {"sections_per_task": 4, "block_sections": 5, "objects_per_task": 2},
        "track": {"gap": 0},  # the blank section splits every tube
        "joins": {"model": str(model), **joins},
    })


def blanked_tubes():
    img, gt = tubes(depth=20)  # each half of a tube is above the skeletonizer's dust threshold
    img[10] = 40  # section 10 is blank: no 2D objects there
    gt[10] = 0
    return img, gt


def test_joins_rejoin_tubes_split_at_a_blank_section(tmp_path, iou_model):
    img, gt = blanked_tubes()
    plain = reconstruct_volume(img, tmp_path / "plain", config("none"), VOXEL, gt=gt, progress=False)
    assert len(np.unique(plain.labels3d[:])) - 1 == 6
    joined = reconstruct_volume(img, tmp_path / "joined", config(iou_model), VOXEL, gt=gt, progress=False)
    labels = joined.labels3d[:]
    assert len(np.unique(labels)) - 1 == 3 and sorted(joined.graphs) == [1, 2, 3]
    assert all(len(np.unique(labels[gt == i])) == 1 for i in (1, 2, 3))
    assert joined.metrics["voi_split"] == pytest.approx(0.0, abs=1e-12)
    run = json.loads((joined.out / "run.json").read_text())
    assert "joins" in run["timings_s"]
    card = run["models"]["joins"]
    assert card["stop"] == 0.5 and card["max_gap"] == 2 and card["card"] == {"name": "iou>0.5"}
    assert card["contacts"] is True and card["linkage"] == "additive" and card["start"] == "sections"
    # only gap-2 pairs (9-11) cross the blank: with max_gap 1 nothing is joined across it
    one = reconstruct_volume(img, tmp_path / "gap1", config(iou_model, max_gap=1), VOXEL, progress=False)
    np.testing.assert_array_equal(one.labels3d[:], plain.labels3d[:])
    # starting from the tracker's six halves gives the same three tubes (every tracker link has IoU > 0.5)
    tracks = reconstruct_volume(img, tmp_path / "tracks", config(iou_model, start="tracks"), VOXEL, progress=False)
    np.testing.assert_array_equal(tracks.labels3d[:], labels)


def test_resume_redoes_only_what_is_missing(tmp_path, iou_model):
    img, _ = blanked_tubes()
    out = tmp_path / "run"
    first = reconstruct_volume(img, out, config(iou_model), VOXEL, progress=False).labels3d[:]
    done = out / ".dendrosam" / "done"
    # killed after tracking, before the joins were recorded: resume runs the joins on the tracked labels
    arr = zarr.open_array(str(out / "volume.ome.zarr" / "labels" / "labels3d" / "0"), mode="r+")
    (done / "joins" / "0_20.json").unlink()
    tracked = reconstruct_volume(img, tmp_path / "t", config("none"), VOXEL, progress=False).labels3d[:]
    arr[:] = tracked
    json_run = out / "run.json"
    json_run.write_text(json_run.read_text().replace('"complete"', '"running"'))
    again = reconstruct_volume(img, out, config(iou_model), VOXEL, resume=True, progress=False)
    np.testing.assert_array_equal(again.labels3d[:], first)
    # killed half-way through writing the joined labels: neither record matches, so it tracks again
    arr[:3] = tracked[:3]
    json_run.write_text(json_run.read_text().replace('"complete"', '"running"'))
    again = reconstruct_volume(img, out, config(iou_model), VOXEL, resume=True, progress=False)
    np.testing.assert_array_equal(again.labels3d[:], first)


def test_bad_join_settings_fail_before_any_work(tmp_path):
    img, _ = blanked_tubes()
    with pytest.raises(CheckpointError, match="missing.npz"):
        reconstruct_volume(img, tmp_path / "a", config(tmp_path / "missing.npz"), VOXEL, progress=False)
    assert not (tmp_path / "a").exists()
    with pytest.raises(ConfigError, match="joins.stop"):
        config("none", stop=1.5)
    with pytest.raises(ConfigError, match="unknown key 'joins.threshold'"):
        config("none", threshold=0.5)
    with pytest.raises(ConfigError, match="joins.contacts"):
        config("none", contacts="yes")
    assert config("none").joins.contacts is True and config("none", contacts=False).joins.contacts is False
    with pytest.raises(ConfigError, match="joins.start must be 'sections' or 'tracks'"):
        config("none", start="objects")
    assert config("none").joins.start == "sections" and config("none", start="tracks").joins.start == "tracks"
    with pytest.raises(ConfigError, match="joins.linkage must be 'average' or 'additive'"):
        config("none", linkage="single")
    assert config("none", linkage="additive").joins.linkage == "additive"


def test_auto_uses_the_shipped_model_only_on_detector_masks(tmp_path):
    from dendrosam.reconstruct.config import resolve_joins

    def model(**segment):
        return resolve_joins(config_from_dict({"segment": segment})).joins.model

    assert model() == "default"  # detector boxes -> SAM masks: what the shipped model was trained on
    from dendrosam.segment.sam import PER_ID_SAM_PATH, PIECES_SAM_PATH

    assert model(sam="pieces") == model(sam="default") == model(sam=str(PIECES_SAM_PATH)) == "default"
    # the per-GT-id SAM, by name or by path, gets the joins trained on its own masks
    assert model(sam="per-id") == model(sam=str(PER_ID_SAM_PATH)) == "per-id"
    assert model(sam=str(tmp_path / "mine.pt")) == "default" and model(sam="per-id", prompts="gt-boxes") == "none"
    assert model(prompts="gt-boxes") == model(prompts="gt-points") == model(method="threshold") == "none"
    assert resolve_joins(config("x.npz")).joins.model == "x.npz"  # an explicit choice is kept
    img, _ = blanked_tubes()
    cfg = config_from_dict({"segment": {"method": "threshold", "threshold": 0.5, "sigma_px": 0.0}})
    res = reconstruct_volume(img, tmp_path / "run", cfg, VOXEL, progress=False)
    run = json.loads((res.out / "run.json").read_text())
    assert "joins" not in run["timings_s"] and run["models"]["joins"] is None
    assert 'model = "none"' in (res.out / "config.toml").read_text()


def test_per_id_models_reproduce_their_card_on_the_bundled_crop(tmp_path):
    """``segment.sam = "per-id"`` with ``joins.model = "auto"``: the run uses the joins trained on that SAM's
    masks and scores what that model's card says for the held-out crop (its recipe's own measurement)."""
    from dendrosam.reconstruct import demo_data, evaluate, open_labels, open_volume
    from dendrosam.reconstruct.joins import default_join_model, load_join_model

    card = load_join_model("per-id").card
    # trained when the per-id SAM was the default (its command's name then); re-scored under its new name
    assert card["sam"] == "default" and card["command"].endswith("--only joins")
    assert card["heldout_command"].endswith("--only joins-per-id-card")
    assert default_join_model().card["sam"] == "pieces"
    want = card["heldout_medulla[::4,:,125:]+fill"]["sections+joins+contacts"]
    data = demo_data("medulla40")
    gt = np.asarray(open_labels(data["neurons"], like=open_volume(data["raw"])).data[:])
    cfg = config_from_dict({"segment": {"sam": "per-id", "device": "cpu"}})
    res = reconstruct_volume(data["raw"], tmp_path / "run", cfg, progress=False, gt=gt)
    assert 'model = "per-id"' in (res.out / "config.toml").read_text()
    got = res.metrics
    assert got == evaluate(gt, np.asarray(res.labels3d[:])).to_dict()
    assert [round(got[k], 3) for k in ("voi_split", "voi_merge", "arand")] == [
        want[k] for k in ("voi_split", "voi_merge", "arand")]
