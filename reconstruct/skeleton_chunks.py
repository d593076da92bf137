"""Skeletons computed piecewise: per-object crops (exact) and halo blocks (for huge objects).

:func:`skeletonize_objects` skeletonizes each object on its own bounding-box crop. It is *exactly*
equal to :func:`dendrosam.reconstruct.skeleton.skeletonize` on the whole volume (same nodes,
edges, radii and positions, bit for bit) when the crop is padded by at least one voxel:

* kimimaro's distance transform of an object is the distance to the nearest voxel outside the
  object's connected component. Any such voxel outside the padded box has a nearer one *on* the
  box (project it onto the box: it lands in the pad, outside the object), so the crop sees the
  same distances. Without a pad, an object touching its box would measure distances to the crop
  edge as if the object continued past it (kimimaro's ``black_border`` is off for multi-label
  input).
* ``fix_borders`` puts end points on every face an object touches. With a pad, the object only
  touches crop faces that are faces of the whole volume, so it gets the same end points; without
  one it would get extra end points on every face of its box.
* Tracing runs on the component's own bounding box in both cases, and vertices are shifted in
  voxel units before kimimaro's ``voxel * anisotropy`` (float32) product, so positions round
  identically.

The pipeline maps batches of object ids to workers; each worker only reads its objects' crops.

:func:`skeletonize_blocks` is for objects too large for one crop. Every block is skeletonized
with a halo at least as wide as the TEASAR invalidation ball of the thickest expected object
(``scale * max_radius_nm + const``), so paths near the block's core are traced as in the whole
volume, and every block traces to the same points on its inner faces (one per piece of each
object's cross-section there, chosen like ``fix_borders`` end points), so neighbouring blocks
cross a shared face at the same voxel even where the centre line is ambiguous. Each block keeps only the skeleton edges whose midpoint lies in its core (every edge is
owned by exactly one block), pieces are fused at shared vertices, pieces still apart are bridged
at inner faces between their closest vertices lying in the same piece of the object's
cross-section there, branches that end on an inner face only because a block traced to its
face target there are cut (:func:`_prune_face_tips`: the tip lies where the object crosses the
face and inside the TEASAR invalidation ball of the rest of the skeleton, so tracing the whole
volume would not have grown that branch), pieces that the object's voxels still connect near their
closest vertices are joined by the shortest path through the object (:mod:`.skeleton_mend`: a
connection traced in no block's core, e.g. one that ran through halos only), and post-processing and
smoothing run once per object.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.skeleton import (
    SkeletonConfig,
    _check_inputs,
    _finish,
    _kimimaro,
)
from dendrosam.reconstruct.skeleton_mend import piece_components, mend_breaks

__all__ = [
    "object_boxes",
    "skeletonize_objects",
    "skeletonize_blocks",
    "default_halo_nm",
]


def object_boxes(
    labels3d: np.ndarray, object_ids: Iterable[int] | None = None, pad: int = 1
) -> dict[int, tuple[tuple[int, int, int], tuple[int, int, int], int]]:
    """Padded bounding box and voxel count of every object, from one vectorised pass.

    Parameters
    ----------
    labels3d
        (Z, Y, X) integer labels, 0 = background (any ids: they are renumbered internally).
    object_ids
        Only these labels (default: all non-zero labels). Ids absent from the volume are skipped.
    pad
        Voxels added on every side of the tight box, clipped to the volume.

    Returns
    -------
    dict[int, tuple]
        ``{label: (lo, hi, n_voxels)}`` with ``lo``/``hi`` (z, y, x) voxel bounds (``hi``
        exclusive), sorted by label.
    """
    import cc3d
    import fastremap

    labels = np.asarray(labels3d)
    compact, mapping = fastremap.renumber(labels, preserve_zero=True, in_place=False)
    stats = cc3d.statistics(np.ascontiguousarray(compact))
    inverse = {int(new): int(old) for old, new in mapping.items() if new}
    wanted = None if object_ids is None else {int(i) for i in object_ids}
    shape = np.array(labels.shape)
    boxes = {}
    for new, (box, count) in enumerate(zip(stats["bounding_boxes"], stats["voxel_counts"])):
        label = inverse.get(new)
        if label is None or count == 0 or (wanted is not None and label not in wanted):
            continue
        lo = np.maximum(np.array([s.start for s in box]) - pad, 0)
        hi = np.minimum(np.array([s.stop for s in box]) + pad, shape)
        boxes[label] = (tuple(map(int, lo)), tuple(map(int, hi)), int(count))
    return dict(sorted(boxes.items()))


def _voxel_vertices(skel, voxel_size: tuple) -> np.ndarray:
    """kimimaro's (x, y, z) nm vertices back to integer (z, y, x) voxel indices."""
    aniso = np.asarray(voxel_size[::-1], dtype=np.float32)
    return np.rint(np.asarray(skel.vertices, np.float64) / aniso).astype(np.int64)[:, ::-1]


