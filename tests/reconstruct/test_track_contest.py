"""Contested links (``TrackConfig.contest_share``): exact answers on small stacks and on the bundled GT."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.reconstruct.overlap import contingency, section_objects
from dendrosam.reconstruct.track_links import KIND_CONTAINED, KIND_CONTESTED, KIND_MUTUAL, pair_links
from dendrosam.reconstruct.tracking import TrackConfig, track, track_blocks

from test_track_helpers import canonical, scramble, tubes


def _two_ends(rival_cols: int) -> np.ndarray:
    """A (4 x 8) and B (4 x 10) run through sections 0-1; in section 2 one object v (4 x 12)
    overlaps A by 24 px and B by ``4 * rival_cols`` px."""
    stack = np.zeros((3, 8, 32), np.uint16)
    stack[:2, 2:6, 2:10] = 1
    stack[:2, 2:6, 12:22] = 2
    stack[2, 2:6, 4:12 + rival_cols] = 5
    return stack


@pytest.mark.parametrize("contest_share, rival_cols, n_objects", [
    (1.0, 4, 2),  # default: v continues A (its larger overlap); B ends
    (0.5, 4, 3),  # B's 16 px are 2/3 of A's 24: contested, A, B and v stay apart
    (0.5, 2, 2),  # B's 8 px are 1/3 of A's: A's link stands
])
def test_two_chain_ends_competing_for_one_object(contest_share, rival_cols, n_objects):
    result = track(_two_ends(rival_cols), (40, 10, 10), TrackConfig(contest_share=contest_share))
    assert result.n_objects == n_objects
    joined = n_objects == 2
    assert bool(result.labels[2, 3, 5] == result.labels[1, 3, 5]) is joined  # v is A's continuation
    assert result.labels[1, 3, 15] != result.labels[2, 3, 15]  # B is never joined to v
    assert sum(d["dz"] == 1 and u[0] == 1 for u, _, d in result.graph.edges(data=True)) == int(joined)


def test_pair_links_marks_the_contested_pair_and_holds_the_rival():
    stack = _two_ends(4)
    stack[1, 2:6, 12:22] = 0
    stack[1, 2:6, 12:16] = 2  # B now lies inside v (16 of 16 px): a one-sided candidate
    a, b = section_objects(stack[1]), section_objects(stack[2])
    table = contingency(a.dense, b.dense)
    free = pair_links(a, b, 1, 2, table)
    assert sorted(free.kind.tolist()) == [KIND_MUTUAL, KIND_CONTAINED]
    held = pair_links(a, b, 1, 2, table, contest_share=0.5)
    assert held.kind.tolist() == [KIND_CONTESTED]  # the mutual pair, refused; B's one-sided link dropped
    assert held.overlap.tolist() == [24]


def test_a_branch_is_one_2d_object_per_neuron_for_contested_links():
    """A Y whose branches are separate 2D objects splits at the branch point; labelled one 2D
    object per neuron and section (the input the option is for) it stays one object."""
    stem = [(z, 24, 24, 6) for z in range(0, 5)]
    left = [(z, 24, 24 - 2 * (z - 4), 4) for z in range(5, 10)]
    right = [(z, 24, 24 + 2 * (z - 4), 4) for z in range(5, 10)]
    gt = tubes(10, (48, 48), [stem + left + right])
    config = TrackConfig(contest_share=0.5)
    assert track(scramble(gt), (40, 10, 10), config).n_objects == 3
    per_neuron = track(gt, (40, 10, 10), config)
    np.testing.assert_array_equal(per_neuron.labels, canonical(gt))


@pytest.mark.parametrize("block_size", [1, 2, 5])
def test_contested_blocks_equal_whole_volume(block_size):
    rng = np.random.default_rng(11)
    paths = []
    for _ in range(10):
        cy, cx = rng.uniform(8, 40, 2)
        vy, vx = rng.uniform(-2, 2, 2)
        z0 = int(rng.integers(0, 5))
        paths.append([(z, cy + vy * z, cx + vx * z, rng.uniform(3, 6)) for z in range(z0, 12)])
    stack = tubes(12, (48, 48), paths)
    config = TrackConfig(contest_share=0.5)
    whole = track(stack, (40, 10, 10), config)
    assert (whole.labels != canonical(stack)).any()  # the drifting tubes do contest some links
    blocks = track_blocks(stack, block_size, (40, 10, 10), config)
    np.testing.assert_array_equal(blocks.labels, whole.labels)
    assert blocks.n_objects == whole.n_objects


def test_bundled_ground_truth_figures():
    """Clean masks (the bundled held-out medulla crop's GT ids per section): far fewer merges."""
    import fastremap
    import tifffile

    from dendrosam.reconstruct import evaluate
    from dendrosam.reconstruct.datasets import demo_data

    gt = tifffile.imread(demo_data()["neurons"])
    per_section = np.stack([fastremap.renumber(s.astype(np.uint32), in_place=False)[0] for s in gt])
    figures = {}
    for name, config in (("default", TrackConfig()), ("contest", TrackConfig(contest_share=0.5)),
                         ("per-neuron", TrackConfig.per_neuron_masks())):
        labels = track(per_section, (40, 10, 10), config).labels
        m = evaluate(gt, labels, ignore_background=True).to_dict()
        figures[name] = (round(m["voi_split"], 3), round(m["voi_merge"], 3))
    assert figures == {"default": (0.090, 0.080), "contest": (0.167, 0.004), "per-neuron": (0.168, 0.004)}


def test_per_neuron_masks_settings_and_branch_starts():
    """A new object inside a parent's footprint (not contested: 60 px against the parent's own 130)
    joins the parent as a branch start by default; with per-neuron masks it is another neuron."""
    config = TrackConfig.per_neuron_masks(gap=2)
    assert (config.contest_share, config.start_share, config.branch_share, config.gap_empty_fraction,
            config.align_model, config.gap) == (0.5, 1.0, 1.0, 0.5, "affine", 2)
    assert TrackConfig.per_neuron_masks(contest_share=0.4).contest_share == 0.4
    stack = np.zeros((2, 12, 24), np.uint16)
    stack[0, 0:10, 0:20] = 1
    stack[1, 0:10, 0:13] = 4
    stack[1, 0:10, 14:20] = 9
    assert track(stack, (40, 10, 10)).n_objects == 1
    assert track(stack, (40, 10, 10), TrackConfig(contest_share=0.5)).n_objects == 1
    assert track(stack, (40, 10, 10), config).n_objects == 2


def test_cli_per_neuron_masks(tmp_path):
    import tifffile
    import zarr

    from dendrosam.cli import main

    path = tmp_path / "two_ends.tif"
    tifffile.imwrite(path, _two_ends(4), photometric="minisblack")
    for flags, n_objects in (([], 2), (["--per-neuron-masks"], 3), (["--per-neuron-masks", "--contest-share", "1"], 2)):
        out = tmp_path / f"run{len(flags)}.zarr"
        assert main(["track", str(path), "--out", str(out), "--voxel-size", "40", "10", "10", *flags]) == 0
        labels = np.asarray(zarr.open(str(out), mode="r")["labels/tracks/0"])
        assert int(labels.max()) == n_objects
