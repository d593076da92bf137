"""TEASAR skeletons of 3D label volumes as networkx graphs in nanometres.

:func:`skeletonize` runs kimimaro on a whole volume; :mod:`dendrosam.reconstruct.skeleton_chunks`
runs the same per object crop (:func:`~dendrosam.reconstruct.skeleton_chunks.skeletonize_objects`,
exactly equal) or per block with a halo
(:func:`~dendrosam.reconstruct.skeleton_chunks.skeletonize_blocks`, for objects larger than a
crop). All return ``{label: networkx.Graph}`` with the stable graph format every later stage relies on:

* node attributes ``pos`` -- (z, y, x) position in nm (tuple of floats) and ``radius`` -- distance
  to the object's boundary in nm;
* edge attribute ``length`` -- Euclidean length of the edge in nm, measured *after* smoothing;
* graph attributes ``label`` (int), ``voxel_size`` ((z, y, x) nm tuple) and ``source`` (str).

Axis conventions: our arrays are (z, y, x). kimimaro indexes its input as (x, y, z) (its
``anisotropy`` is (x, y, z) and its vertices come back as (x, y, z) nm), so the volume is handed
over transposed (``labels.T``, a zero-copy Fortran-ordered view, which is what kimimaro wants)
with the voxel size reversed, and the vertex columns are reversed on the way back.

Voxel skeletons of anisotropic data zig-zag: at 40 nm sections and 15 nm pixels an oblique tube's
raw skeleton is 20-25% longer than its centre line. Node positions are therefore smoothed along
every unbranched path (branch points and tips stay fixed) before edge lengths are computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np
from scipy.ndimage import gaussian_filter1d

from dendrosam.errors import ConfigError, LabelError, VoxelSizeError

__all__ = [
    "SkeletonConfig",
    "skeletonize",
    "skeleton_to_graph",
    "smooth_graph",
    "unbranched_paths",
    "positions",
]


@dataclass(frozen=True)
class SkeletonConfig:
    """TEASAR and post-processing parameters; every length is in nm.

    Parameters
    ----------
    scale, const
        TEASAR invalidation ball radius ``scale * DBF + const`` (nm, DBF = distance to the
        boundary). Smaller values find shorter side branches (spines) but take longer. The
        defaults were tuned on synthetic dendrites: they keep spines reaching 1.3 um beyond a
        shaft of 0.4 um radius (``scale=4, const=500`` loses them).
    pdrf_scale, pdrf_exponent
        TEASAR penalty field (kimimaro defaults).
    soma_detection_threshold
        DBF (nm) above which kimimaro treats a region as a soma; dendrites have none, so the
        default disables soma handling.
    dust_threshold
        Objects with fewer voxels are skipped (kimimaro, per block in chunked runs).
    fix_branching
        kimimaro's branch-point correction (slower, better topology).
    fix_borders
        Place a skeleton end point in each piece of an object's cross-section on the volume
        border (the point farthest from its outline), the first one being the root
        (:func:`dendrosam.reconstruct.teasar.border_targets`), so a skeleton
        reaches the border where the object is cut.
    postprocess
        Run :func:`kimimaro.postprocess` (remove loops, join close components) and remove ticks
        (:func:`dendrosam.reconstruct.skeleton_ticks.remove_ticks`, which unlike kimimaro's never
        cuts a path between two branch points).
    cable_dust_threshold
        Post-processing: drop skeleton components with less cable than this (nm).
    tick_threshold
        Post-processing: remove terminal branches shorter than this (nm). Keep it well below the
        length of a spine.
    smooth_sigma
        Gaussian smoothing of node positions along unbranched paths, as a standard deviation in
        units of the largest voxel edge (0 disables smoothing).
    """

    scale: float = 2.0
    const: float = 400.0
    pdrf_scale: float = 100000.0
    pdrf_exponent: int = 4
    soma_detection_threshold: float = 1e9
    dust_threshold: int = 1000
    fix_branching: bool = True
    fix_borders: bool = True
    postprocess: bool = True
    cable_dust_threshold: float = 0.0
    tick_threshold: float = 300.0
    smooth_sigma: float = 1.5

    def __post_init__(self) -> None:
        for name in ("scale", "const", "pdrf_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"SkeletonConfig.{name} must be a positive number, got {value!r}")
        for name in ("cable_dust_threshold", "tick_threshold", "smooth_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"SkeletonConfig.{name} must be >= 0, got {value!r}")
        if self.dust_threshold < 0:
            raise ConfigError(f"SkeletonConfig.dust_threshold must be >= 0, got {self.dust_threshold}")

    def teasar_params(self) -> dict[str, float]:
        """The ``teasar_params`` dict for :func:`kimimaro.skeletonize` (physical units, nm)."""
        return {
            "scale": self.scale,
            "const": self.const,
            "pdrf_scale": self.pdrf_scale,
            "pdrf_exponent": self.pdrf_exponent,
            "soma_detection_threshold": self.soma_detection_threshold,
            "soma_acceptance_threshold": self.soma_detection_threshold,
            "soma_invalidation_scale": 2.0,
            "soma_invalidation_const": self.const,
        }

    def to_dict(self) -> dict[str, float | int | bool]:
        """Plain dict of every field (for provenance)."""
        return asdict(self)


def _check_inputs(labels3d: np.ndarray, voxel_size: Sequence[float]) -> tuple[np.ndarray, tuple]:
    labels = np.asarray(labels3d)
    if labels.ndim != 3:
        raise LabelError(f"labels must be a 3D (z, y, x) array, got shape {labels.shape}")
    if labels.dtype.kind not in "ui":
        raise LabelError(f"labels must have an integer dtype, got {labels.dtype}")
    if labels.dtype.kind == "i":
        if labels.size and labels.min() < 0:
            raise LabelError("labels must be >= 0 (0 = background)")
        labels = labels.astype(np.uint64 if labels.dtype.itemsize > 4 else np.uint32)
    vs = tuple(float(v) for v in voxel_size)
    if len(vs) != 3 or not all(math.isfinite(v) and v > 0 for v in vs):
        raise VoxelSizeError(f"voxel_size must be three positive (z, y, x) nm values, got {voxel_size!r}")
    return labels, vs


def _kimimaro(
    labels: np.ndarray, voxel_size: tuple, config: SkeletonConfig, object_ids, extra_targets=None
) -> dict:
    """Raw TEASAR skeletons of a (z, y, x) array; vertices (x, y, z) nm in the array's frame."""
    from dendrosam.reconstruct.teasar import trace_labels

    return trace_labels(
        labels,
        voxel_size,
        config.teasar_params(),
        object_ids=object_ids,
        dust_threshold=config.dust_threshold,
        fix_branching=config.fix_branching,
        fix_borders=config.fix_borders,
        extra_targets=extra_targets,
    )


