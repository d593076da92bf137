"""Mend breaks in a skeleton fused from blocks: join pieces that the object's own voxels connect.

Tracing a 26-connected object whole gives one tree. Fused from halo blocks it can come out in
several pieces where the connection between two parts was traced in no block's core (it runs
through halos only, or along a face without crossing it). :func:`mend_breaks` finds such pieces
and joins each to the rest by the shortest path *through the object* (``dijkstra3d``, 26-connected,
anisotropic Euclidean), searched in a local box around the closest pair of their vertices. Pieces
the object does not connect inside that box stay apart, so separate components of an object are
never joined (unlike a distance rule such as kimimaro's ``join_close_components``), and a break whose
connection lies farther away than the box is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["mend_breaks", "piece_components"]


def piece_components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected-component index of each of ``n`` vertices under ``edges`` (isolated vertices: their own)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    adjacency = coo_matrix((np.ones(len(edges)), tuple(np.asarray(edges, np.int64).reshape(-1, 2).T)), shape=(n, n))
    return connected_components(adjacency, directed=False)[1]


def _candidates(voxels: np.ndarray, comp: np.ndarray, vs: np.ndarray, search_nm: float) -> list[tuple]:
    """Closest vertex pair ``(dist_nm, a, b)`` of every pair of pieces within ``search_nm``.

    ``comp`` < 0 marks vertices that are in no edge (not part of the skeleton).
    """
    from scipy.spatial import cKDTree

    pos = voxels * vs
    tree = cKDTree(pos)
    biggest = np.argmax(np.bincount(comp[comp >= 0]))
    best: dict[tuple[int, int], tuple] = {}
    for c in np.unique(comp[comp >= 0]):
        if c == biggest:  # every other piece looks for it; its own queries would be the most
            continue
        own = np.flatnonzero(comp == c)
        near = tree.query_ball_point(pos[own], r=search_nm)
        a = np.repeat(own, [len(n) for n in near])
        b = np.concatenate([np.asarray(n, np.int64) for n in near])
        keep = (comp[b] != c) & (comp[b] >= 0)
        a, b = a[keep], b[keep]
        d = np.linalg.norm(pos[a] - pos[b], axis=1)
        order = np.lexsort((b, a, d, comp[b]))  # per other piece, closest first (ties: lowest indices)
        first = order[np.r_[True, np.diff(comp[b][order]) != 0]] if len(order) else order
        for k in first:
            key = (min(c, comp[b[k]]), max(c, comp[b[k]]))
            if key not in best or d[k] < best[key][0]:
                best[key] = (float(d[k]), int(a[k]), int(b[k]))
    return sorted(best.values())


def mend_breaks(
    voxels: np.ndarray, edges: np.ndarray, radius: np.ndarray, labels, label: int,
    voxel_size: Sequence[float], search_nm: float, pad: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join skeleton pieces of one object that its voxels connect near their closest vertices.

    Parameters
    ----------
    voxels : ndarray of int, (N, 3)
        Skeleton vertices, (z, y, x) voxel coordinates inside the object.
    edges : ndarray of int, (E, 2)
        Vertex index pairs.
    radius : ndarray of float, (N,)
        Vertex radii (nm); a path's new vertices take the mean of its two end vertices' radii.
    labels : array-like, (Z, Y, X)
        The label volume (only local boxes are read, so a lazy array works).
    label : int
        The object's id.
    voxel_size : sequence of float
        (z, y, x) nm.
    search_nm : float
        Pieces whose closest vertices are farther apart than this are not considered.
    pad : sequence of int
        Voxels (per axis) added around the two vertices' bounding box when searching a path.

    Returns
    -------
    voxels, edges, radius
        With each joining path's vertices appended and its edges added (unchanged when the
        skeleton is one piece or no pair is connected). A path that meets skeleton vertices on
        its way adds only its stretches between pieces not yet joined, so no loop is made.

    Examples
    --------
    A U-shaped object whose two arms are separate skeleton pieces: the path runs through the bend.

    >>> lab = np.zeros((1, 5, 5), np.uint32); lab[0, 0, :] = lab[0, 4, :] = lab[0, :, 0] = 7
    >>> vox = np.array([[0, 0, 4], [0, 0, 2], [0, 4, 2], [0, 4, 4]])
    >>> v, e, r = mend_breaks(vox, np.array([[0, 1], [2, 3]]), np.ones(4), lab, 7, (40, 10, 10), 100.0, (2, 2, 2))
    >>> len(v), len(e), len(np.unique(piece_components(len(v), e)))
    (9, 8, 1)
    """
    import dijkstra3d
    from scipy.cluster.hierarchy import DisjointSet

    voxels = np.asarray(voxels, np.int64).reshape(-1, 3)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    radius = np.asarray(radius, np.float32).reshape(-1)
    comp = piece_components(len(voxels), edges)
    used = np.zeros(len(voxels), bool)
    used[edges.reshape(-1)] = True
    comp = np.where(used, comp, -1)
    if len(np.unique(comp[used])) < 2:
        return voxels, edges, radius
    vs, pad = np.asarray(voxel_size, np.float64), np.asarray(pad, np.int64)
    shape = np.asarray(labels.shape)
    joined = DisjointSet(range(int(comp.max()) + 1))
    at = {tuple(voxels[i].tolist()): i for i in np.flatnonzero(used).tolist()}
    new_vox, new_edges, new_radius = [], [], []
    n = len(voxels)
    for _, a, b in _candidates(voxels, comp, vs, search_nm):
        if joined.connected(int(comp[a]), int(comp[b])):
            continue
        lo = np.maximum(np.minimum(voxels[a], voxels[b]) - pad, 0)
        hi = np.minimum(np.maximum(voxels[a], voxels[b]) + pad + 1, shape)
        mask = np.asarray(labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]) == label
        path = dijkstra3d.binary_dijkstra(mask, tuple(voxels[a] - lo), tuple(voxels[b] - lo), background_color=0,
                                          connectivity=26, anisotropy=tuple(vs), euclidean_metric=True)
        path = path.astype(np.int64) + lo
        # the path may pass through skeleton vertices: add only its stretches between two vertices of
        # pieces not yet joined, so no loop is made
        hits = [(k, at[p]) for k, p in enumerate(map(tuple, path.tolist())) if p in at]
        for (i, u), (j, w) in zip(hits, hits[1:]):
            if not joined.merge(int(comp[u]), int(comp[w])):
                continue
            inner = path[i + 1:j]
            ids = np.concatenate([[u], n + np.arange(len(inner)), [w]])
            new_vox.append(inner)
            new_radius.append(np.full(len(inner), (radius[u] + radius[w]) / 2, np.float32))
            new_edges.append(np.stack([ids[:-1], ids[1:]], axis=1))
            n += len(inner)
    if not new_edges:
        return voxels, edges, radius
    return (np.concatenate([voxels, *new_vox]), np.concatenate([edges, *new_edges]),
            np.concatenate([radius, *new_radius]))
