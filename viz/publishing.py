"""Publish a reconstruction for Neuroglancer: precomputed layers (+ optional OME-Zarr).

``DEST/image`` (EM pyramid), ``DEST/segmentation`` (compressed_segmentation pyramid with
``mesh/``, ``skeletons/`` and ``segment_properties/``). Each layer gets a ``.complete`` marker
holding a fingerprint of its input, written last: re-running a finished publish does nothing,
re-running an interrupted one finishes it, and a destination holding a different dataset is
refused unless ``overwrite=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from dendrosam.errors import InputError, OutputError
from dendrosam.viz.precomputed import (
    as_cloudpath,
    get_json,
    put_json,
    write_precomputed_volume,
    write_segment_properties,
)
from dendrosam.viz.rundata import RunData, as_run_data

__all__ = ["PublishResult", "publish", "segment_ids"]

log = logging.getLogger(__name__)
MARKER = ".complete"


@dataclass(frozen=True)
class PublishResult:
    """Where a publish wrote what.

    Attributes
    ----------
    dest : str
        cloud-volume path of the precomputed folder.
    image, segmentation : str or None
        Layer paths (``None`` when that input was absent).
    voxel_sizes : tuple of tuple of float
        (z, y, x) nm of every image/segmentation pyramid level.
    segment_ids : tuple of int
        Object ids present in the segmentation.
    n_meshes, n_skeletons : int
        Objects with a mesh / a skeleton.
    ome_zarr : pathlib.Path or None
        OME-Zarr copy, when requested.
    skipped : tuple of str
        Layers found complete and left as they were.
    """

    dest: str
    image: str | None
    segmentation: str | None
    voxel_sizes: tuple[tuple[float, float, float], ...]
    segment_ids: tuple[int, ...]
    n_meshes: int
    n_skeletons: int
    ome_zarr: Path | None = None
    skipped: tuple[str, ...] = ()


def segment_ids(labels: Any, block: int = 32) -> np.ndarray:
    """Sorted non-zero ids of a (Z, Y, X) label volume, read in z-blocks."""
    import fastremap

    ids: set[int] = set()
    for z0 in range(0, labels.shape[0], block):
        ids.update(int(i) for i in fastremap.unique(np.asarray(labels[z0 : z0 + block])))
    ids.discard(0)
    return np.array(sorted(ids), dtype=np.uint64)


def _fingerprint(kind: str, data: Any, voxel_size: tuple[float, ...], **extra: Any) -> dict[str, Any]:
    """Cheap identity of an input: shape, dtype, voxel size, and a checksum of a few sections."""
    import zlib

    zs = sorted({0, data.shape[0] // 2, data.shape[0] - 1})
    crc = 0
    for z in zs:
        crc = zlib.crc32(np.ascontiguousarray(np.asarray(data[z])).tobytes(), crc)
    return {"kind": kind, "shape": [int(n) for n in data.shape], "dtype": str(np.dtype(data.dtype)),
            "voxel_size": [float(v) for v in voxel_size], "crc32": crc, **extra}


def _check_marker(layer: str, finger: dict[str, Any], overwrite: bool) -> bool:
    """True when ``layer`` is already complete for this input; raise when it holds another one."""
    done = get_json(layer, MARKER)
    if done is None or overwrite:
        return False
    if {k: v for k, v in done.items() if not k.startswith("n_")} == finger:
        return True
    raise OutputError(
        f"{layer} already holds a different published dataset ({done.get('shape')}, "
        f"voxel {done.get('voxel_size')}); choose another destination or pass overwrite=True "
        f"(--overwrite)"
    )


def _numeric_properties(morpho: Any, ids: np.ndarray, limit: int = 8) -> dict[str, np.ndarray]:
    """Numeric morphometric columns aligned with ``ids`` (NaN for objects without a row)."""
    if morpho is None or "label" not in getattr(morpho, "columns", ()):
        return {}
    table = morpho.set_index("label")
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    cols = [c for c in table.columns if is_numeric_dtype(table[c]) and not is_bool_dtype(table[c])][:limit]
    table = table[cols].reindex([int(i) for i in ids])
    return {c: table[c].to_numpy(dtype=float) for c in cols}


def publish(
    run_or_arrays: Any,
    dest: str | Path,
    *,
    image: Any = None,
    labels: Any = None,
    skeletons: Mapping[int, nx.Graph] | None = None,
    voxel_size: tuple[float, float, float] | None = None,
    morphometrics: Any = None,
    mesh: bool = True,
    overwrite: bool = False,
    ome_zarr: str | Path | None = None,
    chunk_size: tuple[int, int, int] = (16, 128, 128),
) -> PublishResult:
    """Write a reconstruction as Neuroglancer precomputed layers.

    Parameters
    ----------
    run_or_arrays : path, RunData, Volume, array or None
        A run folder (read with :func:`load_run_data`), a :class:`RunData`, a ``Volume`` or the
        (Z, Y, X) image array; keyword arguments override its parts.
    dest : str or pathlib.Path
        Local folder or cloud-volume URL (``gs://``, ``s3://``, ``file://``).
    image : array-like, optional
        (Z, Y, X) uint8/uint16 EM image.
    labels : array-like, optional
        (Z, Y, X) 3D object ids.
    skeletons : mapping, optional
        id -> networkx graph with node ``pos`` (z, y, x) nm and ``radius`` nm.
    voxel_size : tuple of float, optional
        (z, y, x) nm; required for bare arrays.
    morphometrics : pandas.DataFrame, optional
        Numeric columns become segment properties shown for the selected object.
    mesh : bool
        Compute and write meshes (needs the labels in memory).
    overwrite : bool
        Replace a destination that holds a different dataset.
    ome_zarr : str or pathlib.Path, optional
        Also write an OME-Zarr copy (image + labels) there.
    chunk_size : tuple of int
        (z, y, x) chunk of every level; writing streams z-blocks of this depth.

    Returns
    -------
    PublishResult
    """
    data: RunData = as_run_data(
        run_or_arrays, image=image, labels=labels, skeletons=skeletons,
        voxel_size=voxel_size, morphometrics=morphometrics,
    )
    if data.image is None and data.labels is None:
        raise InputError("nothing to publish: give an image and/or 3D labels (or a run folder holding them)")
    if data.skeletons and data.labels is None:
        raise InputError("skeletons are published inside the segmentation layer: the 3D labels are needed too")
    root = as_cloudpath(dest)
    vs = data.voxel_size
    skipped: list[str] = []
    sizes: list[tuple[float, float, float]] = []
    image_path = seg_path = None
    if data.image is not None:
        image_path = f"{root}/image"
        finger = _fingerprint("image", data.image, vs, chunk=list(chunk_size))
        if _check_marker(image_path, finger, overwrite):
            skipped.append("image")
            sizes = [tuple(reversed(s["resolution"])) for s in get_json(image_path, "info")["scales"]]
        else:
            sizes = write_precomputed_volume(image_path, data.image, vs, layer_type="image", chunk_size=chunk_size)
            put_json(image_path, MARKER, finger)
    ids = np.zeros(0, np.uint64)
    n_mesh = n_skel = 0
    if data.labels is not None:
        from dendrosam.viz.meshes import mesh_labels, write_meshes, write_skeletons

        seg_path = f"{root}/segmentation"
        ids = segment_ids(data.labels)
        finger = _fingerprint("segmentation", data.labels, vs, chunk=list(chunk_size), mesh=bool(mesh),
                              skeletons=sorted(int(i) for i in data.skeletons))
        if _check_marker(seg_path, finger, overwrite):
            skipped.append("segmentation")
            done = get_json(seg_path, MARKER)
            n_mesh, n_skel = done.get("n_meshes", 0), done.get("n_skeletons", 0)
        else:
            seg_sizes = write_precomputed_volume(
                seg_path, data.labels, vs, layer_type="segmentation", chunk_size=chunk_size,
                mesh="mesh" if mesh else None, skeletons="skeletons" if data.skeletons else None,
            )
            sizes = sizes or seg_sizes
            if mesh:
                n_mesh = write_meshes(seg_path, mesh_labels(np.asarray(data.labels), vs))
            if data.skeletons:
                n_skel = write_skeletons(seg_path, data.skeletons)
            write_segment_properties(seg_path, ids, _numeric_properties(data.morphometrics, ids))
            put_json(seg_path, MARKER, {**finger, "n_meshes": n_mesh, "n_skeletons": n_skel})
        if not sizes:
            sizes = [tuple(reversed(s["resolution"])) for s in get_json(seg_path, "info")["scales"]]
    zarr_path = None
    if ome_zarr is not None:
        from dendrosam.viz.ome_zarr import write_viewer_ome_zarr

        if data.image is None:
            raise InputError(f"--ome-zarr {ome_zarr}: an OME-Zarr copy needs the image volume")
        zarr_path = write_viewer_ome_zarr(ome_zarr, data.image, vs, data.labels, chunks=chunk_size)
    put_json(root, MARKER, {"image": image_path is not None, "segmentation": seg_path is not None})
    log.info("published %s (%d objects, %d meshes, %d skeletons)", root, len(ids), n_mesh, n_skel)
    return PublishResult(
        dest=root, image=image_path, segmentation=seg_path,
        voxel_sizes=tuple(tuple(float(v) for v in s) for s in sizes),
        segment_ids=tuple(int(i) for i in ids), n_meshes=n_mesh, n_skeletons=n_skel,
        ome_zarr=zarr_path, skipped=tuple(skipped),
    )