def _physical_vertices(voxels_zyx: np.ndarray, voxel_size: tuple) -> np.ndarray:
    """Integer (z, y, x) voxels to (x, y, z) nm float32, rounded exactly as kimimaro does."""
    aniso = np.asarray(voxel_size[::-1], dtype=np.float32)
    return np.multiply(voxels_zyx[:, ::-1].astype(np.float32), aniso, dtype=np.float32)


def skeletonize_objects(
    labels3d,
    voxel_size: Sequence[float],
    object_ids: Iterable[int] | None = None,
    config: SkeletonConfig = SkeletonConfig(),
    pad: int = 1,
    boxes: dict | None = None,
) -> dict[int, nx.Graph]:
    """Skeletonize objects one by one on their padded bounding-box crops.

    Equal to :func:`~dendrosam.reconstruct.skeleton.skeletonize` on the whole volume for every
    object when ``pad >= 1`` (see the module docstring), so batches of ``object_ids`` can run on
    different workers and their results be united.

    Parameters
    ----------
    labels3d
        (Z, Y, X) integer labels, 0 = background. With ``boxes`` given it may be any lazily
        sliceable array (zarr, dask): only the crops are read.
    voxel_size
        (z, y, x) voxel size in nm.
    object_ids
        The objects to skeletonize (default: all).
    config
        TEASAR and post-processing parameters.
    pad
        Background margin around each crop, in voxels (>= 1 for exact equality).
    boxes
        Precomputed :func:`object_boxes` (with the same ``pad``), to share one pass over the
        volume between batches.

    Returns
    -------
    dict[int, networkx.Graph]
        One graph per object, ``source`` = ``"kimimaro-objects"``.
    """
    if int(pad) < 0:
        raise ConfigError(f"pad must be >= 0 voxels, got {pad!r}")
    if boxes is None:
        labels, vs = _check_inputs(labels3d, voxel_size)
        boxes = object_boxes(labels, object_ids, pad)
    else:
        labels = labels3d
        vs = _check_inputs(np.zeros((1, 1, 1), np.uint8), voxel_size)[1]
        if object_ids is not None:
            boxes = {int(i): boxes[int(i)] for i in object_ids if int(i) in boxes}
    graphs = {}
    for label, (lo, hi, count) in sorted(boxes.items()):
        if count <= config.dust_threshold:  # no component of it can pass kimimaro's dust filter
            continue
        crop, _ = _check_inputs(np.asarray(labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]), vs)
        raw = _kimimaro(np.ascontiguousarray(crop), vs, config, [label]).get(label)
        if raw is None or not len(raw.vertices):
            continue
        raw.vertices = _physical_vertices(_voxel_vertices(raw, vs) + np.asarray(lo), vs)
        graphs[label] = _finish(raw, label, vs, config, "kimimaro-objects")
    return graphs


def default_halo_nm(config: SkeletonConfig, max_radius_nm: float) -> float:
    """TEASAR invalidation radius of the thickest expected object: ``scale * r + const`` (nm)."""
    return float(config.scale * max_radius_nm + config.const)


@dataclass(frozen=True)
class _Piece:
    voxels: np.ndarray  # (N, 3) int (z, y, x) in volume voxels
    edges: np.ndarray  # (M, 2) int
    radius: np.ndarray  # (N,) float32 nm


