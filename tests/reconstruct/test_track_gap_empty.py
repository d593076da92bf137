"""Bridges over missing objects: only over empty places (``TrackConfig.gap_empty_fraction``), and
not stolen by a touch (a weak mutual overlap, ``mutual_min_score``). Exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.tracking import TrackConfig, track, track_blocks

from test_track_helpers import canonical, scramble, tubes


def _ended_in_between(hole: tuple[int, int]) -> np.ndarray:
    """A (10 x 10 at x 10:20) in section 0 and B in the same place in section 2; in section 1 two
    neighbours' continuations, E1 (x 3:hole[0]) and E2 (x hole[1]:27), cover A's place except
    ``x hole[0]:hole[1]``. Each takes less than half of A, and each overlaps its own neighbour
    (P at x 0:10, Q at x 20:30, sections 0-2) more than A: A and B have no partner in section 1."""
    stack = np.zeros((3, 30, 40), np.uint16)
    stack[0, 10:20, 0:10] = 1  # P
    stack[0, 10:20, 10:20] = 2  # A
    stack[0, 10:20, 20:30] = 3  # Q
    stack[1, 10:20, 3:hole[0]] = 7  # E1
    stack[1, 10:20, hole[1]:27] = 8  # E2
    stack[2, 10:20, 0:10] = 4  # P''
    stack[2, 10:20, 10:20] = 5  # B
    stack[2, 10:20, 20:30] = 6  # Q''
    return stack


@pytest.mark.parametrize("hole, fraction, n_objects", [
    ((14, 16), 0.0, 3),  # default: the gap link A - B (IoU 1) stands
    ((14, 16), 0.5, 4),  # A's place is 80% covered in section 1: A ended there, B is another object
    ((11, 19), 0.5, 3),  # 80% empty: a failed object, bridged
    ((11, 19), 0.9, 4),
])
def test_bridge_needs_an_empty_place(hole, fraction, n_objects):
    stack = _ended_in_between(hole)
    config = TrackConfig(align=False, gap_empty_fraction=fraction)
    result = track(stack, (40, 10, 10), config)
    assert result.n_objects == n_objects
    assert bool(result.labels[0, 15, 15] == result.labels[2, 15, 15]) is (n_objects == 3)
    assert result.labels[0, 15, 5] == result.labels[2, 15, 5] != result.labels[0, 15, 25]
    for block_size in (1, 2):
        blocks = track_blocks(stack, block_size, (40, 10, 10), config)
        np.testing.assert_array_equal(blocks.labels, result.labels)


def test_missing_section_is_bridged_with_the_rule_and_the_preset():
    gt = tubes(9, (48, 48), [[(z, 20, 20, 5) for z in range(9)], [(z, 30, 36, 4) for z in range(9)]])
    gt[4] = 0
    for config in (TrackConfig(gap_empty_fraction=1.0), TrackConfig.per_neuron_masks()):
        np.testing.assert_array_equal(track(scramble(gt), (40, 10, 10), config).labels, canonical(gt))


@pytest.mark.parametrize("value", [-0.1, 1.5, "half"])
def test_gap_empty_fraction_is_checked(value):
    with pytest.raises(ConfigError, match="gap_empty_fraction"):
        TrackConfig(gap_empty_fraction=value)


def test_cli_gap_empty_fraction(tmp_path, capsys):
    import tifffile
    import zarr

    from dendrosam.cli import main

    path = tmp_path / "ended.tif"
    tifffile.imwrite(path, _ended_in_between((14, 16)), photometric="minisblack")
    # the preset's contest rule alone splits all (A takes 40 px of E1 against P's 70), so it is lifted
    preset = ["--per-neuron-masks", "--contest-share", "1"]
    for k, (flags, n_objects) in enumerate((([], 3), (["--gap-empty-fraction", "0.5"], 4), (preset, 4),
                                            (preset + ["--gap-empty-fraction", "0"], 3), (preset[:1], 8))):
        out = tmp_path / f"run{k}.zarr"
        assert main(["track", str(path), "--out", str(out), "--voxel-size", "40", "10", "10", "--no-align",
                     *flags]) == 0
        assert int(np.asarray(zarr.open(str(out), mode="r")["labels/tracks/0"]).max()) == n_objects
    assert main(["track", str(path), "--out", str(tmp_path / "bad.zarr"), "--gap-empty-fraction", "2"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gap_empty_fraction" in err[0]
    assert not (tmp_path / "bad.zarr").exists()


@pytest.mark.parametrize("kind", ["rotate", "compress"])
def test_per_neuron_masks_preset_aligns_affinely(kind):
    """The preset includes the affine alignment: a grid of dense tubes with one rotated or
    compressed section comes out as the GT tubes, which the preset with translations does not."""
    from test_track_affine import distorted

    gt = distorted(kind)
    stack = scramble(gt, 3)
    preset = track(stack, (40, 10, 10), TrackConfig.per_neuron_masks())
    np.testing.assert_array_equal(preset.labels, canonical(gt))
    shifts_only = track(stack, (40, 10, 10), TrackConfig.per_neuron_masks(align_model="translation"))
    assert shifts_only.n_objects > preset.n_objects


def _orphan_touch() -> np.ndarray:
    """A (10 x 10) in sections 0 and 2, dropped from section 1; there B begins (sections 1-2),
    touching A's place along one column (IoU 10 / 190, 10% of either)."""
    stack = np.zeros((3, 30, 40), np.uint16)
    stack[0, 10:20, 10:20] = 1
    stack[2, 10:20, 10:20] = 2
    stack[1:, 10:20, 19:29] = 3
    return stack


@pytest.mark.parametrize("config", [TrackConfig(align=False), TrackConfig.per_neuron_masks(align=False)])
def test_a_touch_is_no_link_and_the_freed_end_is_bridged(config):
    stack = _orphan_touch()
    result = track(stack, (40, 10, 10), config)
    np.testing.assert_array_equal(result.labels, canonical(stack.astype(bool) * (1 + (stack == 3))))
    gap = result.nodes["z"][result.edges["dst"]] - result.nodes["z"][result.edges["src"]] == 2
    assert gap.sum() == 1 and result.edges["score"][gap].tolist() == [0.9]  # A's 90 px uncovered by B


@pytest.mark.parametrize("config", [TrackConfig(align=False), TrackConfig.per_neuron_masks(align=False)])
def test_a_weak_overlap_inside_the_other_object_is_still_a_link(config):
    """IoU 9 / 100, below ``mutual_min_score``, but the small object lies wholly inside the other."""
    stack = np.zeros((2, 30, 40), np.uint16)
    stack[0, 10:20, 10:20] = 1
    stack[1, 14:17, 14:17] = 3
    assert track(stack, (40, 10, 10), config).n_objects == 1
