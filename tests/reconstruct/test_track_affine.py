"""Affine section alignment (``TrackConfig(align_model="affine")``): exact answers on a grid of
straight tubes whose middle section is rotated or compressed, which no translation undoes."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from scipy import ndimage

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.align import affine_from_objects, translation
from dendrosam.reconstruct.overlap import contingency, section_objects, shift_image, warp_image
from dendrosam.reconstruct.tracking import TrackConfig, track, track_blocks

from test_track_helpers import canonical, scramble

DEPTH, SIDE, MID = 8, 240, 4
AFFINE = TrackConfig(align_model="affine")


def grid_of_tubes() -> np.ndarray:
    """Straight tubes through every section that tile the plane like dense neurites: the
    Voronoi cells of seeds on a jittered 16 px grid, 1 px boundaries between them."""
    rng = np.random.default_rng(0)
    seeds = np.zeros((SIDE, SIDE), np.uint32)
    centres = [(cy, cx) for cy in range(8, SIDE, 16) for cx in range(8, SIDE, 16)]
    for k, (cy, cx) in enumerate(centres):
        jy, jx = rng.integers(-4, 5, size=2)
        seeds[cy + jy, cx + jx] = k + 1
    _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    section = seeds[iy, ix]
    edge = np.zeros(section.shape, bool)
    edge[1:] |= section[1:] != section[:-1]
    edge[:, 1:] |= section[:, 1:] != section[:, :-1]
    section[edge] = 0
    return np.repeat(section[None], DEPTH, axis=0)


def distorted(kind: str) -> np.ndarray:
    gt = grid_of_tubes()
    if kind == "rotate":  # 4 degrees about the centre
        gt[MID] = ndimage.rotate(gt[MID], 4.0, reshape=False, order=0, mode="constant")
    else:  # the section compressed by 6% along y about its centre (a cut section shrinks)
        matrix = np.array([[1 / 0.94, 0.0], [0.0, 1.0]])
        centre = np.array([SIDE / 2 - 0.5, SIDE / 2 - 0.5])
        gt[MID] = ndimage.affine_transform(gt[MID], matrix, offset=centre - matrix @ centre, order=0)
    # nearest-neighbour resampling chips off a few 1-2 px slivers: not part of any tube
    gt[MID] = cc3d.dust(gt[MID], threshold=5, connectivity=4)
    return gt


@pytest.mark.parametrize("kind", ["rotate", "compress"])
def test_affine_alignment_keeps_every_tube_whole(kind):
    gt = distorted(kind)
    n = int(gt.max())
    stack = scramble(gt, 3)
    # translations cannot undo it: tubes far from the centre link to the wrong profiles
    assert not np.array_equal(track(stack, (40, 10, 10)).labels, canonical(gt))
    result = track(stack, (40, 10, 10), AFFINE)
    assert result.n_objects == n
    np.testing.assert_array_equal(result.labels, canonical(gt))
    # the fitted transforms: section MID onto MID - 1, and MID + 1 back onto MID
    into, back = result.warps[MID], result.warps[MID + 1]
    if kind == "rotate":
        c, s = np.cos(np.radians(4)), np.sin(np.radians(4))
        np.testing.assert_allclose(np.abs(into[:, :2]), [[c, s], [s, c]], atol=0.01)
    else:
        np.testing.assert_allclose(into[:, :2], [[1 / 0.94, 0], [0, 1]], atol=0.01)
    composed = np.vstack([into, [0, 0, 1]]) @ np.vstack([back, [0, 0, 1]])
    np.testing.assert_allclose(composed[:2, :2], np.eye(2), atol=0.01)  # the gap pair composes
    np.testing.assert_array_equal(result.warps[[1, 2, 3, 6, 7]], np.repeat(translation(0, 0)[None], 5, axis=0))


def test_affine_blocks_equal_whole():
    stack = scramble(distorted("rotate"), 5)
    whole = track(stack, (40, 10, 10), AFFINE)
    for block_size in (1, 3, 5):
        blocks = track_blocks(stack, block_size, (40, 10, 10), AFFINE)
        np.testing.assert_array_equal(blocks.labels, whole.labels)
        np.testing.assert_array_equal(blocks.warps, whole.warps)


def test_translation_model_is_unchanged_on_aligned_tubes():
    gt = grid_of_tubes()
    result = track(scramble(gt, 1), (40, 10, 10), AFFINE)
    np.testing.assert_array_equal(result.labels, canonical(gt))
    np.testing.assert_array_equal(result.warps, np.repeat(translation(0, 0)[None], DEPTH, axis=0))


def test_affine_from_objects_needs_matches():
    a = section_objects(grid_of_tubes()[0])
    empty = section_objects(np.zeros((SIDE, SIDE), np.uint32))
    assert affine_from_objects(a, empty, contingency(a.dense, empty.dense)) is None
    five = grid_of_tubes()[0]
    five[five > 5] = 0  # fewer matched objects than AFFINE_MIN_PAIRS
    few = section_objects(five)
    assert affine_from_objects(a, few, contingency(a.dense, few.dense)) is None


def test_warp_image():
    img = np.arange(1, 37, dtype=np.uint32).reshape(6, 6)
    np.testing.assert_array_equal(warp_image(img, translation(2, -1)), shift_image(img, 2, -1))
    doubled = warp_image(img, np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    assert doubled[4, 2] == img[2, 1] and doubled[0, 0] == img[0, 0]


def test_align_model_is_validated():
    with pytest.raises(ConfigError, match="align_model must be one of translation, affine"):
        TrackConfig(align_model="elastic")


def test_track_cli_align_model(tmp_path, capsys):
    import json

    import tifffile
    import zarr

    from dendrosam.cli import main

    gt = distorted("rotate")
    path, out = tmp_path / "labels2d.tif", tmp_path / "run.zarr"
    tifffile.imwrite(path, scramble(gt, 2))
    assert main(["track", str(path), "--out", str(out), "--voxel-size", "40", "10", "10",
                 "--align-model", "affine"]) == 0
    assert "aligned: 0 section(s) shifted, 2 affine" in capsys.readouterr().out
    labels = zarr.open_array(str(out / "labels" / "tracks" / "0"), mode="r")[:]
    np.testing.assert_array_equal(labels, canonical(gt))
    warps = np.array(json.loads((out / "track_graph.json").read_text())["warps"])
    assert warps.shape == (DEPTH, 2, 3) and abs(warps[MID, 0, 1]) > 0.06
    with pytest.raises(SystemExit) as stop:
        main(["track", str(path), "--out", str(tmp_path / "o2.zarr"), "--align-model", "elastic"])
    assert stop.value.code == 2
    assert "invalid choice: 'elastic'" in capsys.readouterr().err


def _own_tube_first(tables, za: int, zb: int) -> bool:
    """Whether, in the pair table of sections (za, zb), every tube's largest overlap is itself."""
    table = next(t for t in tables if t.za == za and t.zb == zb)
    for ref in np.unique(table.ref_a):
        rows = np.flatnonzero(table.ref_a == ref)
        if table.ref_b[rows[np.argmax(table.count[rows])]] != ref:
            return False
    return True


