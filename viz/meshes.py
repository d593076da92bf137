"""Per-object meshes (zmesh) and skeletons (cloud-volume) for a precomputed segmentation layer.

Both are stored in physical coordinates (nm, x/y/z order as Neuroglancer expects), so they
overlay the segmentation exactly whatever the anisotropy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np

from dendrosam.viz.precomputed import get_json, put_json

__all__ = ["mesh_labels", "write_meshes", "graph_to_skeleton", "write_skeletons"]

RADIUS_ATTRIBUTE = {"id": "radius", "data_type": "float32", "num_components": 1}


def mesh_labels(
    labels: np.ndarray,
    voxel_size: tuple[float, float, float],
    *,
    reduction_factor: int = 10,
    max_error: float | None = None,
) -> dict[int, Any]:
    """Simplified surface meshes of every object, in nm.

    Parameters
    ----------
    labels : numpy.ndarray
        (Z, Y, X) integer labels, 0 = background.
    voxel_size : tuple of float
        (z, y, x) nm; the mesher works in this anisotropic space.
    reduction_factor : int
        Target triangle reduction of the quadric simplification (0 = none).
    max_error : float, optional
        Largest vertex displacement of the simplification in nm (default: one voxel, the
        coarsest axis).

    Returns
    -------
    dict
        id -> ``zmesh.Mesh`` with vertices (x, y, z) in nm, voxel-centred so that voxel
        ``i`` spans ``[i, i + 1) * voxel_size`` like Neuroglancer's volume rendering.
    """
    import zmesh

    res = np.array([float(v) for v in reversed(voxel_size)], dtype=np.float32)  # x, y, z
    mesher = zmesh.Mesher(tuple(res))
    # a zero border closes objects touching the volume edge; its one-voxel shift is undone below
    padded = np.pad(np.asarray(labels), 1)
    mesher.mesh(padded.T, close=False)  # (X, Y, Z) view: zmesh's axis order
    err = float(max(voxel_size)) if max_error is None else float(max_error)
    out = {}
    for obj in mesher.ids():
        if obj == 0:
            continue
        mesh = mesher.get(
            obj, normals=False, reduction_factor=reduction_factor, max_error=err, voxel_centered=True
        )
        mesh.vertices = (mesh.vertices - res).astype(np.float32)
        out[int(obj)] = mesh
    mesher.clear()
    return out


def write_meshes(cloudpath: str, meshes: Mapping[int, Any], *, directory: str = "mesh") -> int:
    """Write legacy (unsharded) meshes and their ``info`` into a segmentation layer.

    Parameters
    ----------
    cloudpath : str
        Segmentation layer path.
    meshes : mapping
        id -> mesh with ``vertices`` (x, y, z nm) and ``faces``.
    directory : str
        Mesh sub-directory (must match the layer info's ``mesh`` key).

    Returns
    -------
    int
        Number of meshes written.
    """
    from cloudvolume import CloudVolume
    from cloudvolume.mesh import Mesh

    info = get_json(cloudpath, "info")
    info["mesh"] = directory
    put_json(cloudpath, "info", info)
    cv = CloudVolume(cloudpath, progress=False)
    batch = [
        Mesh(np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.uint32), None, segid=int(i))
        for i, m in meshes.items()
        if len(m.faces)
    ]
    if batch:
        cv.mesh.put(batch, compress=False)
    # mesh.put writes no info file, without it Neuroglancer does not find the meshes
    put_json(f"{cloudpath}/{directory}", "info", {"@type": "neuroglancer_legacy_mesh"})
    return len(batch)


def graph_to_skeleton(segid: int, graph: nx.Graph) -> Any:
    """Convert a skeleton graph (node ``pos`` (z, y, x) nm, ``radius`` nm) to a cloud-volume Skeleton.

    Nodes are numbered in sorted order of their ids, so the conversion is deterministic.

    Parameters
    ----------
    segid : int
        Object id.
    graph : networkx.Graph
        The skeleton graph.

    Returns
    -------
    cloudvolume.Skeleton
        Vertices (x, y, z) nm, edges, radii (NaN radius -> 0).
    """
    from cloudvolume import Skeleton

    nodes = sorted(graph.nodes)
    index = {n: k for k, n in enumerate(nodes)}
    pos = np.array([graph.nodes[n]["pos"] for n in nodes], dtype=np.float32).reshape(-1, 3)
    radius = np.array([graph.nodes[n].get("radius", 0.0) for n in nodes], dtype=np.float32)
    edges = np.array([(index[a], index[b]) for a, b in graph.edges], dtype=np.uint32).reshape(-1, 2)
    return Skeleton(
        vertices=pos[:, ::-1].copy(),
        edges=edges,
        radii=np.nan_to_num(radius),
        segid=int(segid),
        space="physical",
        extra_attributes=[RADIUS_ATTRIBUTE],
    )


def write_skeletons(
    cloudpath: str, graphs: Mapping[int, nx.Graph], *, directory: str = "skeletons"
) -> int:
    """Write skeleton graphs with a ``radius`` vertex attribute into a segmentation layer.

    Parameters
    ----------
    cloudpath : str
        Segmentation layer path.
    graphs : mapping
        id -> skeleton graph (node ``pos`` (z, y, x) nm and ``radius`` nm).
    directory : str
        Skeleton sub-directory.

    Returns
    -------
    int
        Number of skeletons written (graphs without nodes are skipped).
    """
    from cloudvolume import CloudVolume

    info = get_json(cloudpath, "info")
    info["skeletons"] = directory
    put_json(cloudpath, "info", info)
    put_json(
        f"{cloudpath}/{directory}",
        "info",
        {
            "@type": "neuroglancer_skeletons",
            "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],  # vertices already in nm
            "vertex_attributes": [RADIUS_ATTRIBUTE],
            "spatial_index": None,
        },
    )
    # uncompressed: a plain static server (no Content-Encoding) must serve ``skeletons/<id>``
    cv = CloudVolume(cloudpath, progress=False, compress=False)
    skels = [graph_to_skeleton(i, g) for i, g in graphs.items() if g.number_of_nodes()]
    if skels:
        cv.skeleton.upload(skels)
    return len(skels)