def _core_piece(skel, vs: tuple, origin: np.ndarray, core_lo: np.ndarray, core_hi: np.ndarray) -> _Piece | None:
    """The part of a block skeleton owned by the block's core: edges whose midpoint is inside."""
    vox = _voxel_vertices(skel, vs) + origin
    edges = np.asarray(skel.edges, np.int64).reshape(-1, 2)
    mid = np.floor((vox[edges[:, 0]] + vox[edges[:, 1]]) / 2.0)
    keep = np.all((mid >= core_lo) & (mid < core_hi), axis=1)
    if not keep.any():
        return None
    edges = edges[keep]
    used, inverse = np.unique(edges, return_inverse=True)
    radius = np.asarray(skel.radius, np.float32).reshape(-1)
    return _Piece(vox[used], inverse.reshape(-1, 2), radius[used])


def _fuse(pieces: list[_Piece]) -> _Piece:
    """Concatenate pieces, merging vertices at the same voxel and duplicate edges."""
    vox = np.concatenate([p.voxels for p in pieces])
    radius = np.concatenate([p.radius for p in pieces])
    offsets = np.cumsum([0] + [len(p.voxels) for p in pieces[:-1]])
    edges = np.concatenate([p.edges + o for p, o in zip(pieces, offsets)])
    unique, first, inverse = np.unique(vox, axis=0, return_index=True, return_inverse=True)
    edges = np.sort(inverse.reshape(-1)[edges], axis=1)
    edges = np.unique(edges[edges[:, 0] != edges[:, 1]], axis=0)
    return _Piece(unique, edges, radius[first])


def _face_slabs(labels: np.ndarray, block: Sequence[int]) -> dict[tuple[int, int], np.ndarray]:
    """26-connected pieces of the two voxel planes on either side of every inner block face.

    Keyed by (axis, c) for the face between planes ``c - 1`` and ``c``; ids are unique over all
    slabs (offset), 0 = background.
    """
    import cc3d

    slabs, offset = {}, 0
    for axis, (n, b) in enumerate(zip(labels.shape, block)):
        for c in range(b, n, b):
            pieces = cc3d.connected_components(
                np.ascontiguousarray(np.take(labels, [c - 1, c], axis=axis)), connectivity=26
            ).astype(np.int64)
            top = int(pieces.max())
            slabs[(axis, c)] = np.where(pieces > 0, pieces + offset, 0)
            offset += top
    return slabs