def _finish(skel, label: int, voxel_size: tuple, config: SkeletonConfig, source: str) -> nx.Graph:
    """Post-process one kimimaro skeleton and turn it into a smoothed graph."""
    if config.postprocess:
        import kimimaro

        from dendrosam.reconstruct.skeleton_ticks import remove_ticks

        # kimimaro's own tick removal can cut an inner path (see skeleton_ticks); ours never does
        skel = kimimaro.postprocess(skel, dust_threshold=config.cable_dust_threshold, tick_threshold=0)
        if config.tick_threshold > 0 and len(skel.edges):
            skel.edges = remove_ticks(skel.vertices, skel.edges, config.tick_threshold).astype(np.uint32)
            skel = skel.consolidate()
    graph = skeleton_to_graph(skel, label, voxel_size, source=source)
    sigma = config.smooth_sigma * max(voxel_size)
    return smooth_graph(graph, sigma) if sigma > 0 else graph


def skeletonize(
    labels3d: np.ndarray,
    voxel_size: Sequence[float],
    config: SkeletonConfig = SkeletonConfig(),
    object_ids: Iterable[int] | None = None,
) -> dict[int, nx.Graph]:
    """Skeletonize every object of a 3D label volume.

    Parameters
    ----------
    labels3d
        (Z, Y, X) integer labels, 0 = background.
    voxel_size
        (z, y, x) voxel size in nm.
    config
        TEASAR and post-processing parameters.
    object_ids
        Only these labels (default: all).

    Returns
    -------
    dict[int, networkx.Graph]
        One graph per object that survived ``dust_threshold`` (format in the module docstring).
    """
    labels, vs = _check_inputs(labels3d, voxel_size)
    raw = _kimimaro(np.ascontiguousarray(labels), vs, config, object_ids)
    return {
        int(label): _finish(skel, int(label), vs, config, "kimimaro")
        for label, skel in sorted(raw.items())
        if len(skel.vertices)
    }


