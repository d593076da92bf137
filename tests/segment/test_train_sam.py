"""SAM training: loss falls on a fixed batch, resume is exact, exports reload, LoRA merges exactly."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from dendrosam.errors import ConfigError
from dendrosam.segment.registry import build_sam
from dendrosam.segment.train_data import _rot_boxes, object_table, sample_batch, section_set
from dendrosam.segment.train_sam import DataSpec, TrainSamConfig, parse_region, train_sam, training_step


def _disks(n=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    raw = rng.normal(60, 8, (n, size, size)).astype(np.float32)
    lab = np.zeros((n, size, size), np.uint16)
    for z in range(n):
        for k, (cy, cx) in enumerate(rng.uniform(12, size - 12, (3, 2))):
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(5, 9) ** 2
            lab[z][disk], raw[z][disk] = k + 1, 180
    return np.clip(raw, 0, 255).astype(np.uint8), lab


def test_parse_region():
    assert parse_region("::4,:,125:") == (slice(None, None, 4), slice(None), slice(125, None))
    assert parse_region("3") == (slice(3, 4),) and parse_region("") is None
    with pytest.raises(ConfigError, match="not a slice"):
        parse_region("a:b")


def test_rot_boxes_follow_torch_rot90_and_flip():
    m = torch.zeros(1, 16, 16)
    m[0, 3:12, 2:7] = 1
    for k in range(4):
        for flip in (False, True):
            r = torch.rot90(m, k, dims=(1, 2))
            r = torch.flip(r, dims=(2,)) if flip else r
            ys, xs = np.nonzero(r[0].numpy())
            got = _rot_boxes(np.array([[2.0, 3.0, 7.0, 12.0]]), np.array([k]), np.array([flip]), 16)
            np.testing.assert_array_equal(got[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_batch_targets_match_their_boxes():
    raw, lab = _disks()
    ss = section_set(raw, lab)
    b = sample_batch(ss, object_table(ss), np.random.default_rng(1), 6, 64, 0.25, jitter=0.0)
    assert b.images.shape == (6, 3, 64, 64) and b.masks.shape == (6, 1, 64, 64)
    for m, box in zip(b.masks[:, 0].numpy() > 0, b.boxes.numpy()):
        ys, xs = np.nonzero(m)  # an un-jittered box hugs its object within a pixel
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box, atol=1.5)


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    raw, lab = _disks()
    ss = section_set(raw, lab)
    batch = sample_batch(ss, object_table(ss), np.random.default_rng(0), 4, 128, 0.25)
    model = build_sam("tiny_zoom", seed=0).train()
    cfg = TrainSamConfig(train_data=(), warmup=1, point_prob=0.0, correction=False)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    losses = []
    for _ in range(6):
        loss, _ = training_step(model, batch, np.random.default_rng(0), cfg, step=10)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]


@pytest.fixture()
def tiny_data(tmp_path):
    raw, lab = _disks(4)
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    tifffile.imwrite(tmp_path / "lab.tif", lab)
    return DataSpec(str(tmp_path / "raw.tif"), str(tmp_path / "lab.tif"), "0:3", "disks"), \
        DataSpec(str(tmp_path / "raw.tif"), str(tmp_path / "lab.tif"), "3:4", "disks")


def _cfg(tmp_path, data, name, steps, **kw):
    return TrainSamConfig(train_data=(data,), work_dir=str(tmp_path / name), steps=steps, batch_size=2,
                          warmup=2, val_every=100, checkpoint_every=2, threads=1, **kw)


def test_resume_continues_exactly(tmp_path, tiny_data):
    train, _ = tiny_data
    full = train_sam(_cfg(tmp_path, train, "full", 4), progress=False)
    train_sam(_cfg(tmp_path, train, "split", 2), progress=False)
    resumed = train_sam(_cfg(tmp_path, train, "split", 4), resume=True, progress=False)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4 and resumed.steps == 4
    for k, v in a["model_state"].items():
        torch.testing.assert_close(v, b["model_state"][k], rtol=0, atol=1e-6)
    la = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    lb = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert len(la) == len(lb) == 4
    assert [round(eval(x)["loss"], 5) for x in la] == [round(eval(x)["loss"], 5) for x in lb]
    assert full.checkpoint.exists()


def test_export_reloads_with_card_and_validation(tmp_path, tiny_data):
    from dendrosam.segment.sam import load_sam

    train, val = tiny_data
    cfg = _cfg(tmp_path, train, "val", 2, val_data=(val,), train="lora", lora_rank=2)
    res = train_sam(cfg, progress=False)
    sam = load_sam(res.checkpoint, device="cpu")
    assert sam.arch.name == "tiny_zoom"
    assert sam.card["training"]["steps"] == 2 and sam.card["config"]["train"] == "lora"
    v = res.val["disks"]
    assert v["n"] == 3 and 0.0 <= v["iou_mean"] <= 1.0 and 0.5 < v["ellipse_floor"] < 0.95


def test_lora_merge_is_exact():
    from dendrosam.segment.lora import add_lora, merge_lora

    model = build_sam("tiny_zoom", seed=0).eval()
    assert add_lora(model, rank=2) == 4
    with torch.no_grad():
        for blk in model.image_encoder.blocks:
            blk.attn.qkv.lora_b.normal_()
        x = torch.rand(1, 3, 128, 128) * 255
        before = model.image_encoder(model.preprocess(x))
        merge_lora(model)
        after = model.image_encoder(model.preprocess(x))
    assert isinstance(model.image_encoder.blocks[0].attn.qkv, torch.nn.Linear)
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-4)


def test_bad_train_choice_is_a_config_error(tmp_path, tiny_data):
    with pytest.raises(ConfigError, match="--train"):
        train_sam(_cfg(tmp_path, tiny_data[0], "bad", 1, train="everything"), progress=False)


def test_training_state_with_numpy_scalars_reloads_weights_only(tmp_path):
    """Validation means and schedulers produce numpy scalars; the state must still load safely."""
    import numpy as np
    import torch

    from dendrosam.segment.train_log import load_state, save_state

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt.param_groups[0]["lr"] = np.float64(5e-4)  # as a numpy-computed schedule sets it
    rng = np.random.default_rng(0)
    save_state(tmp_path / "s.pt", model, opt, rng, step=3, best=np.float64(0.61), bad=np.int64(1))
    st = load_state(tmp_path / "s.pt", torch.nn.Linear(2, 1), torch.optim.AdamW(model.parameters()), rng)
    assert st["best"] == 0.61 and type(st["best"]) is float and st["bad"] == 1
    assert st["optimizer_state"]["param_groups"][0]["lr"] == 5e-4


def test_pieces_train_and_validate_per_profile(tmp_path):
    """With pieces=True a label crossing a section twice is two objects, in training and validation."""
    raw, lab = _disks(4)
    lab[lab == 2] = 1  # id 1 now has two separate profiles in every section
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    tifffile.imwrite(tmp_path / "lab.tif", lab)
    train = DataSpec(str(tmp_path / "raw.tif"), str(tmp_path / "lab.tif"), "0:3", "disks")
    val = DataSpec(str(tmp_path / "raw.tif"), str(tmp_path / "lab.tif"), "3:4", "disks")
    per_id = train_sam(_cfg(tmp_path, train, "ids", 1, val_data=(val,)), progress=False)
    per_piece = train_sam(_cfg(tmp_path, train, "pieces", 1, val_data=(val,), pieces=True), progress=False)
    assert per_id.val["disks"]["n"] == 2 and per_piece.val["disks"]["n"] == 3
    assert per_piece.val["disks"]["ellipse_floor"] > per_id.val["disks"]["ellipse_floor"]
