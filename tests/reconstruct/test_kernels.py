"""The compiled pixel kernels against plain numpy on random and edge-case images."""

from __future__ import annotations

import numpy as np
import pytest

from dendrosam.reconstruct.kernels import best_rows, pair_counts, relabel, tabulate
from dendrosam.reconstruct.overlap import _tables_numpy, dense_labels, relabel_section, section_objects


def blobs(rng: np.random.Generator, shape=(37, 53), n=25, dtype=np.uint32) -> np.ndarray:
    """Random label image with runs: coarse random ids upsampled, some background."""
    small = rng.integers(0, n, (shape[0] // 3 + 1, shape[1] // 4 + 1))
    img = np.kron(small, np.ones((3, 4), np.int64))[: shape[0], : shape[1]]
    img[rng.random(shape) < 0.05] = rng.integers(0, n, int((rng.random(shape) < 0.05).sum()) or 1)[0]
    return (img * 13).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64])
def test_tabulate_equals_renumber_plus_numpy_tables(dtype):
    rng = np.random.default_rng(11)
    img = blobs(rng, dtype=dtype)
    dense, ids, size, centroid, bbox = tabulate(img, int(img.max()))
    ref_dense, ref_ids = dense_labels(img)
    np.testing.assert_array_equal(dense, ref_dense)
    np.testing.assert_array_equal(ids, ref_ids)
    ref_size, ref_centroid, ref_bbox = _tables_numpy(ref_dense, ref_ids.size)
    np.testing.assert_array_equal(size, ref_size)
    np.testing.assert_allclose(centroid, ref_centroid, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(bbox, ref_bbox)


def test_tabulate_exact_small_case_and_empty():
    img = np.array([[0, 5, 5, 0], [2, 5, 5, 5], [2, 2, 0, 5]], np.uint16)
    dense, ids, size, centroid, bbox = tabulate(img, 5)
    np.testing.assert_array_equal(ids, [5, 2])
    np.testing.assert_array_equal(dense, [[0, 1, 1, 0], [2, 1, 1, 1], [2, 2, 0, 1]])
    np.testing.assert_array_equal(size, [6, 3])
    np.testing.assert_allclose(centroid, [[5 / 6, 2.0], [5 / 3, 1 / 3]])
    np.testing.assert_array_equal(bbox, [[0, 1, 3, 4], [1, 0, 3, 2]])
    d, i, s, c, b = tabulate(np.zeros((4, 4), np.uint8), 0)
    assert not d.any() and i.size == 0 and s.size == 0 and c.shape == (0, 2) and b.shape == (0, 4)


def test_section_objects_huge_ids_take_the_hash_path_with_the_same_answer():
    rng = np.random.default_rng(2)
    img = blobs(rng).astype(np.uint64)
    big = img.copy()
    big[big > 0] += np.uint64(2**40)  # beyond any lookup table
    small_objs, big_objs = section_objects(img), section_objects(big)
    np.testing.assert_array_equal(big_objs.dense, small_objs.dense)
    np.testing.assert_array_equal(big_objs.ids, small_objs.ids + 2**40)
    np.testing.assert_array_equal(big_objs.size, small_objs.size)
    np.testing.assert_allclose(big_objs.centroid, small_objs.centroid, atol=1e-9)
    np.testing.assert_array_equal(big_objs.bbox, small_objs.bbox)


def test_pair_counts_equal_unique_of_pairs():
    rng = np.random.default_rng(4)
    a = section_objects(blobs(rng, n=30)).dense
    b = section_objects(np.roll(blobs(rng, n=20), 3, axis=1)).dense
    ia, ib, count = pair_counts(a, b, int(a.max()), int(b.max()))
    fg = (a > 0) & (b > 0)
    pairs, expected = np.unique(np.c_[a[fg], b[fg]], axis=0, return_counts=True)
    np.testing.assert_array_equal(np.c_[ia + 1, ib + 1], pairs)
    np.testing.assert_array_equal(count, expected)
    assert count.sum() == fg.sum()


def test_relabel_and_relabel_section_both_paths():
    img = np.array([[0, 7, 7], [9, 9, 0]], np.uint16)
    np.testing.assert_array_equal(relabel(img, np.arange(10, dtype=np.uint32) * 2),
                                  [[0, 14, 14], [18, 18, 0]])
    ids, labels = np.array([9, 7]), np.array([1, 2], np.uint32)
    np.testing.assert_array_equal(relabel_section(img, ids, labels), [[0, 2, 2], [1, 1, 0]])
    huge = img.astype(np.uint64) * np.uint64(2**40)
    np.testing.assert_array_equal(relabel_section(huge, ids * 2**40, labels), [[0, 2, 2], [1, 1, 0]])
    # an id missing from the table becomes background on both paths
    np.testing.assert_array_equal(relabel_section(img, ids[:1], labels[:1]), [[0, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(relabel_section(huge, ids[:1] * 2**40, labels[:1]),
                                  [[0, 0, 0], [1, 1, 0]])


def test_best_rows_matches_sort_with_ties_to_lowest_other():
    rng = np.random.default_rng(8)
    owner = rng.integers(0, 15, 200)
    count = rng.integers(1, 6, 200)  # many ties
    other = rng.permutation(200)
    order = np.lexsort((other, -count, owner))
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    expected = np.zeros(200, bool)
    expected[order[first]] = True
    np.testing.assert_array_equal(best_rows(owner, count, other), expected)
    assert best_rows(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)).size == 0
