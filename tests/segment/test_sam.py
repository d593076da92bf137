"""Checkpoint loading: every supported kind and every refusal."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from dendrosam.errors import CheckpointError
from dendrosam.segment.registry import build_sam, get_arch
from dendrosam.segment.sam import infer_arch, load_sam, save_sam_checkpoint


@pytest.fixture(scope="module")
def tiny_state():
    torch.set_num_threads(1)
    return build_sam("tiny", seed=3).state_dict()


def _same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_own_format_round_trip(tmp_path, tiny_state):
    model = build_sam("tiny", seed=3)
    path = save_sam_checkpoint(tmp_path / "m.pt", model, get_arch("tiny"), {"data": "synthetic"})
    sam = load_sam(path, device="cpu")
    assert sam.arch == get_arch("tiny")
    assert sam.card == {"data": "synthetic"}
    assert sam.extra["format"] == "dendrosam"
    assert _same(tiny_state, sam.model.state_dict())
    with pytest.raises(CheckpointError, match="holds a 'tiny' model"):
        load_sam(path, model_type="tiny_zoom", device="cpu")


def test_meta_state_dict_with_and_without_model_type(tmp_path, tiny_state):
    torch.save(tiny_state, tmp_path / "sam_tiny.pth")
    for mt in ("tiny", None):
        sam = load_sam(tmp_path / "sam_tiny.pth", model_type=mt, device="cpu")
        assert sam.arch.name == "tiny" and sam.card == {} and sam.extra["format"] == "meta"
        assert _same(tiny_state, sam.model.state_dict())


def test_micro_sam_export_with_prefix_and_decoder(tmp_path, tiny_state):
    state = {
        "model_state": {f"sam.{k}": v for k, v in tiny_state.items()},
        "decoder_state": {"encoder.weight": torch.ones(2)},
        "model_type": "tiny",
    }
    torch.save(state, tmp_path / "dendrite_sam.pt")
    sam = load_sam(tmp_path / "dendrite_sam.pt", device="cpu")
    assert sam.arch.name == "tiny" and sam.extra["format"] == "micro-sam"
    assert torch.equal(sam.extra["decoder_state"]["encoder.weight"], torch.ones(2))
    assert _same(tiny_state, sam.model.state_dict())


def test_vit_sizes_inferred_from_key_shapes():
    # Only the tensors the inference reads: patch embedding, position embedding, blocks, neck.
    for name in ("vit_b", "vit_l", "vit_h"):
        a = get_arch(name)
        g = a.img_size // a.patch_size
        state = {
            "image_encoder.patch_embed.proj.weight": torch.empty(a.embed_dim, 3, 16, 16),
            "image_encoder.pos_embed": torch.empty(1, g, g, a.embed_dim),
            "image_encoder.neck.0.weight": torch.empty(256, a.embed_dim, 1, 1),
        }
        for i in range(a.depth):
            span = g if i in a.global_attn_indexes else a.window_size
            state[f"image_encoder.blocks.{i}.attn.rel_pos_h"] = torch.empty(
                2 * span - 1, a.embed_dim // a.num_heads
            )
        assert infer_arch(state).name == name


def test_architecture_mismatch_names_both(tmp_path, tiny_state):
    torch.save(tiny_state, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"model_type 'tiny_zoom'.*a tiny model"):
        load_sam(tmp_path / "w.pth", model_type="tiny_zoom", device="cpu")


def test_missing_keys(tmp_path, tiny_state):
    state = {k: v for k, v in tiny_state.items() if not k.startswith("mask_decoder.iou_prediction")}
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="missing key"):
        load_sam(tmp_path / "w.pth", model_type="tiny", device="cpu")


class _Payload:
    def __reduce__(self):
        return (os.getpid, ())


@pytest.mark.parametrize(
    "content, message",
    [
        (b"definitely not a checkpoint", "not a readable torch checkpoint"),
        (None, "file not found"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_sam(path, device="cpu")


def test_malicious_pickle_is_refused(tmp_path):
    torch.save({"model_state": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused: the file contains Python objects"):
        load_sam(tmp_path / "evil.pt", device="cpu")


def test_not_a_sam_state_dict(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no SAM image encoder"):
        load_sam(tmp_path / "other.pt", device="cpu")


def test_yolo_file_passed_as_sam(tmp_path):
    from dendrosam.segment._ultralytics import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    torch.save({"model": model.model, "train_args": {}}, tmp_path / "yolo.pt")
    with pytest.raises(CheckpointError, match="ultralytics/YOLO detector file"):
        load_sam(tmp_path / "yolo.pt", device="cpu")


def test_no_default_model_installed(monkeypatch, tmp_path):
    import dendrosam.segment.sam as sam_mod

    monkeypatch.setattr(sam_mod, "DEFAULT_SAM_PATH", tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="no default SAM model is installed"):
        load_sam(device="cpu")


def test_loaded_model_predicts_deterministically(tmp_path, tiny_state):
    from dendrosam.segment.predict import predict_masks

    torch.save(tiny_state, tmp_path / "w.pth")
    a = load_sam(tmp_path / "w.pth", device="cpu")
    b = load_sam(tmp_path / "w.pth", device="cpu")
    img = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    box = np.array([[8, 8, 40, 40]])
    pa, pb = predict_masks(a, img, boxes=box), predict_masks(b, img, boxes=box)
    assert np.array_equal(pa.masks, pb.masks) and np.array_equal(pa.scores, pb.scores)
