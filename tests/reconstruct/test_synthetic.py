"""Synthetic EM: determinism and the geometric guarantees other stages' tests rely on."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from dendrosam.reconstruct.synthetic import synthetic_em

SHAPE = (24, 160, 160)


@pytest.fixture(scope="module")
def syn():
    return synthetic_em(shape=SHAPE, voxel_size=(40, 15, 15), n_dendrites=2, seed=3,
                        missing_sections=[5], shifted_sections=[(9, 4, -3)])  # fmt: skip


def test_shapes_and_dtypes(syn):
    assert syn.raw.shape == syn.dendrites.shape == syn.objects.shape == SHAPE
    assert (syn.raw.dtype, syn.dendrites.dtype, syn.objects.dtype) == (np.uint8, np.uint32, np.uint32)
    assert syn.voxel_size == (40.0, 15.0, 15.0)


def test_same_seed_identical_other_seed_different(syn):
    again = synthetic_em(shape=SHAPE, n_dendrites=2, seed=3, missing_sections=[5],
                         shifted_sections=[(9, 4, -3)])  # fmt: skip
    assert np.array_equal(again.raw, syn.raw)
    assert np.array_equal(again.objects, syn.objects)
    other = synthetic_em(shape=SHAPE, n_dendrites=2, seed=4)
    assert not np.array_equal(other.dendrites, syn.dendrites)


def test_each_dendrite_is_one_26_connected_object(syn):
    ids = np.unique(syn.dendrites)[1:]
    assert list(ids) == list(range(1, len(syn.centerlines) + 1))
    for i in ids:
        _, n = cc3d.connected_components(syn.dendrites == i, connectivity=26, return_N=True)
        assert n == 1, f"dendrite {i} has {n} pieces"


def test_objects_partition_space_and_agree_with_dendrites(syn):
    d = syn.dendrites > 0
    assert np.array_equal(syn.objects[d], syn.dendrites[d])
    assert np.all(syn.objects[~d] > syn.dendrites.max())  # axons and glia fill the rest
    assert syn.objects.min() > 0


def test_centerlines_lie_inside_their_dendrite(syn):
    vs = np.asarray(syn.voxel_size)
    for i, lines in syn.centerlines.items():
        for pts in lines:
            vox = np.rint(pts / vs).astype(int)
            inside = np.all((vox >= 0) & (vox < SHAPE), axis=1)
            assert inside.sum() > 20
            assert np.all(syn.dendrites[tuple(vox[inside].T)] == i)


def test_spines_attach_to_their_dendrite_with_plausible_geometry(syn):
    assert syn.spines, "expected at least one spine"
    vs = np.asarray(syn.voxel_size)
    for did, base, head, head_r in syn.spines:
        assert syn.dendrites[tuple(np.rint(head / vs).astype(int))] == did
        assert 250 <= head_r <= 350
        assert 500 < np.linalg.norm(head - base) < 1500 + 350


def test_artefacts_exact(syn):
    clean = synthetic_em(shape=SHAPE, n_dendrites=2, seed=3)
    assert np.ptp(syn.raw[5]) == 0  # blank section
    assert np.array_equal(syn.raw[9, 4:, :-3], clean.raw[9, :-4, 3:])  # image moved by (4, -3)
    same = [z for z in range(SHAPE[0]) if z not in (5, 9)]
    assert np.array_equal(syn.raw[same], clean.raw[same])
    assert np.array_equal(syn.objects, clean.objects)  # labels keep the true geometry


def test_membranes_are_dark(syn):
    lab = syn.objects
    edge = np.zeros(lab.shape, bool)
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    ok = np.ones(SHAPE[0], bool)
    ok[[5, 9]] = False
    raw = syn.raw[ok].astype(float)
    assert raw[~edge[ok]].mean() - raw[edge[ok]].mean() > 40
