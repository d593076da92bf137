"""Prompted inference (classic, tiled, zoom), masks -> labels, prompts from GT, tiling geometry."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.segment.masks import masks_to_labels
from dendrosam.segment.predict import predict_masks
from dendrosam.segment.zoom import zoom_windows
from dendrosam.segment.preprocess import normalize_section
from dendrosam.segment.prompts import prompts_from_gt
from dendrosam.segment.tiling import route_prompts, tile_starts, tile_windows


def test_tile_starts_cover_with_overlap():
    s = tile_starts(1000, 512, 64)
    assert s.tolist() == [0, 384, 488]
    assert s[-1] + 512 == 1000 and np.all(np.diff(s) <= 512 - 128)
    assert tile_starts(200, 512, 64).tolist() == [0]


def test_route_prompts_picks_tile_containing_box_with_halo():
    grid = tile_windows((512, 512), 256, 32, 256)  # starts 0, 192, 256 per axis
    boxes = np.array([[10, 10, 40, 40], [240, 240, 270, 270], [0, 0, 500, 20]], float)
    windows, assign = route_prompts(boxes, grid, (512, 512), 32, 256)
    w0, w1, w2 = (windows[i] for i in assign)
    assert (w0.x0, w0.y0) == (0, 0)
    assert w1.x0 <= 240 - 32 and w1.x1 >= 270 + 32  # the tile centred on the border
    assert len(windows) == len(grid) + 1 and (w2.x1 - w2.x0) >= 500  # oversized: own window
    assert w2.long_side == 256


def test_prompts_from_gt_boxes_and_points_exact():
    gt = np.zeros((10, 12), np.uint32)
    gt[2:5, 3:9] = 4  # 3 x 6 rectangle
    gt[7:10, 0:3] = 9  # 3 x 3 square at the border
    p = prompts_from_gt(gt, "boxes")
    assert p.ids.tolist() == [4, 9]
    assert p.boxes.tolist() == [[3, 2, 9, 5], [0, 7, 3, 10]]
    q = prompts_from_gt(gt, "points")
    # interior maxima: first of the tied pixels in raster order; centre of the square
    assert q.points[:, 0].tolist() == [[4, 3], [1, 8]]  # cols 4..7 of row 3 tie at distance 2
    assert (gt[q.points[:, 0, 1].astype(int), q.points[:, 0, 0].astype(int)] == [4, 9]).all()
    n = prompts_from_gt(gt, "points", n_points=2, negative=True)
    assert n.points.shape == (2, 3, 2) and n.point_labels.tolist() == [[1, 1, 0], [1, 1, 0]]
    neg = n.points[:, 2].astype(int)
    assert (gt[neg[:, 1], neg[:, 0]] != [4, 9]).all()
    assert len(prompts_from_gt(np.zeros((4, 4), np.uint8))) == 0


def test_masks_to_labels_overlap_size_and_pieces():
    m = np.zeros((3, 8, 8), bool)
    m[0, 0:4, 0:4] = True  # low score, overlapped by mask 1
    m[1, 2:6, 2:6] = True  # high score
    m[2, 7, 7] = True  # 1 pixel: dropped by min_size
    labels = masks_to_labels(m, np.array([0.1, 0.9, 0.5]), min_size=2)
    assert labels.dtype == np.uint32
    assert (labels == 2).sum() == 16 and (labels == 1).sum() == 16 - 4 and (labels == 3).sum() == 0
    # a mask cut in two by a better one keeps only its largest piece
    c = np.zeros((2, 5, 9), bool)
    c[0, 2, :] = True
    c[1, :, 2] = True
    lab = masks_to_labels(c, np.array([0.1, 0.9]))
    assert (lab == 1).sum() == 6 and lab[2, :2].tolist() == [0, 0]
    ring = np.zeros((1, 7, 7), bool)
    ring[0, 1:6, 1:6] = True
    ring[0, 3, 3] = False
    assert (masks_to_labels(ring, fill_holes=True) == 1).sum() == 25


def test_masks_to_labels_smaller_mask_wins():
    """A leaky, highly scored mask over two tight ones: 'smaller' gives the tight ones their profiles."""
    m = np.zeros((3, 10, 12), bool)
    m[0, 1:9, 1:11] = True  # leaky: 80 px, the best score
    m[1, 2:5, 2:5] = True  # 9 px
    m[2, 5:8, 7:10] = True  # 9 px
    scores = np.array([0.9, 0.5, 0.6])
    by_score = masks_to_labels(m, scores)
    assert (by_score == 1).sum() == 80 and not np.isin([2, 3], by_score).any()
    smaller = masks_to_labels(m, scores, overlap="smaller")
    assert [(smaller == k).sum() for k in (1, 2, 3)] == [80 - 18, 9, 9]
    assert (smaller[m[1]] == 2).all() and (smaller[m[2]] == 3).all()
    # equal sizes fall back to the score
    eq = np.zeros((2, 4, 6), bool)
    eq[0, :, 0:4] = True
    eq[1, :, 2:6] = True
    assert masks_to_labels(eq, np.array([0.2, 0.7]), overlap="smaller")[0].tolist() == [1, 1, 2, 2, 2, 2]
    assert masks_to_labels(eq, np.array([0.7, 0.2]), overlap="smaller")[0].tolist() == [1, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="overlap must be one of"):
        masks_to_labels(eq, overlap="largest")


def test_classic_path_one_mask_per_gt_object(tiny_sam, blobs):
    img, gt = blobs
    p = prompts_from_gt(gt[0], "boxes")
    pm = predict_masks(tiny_sam, img[0], boxes=p.boxes, batch_size=2)
    assert len(pm) == len(p.ids) == 3
    assert pm.masks.shape == (3, 96, 128) and pm.scores.shape == (3,)
    for k in range(3):  # crops are exactly the masks' bounding boxes
        mask = pm.mask(k)
        if mask.any():
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            assert pm.bboxes[k].tolist() == [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
    batched = predict_masks(tiny_sam, img[0], boxes=p.boxes, batch_size=64)
    assert np.array_equal(batched.masks, pm.masks)


def test_tiling_matches_untiled(tiny_sam, rng):
    img = rng.integers(0, 256, (200, 240)).astype(np.uint8)
    boxes = np.array([[10, 12, 60, 50], [150, 120, 230, 190], [90, 20, 130, 180]], float)
    untiled = predict_masks(tiny_sam, img, boxes=boxes)
    # A tile at least as large as the section is the untiled path, bit for bit.
    one_tile = predict_masks(tiny_sam, img, boxes=boxes, tile_size=240, halo=16)
    assert np.array_equal(untiled.masks, one_tile.masks)
    assert np.array_equal(untiled.scores, one_tile.scores)
    # Real tiles: each mask equals untiled inference on its tile, pasted at the tile origin.
    tiled = predict_masks(tiny_sam, img, boxes=boxes, tile_size=128, halo=8)
    norm = normalize_section(img)
    grid = tile_windows(img.shape, 128, 8, 256)
    windows, assign = route_prompts(boxes, grid, img.shape, 8, 256)
    for k, w in enumerate(windows[i] for i in assign):
        local = boxes[k] - [w.x0, w.y0, w.x0, w.y0]
        # tiles are cut from the section normalised as a whole
        ref = predict_masks(tiny_sam, norm[w.y0:w.y1, w.x0:w.x1], boxes=local[None],
                            tile_size=max(w.shape), normalize=False)
        assert ref.shape == w.shape
        full = np.zeros(img.shape, bool)
        full[w.y0:w.y1, w.x0:w.x1] = ref.mask(0)
        assert np.array_equal(full, tiled.mask(k))


def test_zoom_path_windows_and_points(zoom_sam, blobs):
    assert zoom_windows(np.array([[10., 20., 30., 30.]]), 0.25).tolist() == [[5, 10, 35, 40]]
    img, gt = blobs
    p = prompts_from_gt(gt[1], "boxes")
    pm = predict_masks(zoom_sam, img[1], boxes=p.boxes, batch_size=2)
    wins = zoom_windows(p.boxes, zoom_sam.arch.zoom_margin)
    assert len(pm) == 3
    for k in range(3):  # masks stay inside their zoom window
        y0, x0, y1, x1 = pm.bboxes[k]
        if y1 > y0:
            assert x0 >= np.floor(wins[k, 0]) and x1 <= np.ceil(wins[k, 2])
    one = predict_masks(zoom_sam, img[1], boxes=p.boxes, batch_size=64)
    np.testing.assert_allclose(one.scores, pm.scores, atol=1e-5)
    q = prompts_from_gt(gt[1], "points", negative=True)
    assert len(predict_masks(zoom_sam, img[1], points=q.points, point_labels=q.point_labels)) == 3


def test_no_prompts_gives_empty_result(tiny_sam):
    pm = predict_masks(tiny_sam, np.zeros((32, 32), np.uint8), boxes=np.zeros((0, 4)))
    assert len(pm) == 0 and pm.masks.shape == (0, 32, 32)
    assert masks_to_labels(pm).sum() == 0


def test_bad_prompts_raise(tiny_sam):
    from dendrosam.errors import InputError

    with pytest.raises(InputError, match="x1 >= x0"):
        predict_masks(tiny_sam, np.zeros((32, 32)), boxes=np.array([[10, 0, 5, 5]]))
    with pytest.raises(InputError, match="2D section"):
        predict_masks(tiny_sam, np.zeros((2, 32, 32)), boxes=np.array([[0, 0, 5, 5]]))


def test_zoom_inference_crops_equal_training_crops(zoom_sam, blobs, monkeypatch):
    """The encoder input and box prompt of inference are the training sampler's, bit for bit."""
    import torch

    from dendrosam.segment.train_data import object_table, sample_batch, section_set

    img, gt = blobs
    gt = gt.copy()
    gt[1, 0:10, 120:128] = 77  # an object at the corner: its window reaches outside the section
    sections = section_set(img[1:2], gt[1:2])
    table = object_table(sections, min_area=1)
    assert len(table) == 4
    model, arch = zoom_sam.model, zoom_sam.arch
    seen: dict = {"x": [], "boxes": []}
    preprocess, prompt_forward = model.preprocess, model.prompt_encoder.forward

    def spy_pre(x):
        seen["x"].append(x.clone())
        return preprocess(x)

    def spy_prompt(points, boxes, masks):
        seen["boxes"].append(boxes.clone())
        return prompt_forward(points, boxes, masks)

    monkeypatch.setattr(model, "preprocess", spy_pre)
    monkeypatch.setattr(model.prompt_encoder, "forward", spy_prompt)
    predict_masks(zoom_sam, img[1], boxes=table.boxes, batch_size=64)
    x_inf, b_inf = seen["x"][0], seen["boxes"][0]
    assert x_inf.shape == (4, 3, arch.img_size, arch.img_size)
    for r in range(len(table)):
        weights = np.eye(len(table))[r]
        batch = sample_batch(sections, table, np.random.default_rng(r), 1, arch.img_size,
                             float(arch.zoom_margin), jitter=0.0, augment=False, weights=weights)
        assert torch.equal(batch.images[0], x_inf[r])
        assert torch.equal(batch.boxes[0], b_inf[r])
    assert float(x_inf[3, 0, 0, -1]) == 0.0  # outside the section: zero padding, as in training


