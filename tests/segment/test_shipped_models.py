"""The shipped default models load by default and their cards' held-out numbers are reproducible.

The bundled demo crop is exactly the held-out medulla validation set of both cards (``[::4, :, 125:]``
of the FlyEM medulla cube at the 40 nm protocol), so the cards' medulla figures are recomputed here.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.segment.detector import DEFAULT_YOLO_PATH
from dendrosam.segment.sam import DEFAULT_SAM_PATH, PER_ID_SAM_PATH

pytestmark = pytest.mark.skipif(not (DEFAULT_SAM_PATH.exists() and DEFAULT_YOLO_PATH.exists()),
                                reason="shipped models not installed")


@pytest.fixture(scope="module")
def heldout():
    from dendrosam.reconstruct import open_volume
    from dendrosam.reconstruct.datasets import demo_data

    d = demo_data("medulla40")
    raw = open_volume(d["raw"])
    return raw.read(), open_volume(d["neurons"]).read(), raw.voxel_size


@pytest.mark.skipif(not PER_ID_SAM_PATH.exists(), reason="per-id SAM not installed")
def test_per_id_sam_card_medulla_figure_is_reproduced(heldout):
    import torch

    from dendrosam.segment.sam import load_sam
    from dendrosam.segment.train_eval import ValSet, ellipse_floor, evaluate_prompted

    torch.set_num_threads(1)
    sam = load_sam("per-id", device="cpu")  # the shipped checkpoints load by name
    assert sam.arch.name == "tiny_zoom" and not sam.card["config"].get("pieces")
    card = sam.card["validation_full"]["medulla"]
    raw, labels, _ = heldout
    val = ValSet("medulla", raw, labels)
    got = evaluate_prompted(sam, val, min_area=20)
    assert got["n"] == card["n"] == 839
    assert got["iou_mean"] == pytest.approx(card["iou_mean"], abs=2e-3)
    assert ellipse_floor(val, 20) == pytest.approx(card["ellipse_floor"], abs=1e-9)
    assert card["iou_mean"] > card["ellipse_floor"] + 0.1


def test_shipped_detector_card_medulla_figure_is_reproduced(heldout):
    from dendrosam.segment.detector import in_plane_nm, load_detector
    from dendrosam.segment.train_detector import detector_scores

    det = load_detector(device="cpu")
    import json

    card = json.loads(DEFAULT_YOLO_PATH.with_name("dendrosam_yolo_default.card.json").read_text())
    want = card["validation"]["medulla_conf0.05"]
    raw, labels, voxel_size = heldout
    assert in_plane_nm(voxel_size) == 10.0
    got = detector_scores(det, list(zip(raw, labels)), conf=0.05, pixel_nm=10.0)
    assert got["n_gt"] == want["n_gt"] == 856
    assert abs(got["n_pred"] - want["n_pred"]) <= 5
    assert got["recall"] == pytest.approx(want["recall"], abs=0.01)
    # counted per 4-connected profile (one GT box per cross-section, the SAM's protocol), at conf 0.03
    want = card["validation"]["medulla_pieces_conf0.03"]
    got = detector_scores(det, list(zip(raw, labels)), conf=0.03, pixel_nm=10.0, pieces=True)
    assert got["n_gt"] == want["n_gt"] == 1155
    assert got["recall"] == pytest.approx(want["recall"], abs=0.01) and want["recall"] >= 0.7



@pytest.mark.skipif(not PER_ID_SAM_PATH.exists(), reason="per-id SAM not installed")
def test_default_sam_is_the_per_profile_fine_tune_and_its_card_figures_are_reproduced(heldout):
    """The default SAM's card: per-profile figure reproduced, per-id figure as the README states."""
    import torch

    from dendrosam.segment.sam import load_sam
    from dendrosam.segment.train_eval import ValSet, evaluate_prompted

    torch.set_num_threads(1)
    sam = load_sam(device="cpu")  # no path: the shipped default
    assert sam.card["config"]["pieces"] is True and sam.card["config"]["init"].endswith("dendrosam_sam_default.pt")
    card = sam.card["validation_full"]["medulla"]
    raw, labels, _ = heldout
    val = ValSet("medulla", raw, labels)
    got = evaluate_prompted(sam, val, min_area=20, pieces=True)
    assert got["n"] == card["n"] == 1113
    assert got["iou_mean"] == pytest.approx(card["iou_mean"], abs=2e-3)
    per_id = evaluate_prompted(sam, val, min_area=20)
    assert per_id["n"] == 839
    base = load_sam("per-id", device="cpu").card["validation_full"]["medulla"]["iou_mean"]
    assert per_id["iou_mean"] > base  # it is also better per id on this held-out crop than its per-id base
    # every held-out set (``--only sam-card``): the demo crop's entry is the figure just recomputed, and
    # per profile the target (0.80) holds on all five, with the ellipse floor about 0.6
    import json

    held = json.loads(DEFAULT_SAM_PATH.with_name(DEFAULT_SAM_PATH.stem + ".card.json").read_text())["validation_heldout"]
    assert held["medulla[0::4,:,125:]"]["pieces"]["iou_mean"] == pytest.approx(got["iou_mean"], abs=2e-3)
    assert held["medulla[0::4,:,125:]"]["per_id"]["iou_mean"] == pytest.approx(per_id["iou_mean"], abs=2e-3)
    sets = [f"medulla[{k}::4,:,125:]" for k in range(4)] + ["isbi[16:20]"]
    assert all(held[s]["pieces"]["iou_mean"] >= 0.80 for s in sets)
    assert all(0.59 <= held[s]["pieces"]["ellipse_floor"] <= 0.64 for s in sets)
