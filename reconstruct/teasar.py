"""kimimaro's TEASAR tracer driven so that a skeleton does not depend on where its crop starts.

:func:`trace_labels` does what :func:`kimimaro.skeletonize` does (26-connected components, one
multi-label anisotropic distance transform, dust filter, :func:`kimimaro.trace.trace` on each
component's bounding box, vertices in physical units, pieces of one label merged) with one
change: the end points on the volume border (``fix_borders``) come from :func:`border_targets`
in sorted order and the first of them is the root. kimimaro keeps its border targets in a
Python ``set`` of coordinate tuples and takes the root from that set, so for an object cut by
the volume border the root -- and with ``fix_branching`` the whole trace -- changes when the
same object is skeletonized in a crop with other coordinates. A sorted order is kept by any
translation, so a padded crop of an object gives the whole volume's skeleton bit for bit
(:mod:`dendrosam.reconstruct.skeleton_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["border_targets", "plane_targets", "trace_labels"]


def border_targets(labels: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """End points for objects touching the volume border, in a crop-independent order.

    On each of the six faces, every 2D connected piece of every object gets one target: its
    pixel farthest from the piece's outline (2D anisotropic EDT, image edge = outline), ties
    broken by the smallest index -- kimimaro's ``fix_borders`` rule.

    Parameters
    ----------
    labels
        (Z, Y, X) integer labels.
    voxel_size
        (z, y, x) voxel size in nm.

    Returns
    -------
    numpy.ndarray
        (N, 3) int64 (z, y, x) voxel indices, unique and sorted lexicographically.
    """
    shape = labels.shape
    found = [np.empty((0, 3), np.int64)]
    for axis in range(3):
        for index in sorted({0, shape[axis] - 1}):
            found.append(plane_targets(labels, axis, index, voxel_size))
    return np.unique(np.concatenate(found), axis=0)


def plane_targets(labels: np.ndarray, axis: int, index: int, voxel_size: Sequence[float]) -> np.ndarray:
    """One point per 2D connected piece of every object on the plane ``index`` of ``axis``.

    The point is the piece's pixel farthest from its outline (anisotropic EDT, the image edge
    counts as outline), ties broken by the smallest index.

    Returns
    -------
    numpy.ndarray
        (N, 3) int64 (z, y, x) voxel indices, one row per piece.
    """
    import cc3d
    import edt

    rest = [a for a in range(3) if a != axis]
    plane = np.ascontiguousarray(np.take(labels, index, axis=axis))
    pieces = cc3d.connected_components(plane)
    if not pieces.any():
        return np.empty((0, 3), np.int64)
    dist = edt.edt(pieces, anisotropy=tuple(voxel_size[a] for a in rest), black_border=True)
    flat = np.flatnonzero(pieces)
    ids = pieces.reshape(-1)[flat]
    order = np.lexsort((flat, -dist.reshape(-1)[flat], ids))
    _, first = np.unique(ids[order], return_index=True)
    best = np.unravel_index(flat[order[first]], plane.shape)
    points = np.empty((len(first), 3), np.int64)
    points[:, axis] = index
    points[:, rest[0]], points[:, rest[1]] = best
    return points


def trace_labels(
    labels: np.ndarray,
    voxel_size: Sequence[float],
    teasar_params: dict,
    object_ids: Iterable[int] | None = None,
    dust_threshold: int = 1000,
    fix_branching: bool = True,
    fix_borders: bool = True,
    extra_targets: np.ndarray | None = None,
) -> dict:
    """TEASAR skeletons of every object of a (z, y, x) label array.

    Parameters
    ----------
    labels
        (Z, Y, X) unsigned integer labels, 0 = background.
    voxel_size
        (z, y, x) voxel size in nm.
    teasar_params
        Passed to :func:`kimimaro.trace.trace` (``scale``, ``const``, ... in nm).
    object_ids
        Only these labels (others are treated as background, as kimimaro does).
    dust_threshold
        Connected components with at most this many voxels are skipped.
    fix_branching
        kimimaro's branch-point correction.
    fix_borders
        Trace to :func:`border_targets` (the first one is the root).
    extra_targets
        (N, 3) (z, y, x) voxels the skeleton must also reach, traced after the ordinary TEASAR
        targets (kimimaro's ``manual_targets_after``) in sorted order, so they cannot
        invalidate the object's real tips.

    Returns
    -------
    dict[int, osteoid.Skeleton]
        ``{label: skeleton}`` with vertices in (x, y, z) nm (kimimaro's convention) and
        ``radius`` in nm; labels whose components are all dust are absent.
    """
    import cc3d
    import edt
    import fastremap
    import kimimaro.trace
    from osteoid import Skeleton

    labels = np.ascontiguousarray(labels)
    if object_ids is not None:
        labels = fastremap.mask_except(labels.copy(), [int(i) for i in object_ids])
    if not labels.any():
        return {}
    components = cc3d.connected_components(labels, connectivity=26)
    stats = cc3d.statistics(components)
    low, high = fastremap.minmax(labels)
    dbf = edt.edt(components, anisotropy=tuple(voxel_size), black_border=bool(low == high))
    owner = fastremap.component_map(components, labels)
    targets = border_targets(labels, voxel_size) if fix_borders else np.empty((0, 3), np.int64)
    target_cc = components[tuple(targets.T)]
    after = np.unique(np.asarray(() if extra_targets is None else extra_targets, np.int64).reshape(-1, 3), axis=0)
    after_cc = components[tuple(after.T)]
    aniso_xyz = np.asarray(voxel_size[::-1], dtype=np.float32)

    pieces: dict[int, list] = {}
    for cc_id in np.flatnonzero(stats["voxel_counts"] > dust_threshold):
        if cc_id == 0:
            continue
        box = stats["bounding_boxes"][cc_id]
        lo = np.array([s.start for s in box])
        if np.prod([s.stop - s.start for s in box]) <= 1:
            continue
        mask = components[box] == cc_id
        field = np.where(mask, dbf[box], np.float32(0))
        mine = [tuple(map(int, p)) for p in (targets[target_cc == cc_id] - lo)[:, ::-1]]  # roi (x, y, z)
        later = [tuple(map(int, p)) for p in (after[after_cc == cc_id] - lo)[:, ::-1]]
        skel = kimimaro.trace.trace(
            mask.T, field.T, anisotropy=aniso_xyz, fix_branching=fix_branching,
            manual_targets_before=mine[1:], manual_targets_after=later, root=mine[0] if mine else None,
            **teasar_params,
        )
        if skel.empty():
            continue
        vertices = skel.vertices.astype(np.float32) + lo[::-1].astype(np.float32)
        skel.vertices = np.multiply(vertices, aniso_xyz, dtype=np.float32)
        skel.space = "physical"
        label = int(owner[int(cc_id)])
        skel.id = label
        pieces.setdefault(label, []).append(skel)
    return {label: Skeleton.simple_merge(skels).consolidate() for label, skels in sorted(pieces.items())}