def test_precision_choice(tiny_sam, blobs):
    import torch

    from dendrosam.errors import ConfigError
    from dendrosam.segment.device import autocast_dtype

    assert autocast_dtype("cpu") is None and autocast_dtype("cpu", "bfloat16") is torch.bfloat16
    assert autocast_dtype("cuda:0", "float32") is None
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        autocast_dtype("cpu", "float16")
    with pytest.raises(ConfigError, match="not one of"):
        autocast_dtype("cpu", "double")
    img, gt = blobs
    p = prompts_from_gt(gt[0], "boxes")
    f32 = predict_masks(tiny_sam, img[0], boxes=p.boxes).masks
    bf16 = predict_masks(tiny_sam, img[0], boxes=p.boxes, precision="bfloat16").masks
    inter, union = (f32 & bf16).sum((1, 2)), (f32 | bf16).sum((1, 2))
    assert union.min() > 0 and (inter / union).min() > 0.9


def test_classic_input_keeps_the_aspect_ratio(tiny_sam, monkeypatch):
    """The encoder sees the section resized with its aspect kept, like SamPredictor.set_image."""
    from segment_anything.utils.transforms import ResizeLongestSide

    img = np.tile(np.linspace(0, 255, 128), (96, 1)).astype(np.uint8)  # a left-right ramp
    seen = []
    preprocess = tiny_sam.model.preprocess
    monkeypatch.setattr(tiny_sam.model, "preprocess", lambda x: seen.append(x) or preprocess(x))
    predict_masks(tiny_sam, img, boxes=np.array([[10.0, 10.0, 60.0, 50.0]]), normalize=False)
    x = seen[0]
    assert tuple(x.shape) == (1, 3, 192, 256)  # 96 x 128 scaled by 2
    ref = ResizeLongestSide(256).apply_image(np.stack([img] * 3, -1))  # the reference (PIL)
    assert ref.shape == (192, 256, 3)
    assert np.abs(x[0, 0].numpy() - ref[..., 0]).max() <= 2.0  # rounding of PIL's uint8 output