def test_join_features_follow_the_affine_warps():
    from dendrosam.reconstruct.join_features import iter_pair_tables

    gt = distorted("rotate")
    stack = scramble(gt, 4)
    image = np.random.default_rng(0).normal(size=gt.shape)
    result = track(stack, (40, 10, 10), AFFINE)
    warped = list(iter_pair_tables(stack, image, (40, 10, 10), ref=gt, warps=result.warps))
    plain = list(iter_pair_tables(stack, image, (40, 10, 10), ref=gt, shifts=result.shifts))
    for za, zb in ((MID - 1, MID), (MID, MID + 1), (MID - 1, MID + 1)):
        assert _own_tube_first(warped, za, zb)
        assert not _own_tube_first(plain, za, zb) or za == MID - 1 and zb == MID + 1
    # pure translations as warps give the shifts' tables exactly
    shifts = np.array([[0, 0], [0, 0], [3, -2], [3, -2], [1, 4], [1, 4], [1, 4], [0, 0]])
    steps = np.stack([translation(*(shifts[z] - shifts[max(z - 1, 0)])) for z in range(DEPTH)])
    by_shift = list(iter_pair_tables(stack, image, (40, 10, 10), ref=gt, shifts=shifts))
    by_warp = list(iter_pair_tables(stack, image, (40, 10, 10), ref=gt, warps=steps))
    assert len(by_shift) == len(by_warp) == 13
    for x, y in zip(by_shift, by_warp):
        np.testing.assert_array_equal(x.features, y.features)
        np.testing.assert_array_equal(x.count, y.count)


def test_pipeline_records_warps_for_the_joins(tmp_path):
    import json

    from dendrosam.reconstruct.config import config_from_dict
    from dendrosam.reconstruct.pipeline import reconstruct_volume
    from test_pipeline import VOXEL, config, tubes

    img, _ = tubes(depth=12, size=48, radius=5)
    settings = config(sections_per_task=3).to_dict()
    settings["joins"]["model"] = "default"
    runs = {}
    for model in ("translation", "affine"):
        settings["track"]["align_model"] = model
        res = reconstruct_volume(img, tmp_path / model, config_from_dict(settings), VOXEL, progress=False)
        (record,) = (res.out / ".dendrosam" / "done" / "track").glob("*.json")
        runs[model] = (np.asarray(res.labels3d), json.loads(record.read_text()))
    assert "warps" not in runs["translation"][1]
    warps = np.array(runs["affine"][1]["warps"])
    # aligned tubes: every section's transform is the identity, and the joins agree with the default
    np.testing.assert_array_equal(warps, np.repeat(translation(0, 0)[None], 12, axis=0))
    np.testing.assert_array_equal(runs["affine"][0], runs["translation"][0])
    assert int(runs["affine"][0].max()) == 3


def test_track_cli_joins_get_the_warps(tmp_path, monkeypatch):
    import tifffile

    import dendrosam.reconstruct.joins as joins
    from dendrosam.cli import main

    seen = {}
    real = joins.learned_joins

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(joins, "learned_joins", spy)
    gt = distorted("rotate")
    labels, image = tmp_path / "labels2d.tif", tmp_path / "image.tif"
    tifffile.imwrite(labels, scramble(gt, 2))
    tifffile.imwrite(image, np.random.default_rng(1).integers(0, 255, gt.shape, dtype=np.uint8))
    for model, expect in (("translation", False), ("affine", True)):
        seen.clear()
        assert main(["track", str(labels), "--out", str(tmp_path / model), "--voxel-size", "40", "10", "10",
                     "--align-model", model, "--joins", "default", "--image", str(image)]) == 0
        assert (seen["warps"] is not None) == expect
        if expect:
            assert abs(seen["warps"][MID, 0, 1]) > 0.06