def skeleton_to_graph(skel, label: int, voxel_size: Sequence[float], source: str = "kimimaro") -> nx.Graph:
    """Convert a kimimaro/osteoid ``Skeleton`` (vertices (x, y, z) nm) into our graph format.

    Parameters
    ----------
    skel
        Skeleton with ``vertices`` (N, 3) in (x, y, z) nm, ``edges`` (M, 2), ``radius`` (N,).
    label, voxel_size, source
        Stored as graph attributes (``voxel_size`` as a (z, y, x) nm tuple).

    Returns
    -------
    networkx.Graph
        Nodes 0..N-1 with ``pos`` (z, y, x) nm and ``radius`` nm; edges with ``length`` nm.
    """
    pos = np.asarray(skel.vertices, dtype=np.float64)[:, ::-1]
    radius = np.asarray(skel.radius, dtype=np.float64).reshape(-1)
    if radius.size != len(pos):
        radius = np.full(len(pos), np.nan)
    graph = nx.Graph(label=int(label), voxel_size=tuple(float(v) for v in voxel_size), source=source)
    graph.add_nodes_from(
        (i, {"pos": tuple(map(float, p)), "radius": float(r)}) for i, (p, r) in enumerate(zip(pos, radius))
    )
    edges = np.asarray(skel.edges, dtype=np.int64).reshape(-1, 2)
    edges = edges[edges[:, 0] != edges[:, 1]]
    graph.add_edges_from(map(tuple, edges.tolist()))
    _set_lengths(graph)
    return graph


def positions(graph: nx.Graph, nodes: Sequence | None = None) -> np.ndarray:
    """(N, 3) array of node ``pos`` (z, y, x nm), in ``nodes`` order (default: graph order)."""
    nodes = list(graph.nodes) if nodes is None else nodes
    return np.array([graph.nodes[n]["pos"] for n in nodes], dtype=np.float64).reshape(-1, 3)


def _set_lengths(graph: nx.Graph) -> None:
    if graph.number_of_edges() == 0:
        return
    u, v = zip(*graph.edges)
    lengths = np.linalg.norm(positions(graph, u) - positions(graph, v), axis=1)
    nx.set_edge_attributes(graph, dict(zip(graph.edges, lengths.tolist())), "length")


def unbranched_paths(graph: nx.Graph) -> list[list]:
    """Split a graph into maximal paths whose interior nodes have degree 2.

    Every edge belongs to exactly one path; a path starts and ends at nodes of degree != 2
    (tips, branch points), except for isolated cycles, which start and end at the same node.
    """
    seen: set[frozenset] = set()
    paths = []
    anchors = [n for n, d in graph.degree if d != 2]
    for start in anchors:
        for nbr in graph.neighbors(start):
            if frozenset((start, nbr)) in seen:
                continue
            path = [start, nbr]
            seen.add(frozenset((start, nbr)))
            while graph.degree[path[-1]] == 2:
                nxt = next((m for m in graph.neighbors(path[-1]) if frozenset((path[-1], m)) not in seen), None)
                if nxt is None:
                    break
                seen.add(frozenset((path[-1], nxt)))
                path.append(nxt)
            paths.append(path)
    for u, v in graph.edges:  # components that are pure cycles
        if frozenset((u, v)) not in seen:
            cycle = [u, v]
            while cycle[-1] != u:
                cycle.append(next(m for m in graph.neighbors(cycle[-1]) if m != cycle[-2]))
            seen.update(frozenset(e) for e in zip(cycle[:-1], cycle[1:]))
            paths.append(cycle)
    return paths


def smooth_graph(graph: nx.Graph, sigma_nm: float) -> nx.Graph:
    """Gaussian-smooth node positions along each unbranched path, in place; update lengths.

    Tips and branch points keep their positions; the interior nodes of each path are replaced by
    a Gaussian average along the path (``sigma_nm`` converted to nodes with the path's mean edge
    length). Radii are unchanged.

    Returns
    -------
    networkx.Graph
        The same graph (for chaining), ``graph.graph["smooth_sigma_nm"]`` set.
    """
    for path in unbranched_paths(graph):
        if len(path) < 3:
            continue
        xyz = positions(graph, path)
        step = np.linalg.norm(np.diff(xyz, axis=0), axis=1).mean()
        if step <= 0:
            continue
        smoothed = gaussian_filter1d(xyz, sigma_nm / step, axis=0, mode="nearest")
        for node, p in zip(path[1:-1], smoothed[1:-1]):
            graph.nodes[node]["pos"] = tuple(map(float, p))
    _set_lengths(graph)
    graph.graph["smooth_sigma_nm"] = float(sigma_nm)
    return graph
