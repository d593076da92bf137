"""A shift across a missing section (``align.climb_shift``, ``align.match_score``): exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.reconstruct.align import climb_shift, match_score
from dendrosam.reconstruct.overlap import contingency, section_objects, shift_image
from dendrosam.reconstruct.track_scan import _translate_pair
from dendrosam.reconstruct.tracking import TrackConfig, track, track_blocks

from test_track_helpers import canonical, scramble, tubes

SHIFT = (0, -14)


def _bands_and_drifting_tubes(seed: int) -> np.ndarray:
    """Two full-width bands (93% of the foreground: they overlap themselves at any x shift)
    around 24 thin tubes that wander 1.75 px per section; section 3 is missing and sections 4-6
    are shifted by 14 px."""
    rng = np.random.default_rng(seed)
    depth = 7
    paths = []
    for k in range(24):
        cy, cx = 52 + 8 * (k % 4), 34 + 24 * (k // 4)
        steps = rng.uniform(-1.75, 1.75, (depth, 2))
        steps[0] = 0
        pos = np.cumsum(steps, axis=0)
        paths.append([(z, cy + 0.3 * pos[z, 0], cx + pos[z, 1], 4.0) for z in range(depth)])
    gt = tubes(depth, (128, 192), paths)
    gt[:, 0:40] = gt.max() + 1
    gt[:, 88:128] = gt.max() + 1
    gt[3] = 0
    gt[4:] = np.stack([shift_image(s, *SHIFT) for s in gt[4:]])
    return gt


def test_match_score_exact():
    a = np.zeros((20, 40), np.uint16)
    b = np.zeros((20, 40), np.uint16)
    a[5:15, 5:15] = 1
    b[5:15, 10:20] = 1  # IoU 50 / 150
    b[5:15, 30:35] = 2  # no partner
    sa, sb = section_objects(a), section_objects(b)
    table = contingency(sa.dense, sb.dense)
    assert match_score(sa.size, sb.size, table) == pytest.approx(1 / 3)  # a: 1/3; b: (1/3 + 0) / 2
    assert match_score(sa.size, sb.size, (np.zeros(0, int), np.zeros(0, int), np.zeros(0, int))) == 0.0


def test_climb_shift_finds_the_translation_of_a_dense_tiling():
    from test_track_affine import grid_of_tubes

    section = grid_of_tubes()[0]
    a = section_objects(section)
    b = section_objects(shift_image(section, -13, 9))
    shift, score, table = climb_shift(a, b, (9, -5))  # a start 4 px off, as a correlation peak gives
    assert shift == (13, -9)
    assert score > 0.9  # only the cells cut by the field's edge are not whole
    np.testing.assert_array_equal(np.concatenate(table), np.concatenate(contingency(a.dense, shift_image(b.dense, 13, -9))))


@pytest.mark.parametrize("seed", [0, 3, 6])
def test_shift_across_a_missing_section_where_overlaps_cannot_choose(seed):
    gt = _bands_and_drifting_tubes(seed)
    stack = scramble(gt, seed)
    config = TrackConfig(align_trigger=0.95)  # the bands nest whatever the shift: always look
    # the overlap consistency alone gains too little from the right shift (the bands dominate it)
    a, b = section_objects(stack[2]), section_objects(stack[4])
    assert _translate_pair(a, b, config)[0] == (0, 0)
    result = track(stack, (40, 10, 10), config)
    np.testing.assert_array_equal(result.labels, canonical(gt))
    gap = result.nodes["z"][result.edges["dst"]] - result.nodes["z"][result.edges["src"]] == 2
    assert gap.sum() == 26  # every tube and both bands bridged, by one shift
    # the tubes wander, so the best match may sit a pixel off the stage shift
    (shift,) = set(zip(result.edges["dy"][gap].tolist(), result.edges["dx"][gap].tolist()))
    assert shift[0] == 0 and abs(shift[1] + SHIFT[1]) <= 1
    for block_size in (2, 4):
        np.testing.assert_array_equal(track_blocks(stack, block_size, (40, 10, 10), config).labels, result.labels)