def _bridge(piece: _Piece, vs: tuple, slabs: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Edges joining components of ``piece`` cut apart at a block face.

    Vertices on the two planes beside an inner face are grouped by the piece of the object's
    cross-section (26-connected, two planes thick) they lie in; within each group, components
    are joined by their closest vertex pairs (Kruskal), so a bridge never crosses background.
    """
    from scipy.cluster.hierarchy import DisjointSet

    comp = piece_components(len(piece.voxels), piece.edges)
    n_comp = int(comp.max(initial=-1)) + 1
    if n_comp < 2:
        return np.empty((0, 2), np.int64)
    vertex, group = [], []
    for (axis, c), pieces in slabs.items():
        on = np.flatnonzero((piece.voxels[:, axis] == c - 1) | (piece.voxels[:, axis] == c))
        if not len(on):
            continue
        local = piece.voxels[on].copy()
        local[:, axis] -= c - 1
        vertex.append(on)
        group.append(pieces[tuple(local.T)])
    if not vertex:
        return np.empty((0, 2), np.int64)
    vertex, group = np.concatenate(vertex), np.concatenate(group)
    same = (group[:, None] == group[None, :]) & (comp[vertex][:, None] != comp[vertex][None, :])
    i, j = np.nonzero(np.triu(same & (group[:, None] > 0), k=1))
    if not len(i):
        return np.empty((0, 2), np.int64)
    a, b = vertex[i], vertex[j]
    dist = np.linalg.norm((piece.voxels[a] - piece.voxels[b]) * np.asarray(vs), axis=1)
    joined = DisjointSet(range(n_comp))
    joins = []
    for k in np.lexsort((b, a, dist)):  # over candidate vertex pairs, not voxels
        if joined.merge(int(comp[a[k]]), int(comp[b[k]])):
            joins.append((a[k], b[k]))
    return np.asarray(joins, np.int64).reshape(-1, 2)


def _open_face(voxels: np.ndarray, slabs: dict[tuple[int, int], np.ndarray],
               crossings: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Which vertices lie beside an inner block face in a piece of the object that crosses it.

    True where a vertex is on plane ``c - 1`` or ``c`` of an inner face (any axis, as keyed in
    ``slabs``) and the piece of the object's cross-section there (26-connected over both planes)
    has voxels on both planes (its id is in ``crossings``).
    """
    hit = np.zeros(len(voxels), dtype=bool)
    for (axis, c), pieces in slabs.items():
        near = np.flatnonzero((voxels[:, axis] == c - 1) | (voxels[:, axis] == c))
        if not near.size:
            continue
        local = voxels[near].copy()
        local[:, axis] -= c - 1
        hit[near] |= np.isin(pieces[tuple(local.T)], crossings[(axis, c)])
    return hit


def _prune_face_tips(piece: _Piece, edges: np.ndarray, border_ends: np.ndarray,
                     slabs: dict[tuple[int, int], np.ndarray],
                     crossings: dict[tuple[int, int], np.ndarray], vs: tuple,
                     config: SkeletonConfig) -> tuple[_Piece, np.ndarray]:
    """Remove branches traced only because a block face put a target there.

    Every block traces to the shared targets on its faces, so where the object bulges across a
    face near its main path, the block on that side grows a branch to the bulge. TEASAR on the
    whole volume grows no such branch: the target lies inside the invalidation ball
    (``scale * radius + const``) of the path that passes by. So a tip is cut back to its
    branch point when it lies beside an inner face the object crosses right there *and* inside
    the invalidation ball of a vertex of the rest of the skeleton. Kept are tips away from
    faces, bare paths (no branch point), and tips within ``config.const`` nm of one of the
    object's ``border_ends`` (the whole volume's ``fix_borders`` end points, (N, 3) voxels):
    the whole-volume trace ends there, and the block's face target only displaced that end.
    (A tip merely near the volume border, beside no such end point, is cut like any other.)
    Repeated until stable.
    """
    graph = nx.Graph()
    graph.add_nodes_from(range(len(piece.voxels)))
    graph.add_edges_from(map(tuple, edges.tolist()))
    open_face = _open_face(piece.voxels, slabs, crossings)
    nm = piece.voxels * np.asarray(vs)
    ball = config.scale * piece.radius.astype(np.float64) + config.const
    near = np.flatnonzero(open_face)
    if len(border_ends) and near.size:
        to_end = np.linalg.norm(nm[near, None, :] - (border_ends * np.asarray(vs))[None], axis=2).min(axis=1)
        open_face[near[to_end <= config.const]] = False
    changed = bool(open_face.any())
    while changed:
        changed = False
        for tip in [v for v in graph if graph.degree(v) == 1 and open_face[v]]:
            if tip not in graph or graph.degree(tip) != 1:
                continue
            path, prev, cur = [tip], None, tip
            while graph.degree(cur) <= 2:
                nxt = [n for n in graph.neighbors(cur) if n != prev]
                if not nxt:
                    path = []  # a bare path: the object's own skeleton, keep it
                    break
                prev, cur = cur, nxt[0]
                if graph.degree(cur) <= 2:
                    path.append(cur)
            if not path:
                continue
            on_path = set(path)
            rest = np.fromiter((v for v in graph if v not in on_path), np.int64)
            if np.any(np.linalg.norm(nm[rest] - nm[tip], axis=1) <= ball[rest]):
                graph.remove_nodes_from(path)
                changed = True
    keep = np.fromiter(sorted(graph.nodes), np.int64)
    index = np.full(len(piece.voxels), -1, np.int64)
    index[keep] = np.arange(keep.size)
    kept_edges = index[np.asarray(list(graph.edges), np.int64).reshape(-1, 2)]
    return _Piece(piece.voxels[keep], np.empty((0, 2), np.int64), piece.radius[keep]), kept_edges


def _crossing(pieces: np.ndarray, axis: int) -> np.ndarray:
    """Ids of the slab pieces (see :func:`_face_slabs`) with voxels on both planes: the face's crossings."""
    lower, upper = np.take(pieces, 0, axis=axis), np.take(pieces, 1, axis=axis)
    return np.intersect1d(lower[lower > 0], upper[upper > 0])


def _face_targets(labels: np.ndarray, vs: tuple, slabs: dict[tuple[int, int], np.ndarray],
                  crossings: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Shared targets on every inner block face (first plane of the upper block), (z, y, x).

    Only pieces of the object's cross-section that cross the face get one: a piece that touches
    the face from one side only is traced by the block on that side like any other part.
    """
    from dendrosam.reconstruct.teasar import plane_targets

    found = [np.empty((0, 3), np.int64)]
    for (axis, c), pieces in slabs.items():
        points = plane_targets(labels, axis, c, vs)
        local = points.copy()
        local[:, axis] = 1  # plane c is the slab's second plane
        found.append(points[np.isin(pieces[tuple(local.T)], crossings[(axis, c)])])
    return np.concatenate(found)


def _block_grid(shape: Sequence[int], block: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    starts = [np.arange(0, n, b) for n, b in zip(shape, block)]
    grid = np.stack(np.meshgrid(*starts, indexing="ij"), axis=-1).reshape(-1, 3)
    return [(lo, np.minimum(lo + np.asarray(block), shape)) for lo in grid]


def _padded_block_voxels(shape: Sequence[int], block: Sequence[int], halo_vox: Sequence[int]) -> int:
    """Voxels of the largest padded region (core + halo, clipped to the volume) of any block.

    The padded extents along the axes are independent, so the largest region is the product of
    the largest extent along each axis.
    """
    largest = 1
    for n, b, h in zip(shape, block, halo_vox):
        starts = np.arange(0, n, b)
        largest *= int((np.minimum(starts + b + h, n) - np.maximum(starts - h, 0)).max())
    return largest


def _fits_a_block(lo, hi, block, halo_vox, shape) -> bool:
    """Whether the box ``[lo, hi)`` lies inside the padded region (core + halo) of some block.

    Such an object lies entirely in data that block reads anyway, so tracing it whole costs no
    more memory than the block. Only the blocks whose cores the box touches can hold it.
    """
    lo, hi, block, halo, shape = (np.asarray(v) for v in (lo, hi, block, halo_vox, shape))
    first, last = lo // block, (np.maximum(hi, 1) - 1) // block  # core indices the box touches
    for index in np.ndindex(*(last - first + 1)):
        core_lo = (first + np.asarray(index)) * block
        if np.all(lo >= np.maximum(core_lo - halo, 0)) and np.all(hi <= np.minimum(core_lo + block + halo, shape)):
            return True
    return False


def skeletonize_blocks(
    labels3d: np.ndarray,
    voxel_size: Sequence[float],
    block_shape: Sequence[int],
    config: SkeletonConfig = SkeletonConfig(),
    object_ids: Iterable[int] | None = None,
    max_radius_nm: float = 500.0,
    halo_nm: float | None = None,
    whole_objects: bool = True,
    max_object_voxels: int | None = None,
    mend: bool = True,
) -> dict[int, nx.Graph]:
    """Skeletonize block by block with a halo, keep each block's core, fuse per object.

    An object is skeletonized whole (:func:`skeletonize_objects` on its own crop: exactly the
    whole-volume skeleton) when its padded bounding box lies inside the padded region (core +
    halo) of some block, i.e. in data that block reads anyway, or holds no more voxels than
    ``max_object_voxels`` (by default the largest padded block, so no task holds more than one
    block does). Only larger objects are traced piecewise and fused; their branch and tip
    counts can differ from the whole-volume trace (TEASAR is a global method: the whole-volume
    trace of the same object already depends on the order it meets the voxels in).

    Parameters
    ----------
    labels3d, voxel_size, config, object_ids
        As in :func:`~dendrosam.reconstruct.skeleton.skeletonize`.
    block_shape
        (z, y, x) core size of a block in voxels.
    max_radius_nm
        Largest expected object radius (distance to the boundary), nm; sets the default halo.
    halo_nm
        Margin around each core, nm (default :func:`default_halo_nm`); converted to voxels per
        axis with the anisotropy (ceil).
    whole_objects
        Skeletonize objects that fit (see above) whole (exact); False traces every object
        piecewise.
    max_object_voxels
        Largest padded object box, in voxels, traced whole from its own crop (default: the
        voxels of the largest padded block; 0 keeps only objects inside a block's padded
        region whole).
    mend
        Join the pieces of a fused skeleton that the object's voxels connect within half a halo of
        their closest vertices (:func:`~dendrosam.reconstruct.skeleton_mend.mend_breaks`), so a
        26-connected object is one tree as when traced whole; False leaves breaks where no block
        traced the connection in its core.

    Returns
    -------
    dict[int, networkx.Graph]
        Same format as :func:`~dendrosam.reconstruct.skeleton.skeletonize`, ``source`` =
        ``"kimimaro-blocks"``.
    """
    from osteoid import Skeleton

    from dendrosam.reconstruct.teasar import border_targets

    labels, vs = _check_inputs(labels3d, voxel_size)
    block = tuple(int(b) for b in block_shape)
    if len(block) != 3 or min(block) < 2:
        raise ConfigError(f"block_shape must be three sizes >= 2 voxels, got {block_shape!r}")
    halo = default_halo_nm(config, max_radius_nm) if halo_nm is None else float(halo_nm)
    if not (math.isfinite(halo) and halo >= 0):
        raise ConfigError(f"halo_nm must be >= 0, got {halo_nm!r}")
    halo_vox = np.ceil(halo / np.asarray(vs)).astype(int)
    mend_pad = np.ceil(halo / 2 / np.asarray(vs)).astype(int)
    shape = np.asarray(labels.shape)
    budget = _padded_block_voxels(shape, block, halo_vox) if max_object_voxels is None else int(max_object_voxels)
    if budget < 0:
        raise ConfigError(f"max_object_voxels must be >= 0, got {max_object_voxels!r}")

    graphs: dict[int, nx.Graph] = {}
    if whole_objects:
        boxes = object_boxes(labels, object_ids, pad=1)
        fits = [k for k, (lo, hi, _) in boxes.items()
                if np.prod(np.subtract(hi, lo)) <= budget or _fits_a_block(lo, hi, block, halo_vox, shape)]
        graphs = skeletonize_objects(labels, voxel_size, fits, config, boxes=boxes)
        for g in graphs.values():
            g.graph["source"] = "kimimaro-blocks"
        object_ids = sorted(set(boxes) - set(fits))
        if not object_ids:
            return graphs
    slabs = _face_slabs(labels, block)
    crossings = {key: _crossing(pieces, key[0]) for key, pieces in slabs.items()}
    faces = _face_targets(labels, vs, slabs, crossings)
    border_ends = border_targets(labels, vs) if config.fix_borders else np.empty((0, 3), np.int64)
    end_labels = labels[tuple(border_ends.T)]
    pieces: dict[int, list[_Piece]] = {}
    for core_lo, core_hi in _block_grid(labels.shape, block):
        lo, hi = np.maximum(core_lo - halo_vox, 0), np.minimum(core_hi + halo_vox, shape)
        sub = np.ascontiguousarray(labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
        inside = np.all((faces >= core_lo) & (faces <= core_hi), axis=1)
        targets = faces[inside] - lo
        for label, skel in _kimimaro(sub, vs, config, object_ids, targets).items():
            if len(skel.vertices) and len(skel.edges):
                piece = _core_piece(skel, vs, lo, core_lo, core_hi)
                if piece is not None:
                    pieces.setdefault(int(label), []).append(piece)

    for label in sorted(pieces):
        fused = _fuse(pieces[label])
        edges = np.concatenate([fused.edges, _bridge(fused, vs, slabs)])
        ends = border_ends[end_labels == label]
        fused, edges = _prune_face_tips(fused, edges, ends, slabs, crossings, vs, config)
        if mend:
            mended = _Piece(*mend_breaks(fused.voxels, edges, fused.radius, labels, label, vs, halo, mend_pad))
            if len(mended.edges) > len(edges):  # joined: merge path vertices that met skeleton vertices
                fused = _fuse([mended])
                edges = fused.edges
        skel = Skeleton(
            _physical_vertices(fused.voxels, vs), edges.astype(np.uint32), fused.radius,
            segid=label, space="physical",
        )
        graphs[label] = _finish(skel, label, vs, config, "kimimaro-blocks")
    return dict(sorted(graphs.items()))

