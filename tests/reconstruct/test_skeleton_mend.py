"""Mending breaks in block-fused skeletons: join only what the object's voxels connect."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dendrosam.reconstruct.skeleton_mend import piece_components, mend_breaks

VS = (40.0, 15.0, 15.0)


def n_pieces(n, edges):
    return len(np.unique(piece_components(n, edges)))


def chain(xs, y=2, z=1, start=0):
    """Vertices along x at (z, y) and the edges of the chain, indices from ``start``."""
    vox = np.array([[z, y, x] for x in xs])
    idx = np.arange(start, start + len(xs))
    return vox, np.stack([idx[:-1], idx[1:]], axis=1)


def cut_tube():
    """A straight tube (id 4) whose skeleton misses x 10-15: two pieces, closest vertices x 9 and 16."""
    lab = np.zeros((3, 5, 30), np.uint32)
    lab[:, 1:4, :] = 4
    va, ea = chain(range(0, 10))
    vb, eb = chain(range(16, 30), start=10)
    vox, edges = np.concatenate([va, vb]), np.concatenate([ea, eb])
    return lab, vox, edges


def test_cut_tube_is_joined_along_the_gap():
    lab, vox, edges = cut_tube()
    v, e, r = mend_breaks(vox, edges, np.full(len(vox), 30.0), lab, 4, VS, 200.0, (2, 2, 2))
    assert n_pieces(len(v), e) == 1 and len(e) == len(v) - 1  # one tree
    assert sorted(v[len(vox):, 2].tolist()) == [10, 11, 12, 13, 14, 15]  # the straight gap, voxel by voxel
    assert (v[len(vox):, :2] == [1, 2]).all() and np.allclose(r[len(vox):], 30.0)


def test_separate_components_of_one_label_stay_apart():
    lab = np.zeros((3, 5, 30), np.uint32)
    lab[:, 1:4, :12] = 4
    lab[:, 1:4, 14:] = 4  # two voxels of background between them: two components of id 4
    va, ea = chain(range(0, 12))
    vb, eb = chain(range(14, 30), start=12)
    vox, edges = np.concatenate([va, vb]), np.concatenate([ea, eb])
    v, e, _ = mend_breaks(vox, edges, np.ones(len(vox)), lab, 4, VS, 1000.0, (2, 2, 2))
    assert len(v) == len(vox) and len(e) == len(edges)
    # ... and another object's voxels do not connect them either
    lab[:, 1:4, 12:14] = 9
    v, e, _ = mend_breaks(vox, edges, np.ones(len(vox)), lab, 4, VS, 1000.0, (2, 2, 2))
    assert n_pieces(len(v), e) == 2


@pytest.mark.parametrize("pad, joined", [(2, False), (12, True)])
def test_connection_must_lie_in_the_local_box(pad, joined):
    # a U: the arms' closest vertices are 4 voxels apart across background, the bend is 10 voxels away
    lab = np.zeros((1, 12, 20), np.uint32)
    lab[0, 1, 2:] = lab[0, 6, 2:] = lab[0, 1:7, 2] = 3
    va, ea = chain(range(8, 20), y=1, z=0)
    vb, eb = chain(range(8, 20), y=6, z=0, start=12)
    vox, edges = np.concatenate([va, vb]), np.concatenate([ea, eb])
    v, e, _ = mend_breaks(vox, edges, np.ones(len(vox)), lab, 3, (40.0, 10.0, 10.0), 200.0, (pad, pad, pad))
    assert (n_pieces(len(v), e) == 1) is joined
    if joined:  # through the bend: 5 + 1 (diagonal) + 3 + 1 (diagonal) + 5 steps, 14 new vertices
        g = nx.Graph(e.tolist())
        assert len(v) - len(vox) == 14 and nx.shortest_path_length(g, 12, 0) == 15


def test_search_radius_limits_candidates():
    lab, vox, edges = cut_tube()
    # closest vertices (x 9 and 16) 7 voxels = 105 nm apart
    for search, pieces in ((100.0, 2), (110.0, 1)):
        v, e, _ = mend_breaks(vox, edges, np.ones(len(vox)), lab, 4, VS, search, (9, 9, 9))
        assert n_pieces(len(v), e) == pieces


def test_many_pieces_in_one_blob_become_one_tree():
    # paths through a solid blob cross other pieces' vertices: only stretches between unjoined pieces
    # are added, so the result is a tree (no loop), whatever the order
    rng = np.random.default_rng(7)
    lab = np.ones((1, 24, 24), np.uint32)
    vox, edges, start = [], [], 0
    for _ in range(9):
        y, x = int(rng.integers(0, 24)), int(rng.integers(0, 20))
        v, e = chain(range(x, x + int(rng.integers(2, 5))), y=y, z=0, start=start)
        if any((v == w).all(axis=1).any() for w in vox):
            continue
        vox += list(v)
        edges += list(e)
        start += len(v)
    vox, edges = np.array(vox), np.array(edges).reshape(-1, 2)
    assert n_pieces(len(vox), edges) > 3
    v, e, _ = mend_breaks(vox, edges, np.ones(len(vox)), lab, 1, (40.0, 10.0, 10.0), 1000.0, (24, 24, 24))
    assert n_pieces(len(v), e) == 1 and len(e) == len(v) - 1
    assert len(np.unique(v, axis=0)) == len(v)  # new vertices never duplicate skeleton vertices


def test_blocks_mend_a_break_no_block_traced(monkeypatch):
    """A break injected where blocks fuse (the middle edge of a long tube removed) is mended."""
    import dendrosam.reconstruct.skeleton_chunks as chunks
    from dendrosam.reconstruct.skeleton import skeletonize

    labels = np.zeros((16, 30, 240), np.uint32)
    labels[5:11, 10:20, 5:235] = 1
    real = chunks._prune_face_tips

    def prune_and_break(fused, edges, *args):  # cut 300 nm out of the middle: farther than kimimaro's
        fused, edges = real(fused, edges, *args)  # own join of close components reaches (their radii)
        x = fused.voxels[edges].mean(axis=1)[:, 2]
        return fused, edges[(x < 110) | (x > 130)]

    monkeypatch.setattr(chunks, "_prune_face_tips", prune_and_break)
    whole = skeletonize(labels, VS)[1]
    broken = chunks.skeletonize_blocks(labels, VS, (16, 30, 80), whole_objects=False, mend=False)[1]
    mended = chunks.skeletonize_blocks(labels, VS, (16, 30, 80), whole_objects=False)[1]
    assert nx.number_connected_components(broken) == 2
    assert nx.number_connected_components(mended) == 1 and nx.is_tree(mended)
    assert sorted(d for _, d in mended.degree if d != 2) == [1, 1]
    assert mended.size(weight="length") == pytest.approx(whole.size(weight="length"), rel=0.10)
