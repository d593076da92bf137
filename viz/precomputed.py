"""Neuroglancer precomputed volumes with cloud-volume: image and segmentation pyramids.

Volumes are written in z-blocks (each block is downsampled on its own), so a lazy (zarr, tiff)
source never has to fit in memory. Destinations are cloud-volume paths: ``file://`` locally,
``gs://`` or ``s3://`` with the user's credentials. cloud-volume orders axes x, y, z; everything
here takes and returns (z, y, x) and converts at the boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.viz.pyramid import iter_pyramid_blocks, pyramid_factors

__all__ = [
    "as_cloudpath",
    "write_precomputed_volume",
    "write_segment_properties",
    "put_json",
    "get_json",
]


def as_cloudpath(dest: str | Path) -> str:
    """Return a cloud-volume path: local paths become absolute ``file://`` URLs."""
    text = str(dest)
    if "://" in text:
        return text.rstrip("/")
    return "file://" + str(Path(text).expanduser().resolve())


def put_json(cloudpath: str, name: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``cloudpath/name`` (any cloud-files destination)."""
    from cloudfiles import CloudFiles

    CloudFiles(cloudpath).put_json(name, obj, cache_control="no-cache")


def get_json(cloudpath: str, name: str) -> Any | None:
    """Read ``cloudpath/name`` as JSON, or ``None`` when it does not exist."""
    from cloudfiles import CloudFiles

    data = CloudFiles(cloudpath).get(name)
    return None if data is None else json.loads(data)


def _xyz(v: Sequence[float]) -> list[float]:
    return [float(v[2]), float(v[1]), float(v[0])]


def write_precomputed_volume(
    cloudpath: str,
    data: Any,
    voxel_size: tuple[float, float, float],
    *,
    layer_type: str,
    chunk_size: tuple[int, int, int] = (16, 128, 128),
    min_size: int = 32,
    mesh: str | None = None,
    skeletons: str | None = None,
) -> list[tuple[float, float, float]]:
    """Write a (Z, Y, X) volume and its downsampled pyramid as a precomputed layer.

    Parameters
    ----------
    cloudpath : str
        Destination layer (``file://...``, ``gs://...``).
    data : array-like
        (Z, Y, X) array; sliced along z only, so lazy arrays are read one block at a time.
    voxel_size : tuple of float
        (z, y, x) nm.
    layer_type : {"image", "segmentation"}
        Images use raw encoding and block means; segmentations use ``compressed_segmentation``
        (uint32/uint64) and the block mode.
    chunk_size : tuple of int
        (z, y, x) chunk of every level.
    min_size : int
        Smallest y/x extent of the coarsest level.
    mesh, skeletons : str, optional
        Sub-directory names recorded in the segmentation info.

    Returns
    -------
    list of tuple of float
        The (z, y, x) voxel size of each level, in nm.
    """
    from cloudvolume import CloudVolume

    shape = tuple(int(n) for n in data.shape)
    dtype = np.dtype(data.dtype)
    seg = layer_type == "segmentation"
    if seg and dtype not in (np.uint32, np.uint64):
        dtype = np.dtype(np.uint32)
    factors = pyramid_factors(shape, voxel_size, min_size=min_size)
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type=layer_type,
        data_type=dtype.name,
        encoding="compressed_segmentation" if seg else "raw",
        resolution=_xyz(voxel_size),
        voxel_offset=[0, 0, 0],
        volume_size=_xyz(shape),
        chunk_size=_xyz(chunk_size),
        mesh=mesh,
        skeletons=skeletons,
    )
    cv = CloudVolume(cloudpath, info=info, progress=False, non_aligned_writes=True)
    total = np.ones(3, dtype=int)
    for f in factors:
        total *= f  # cloud-volume's add_scale factor is relative to level 0
        cv.add_scale(_xyz(total), chunk_size=_xyz(chunk_size))
    cv.commit_info()
    sizes = [tuple(float(r) for r in reversed(s["resolution"])) for s in cv.info["scales"]]

    vols = [CloudVolume(cloudpath, mip=m, progress=False, fill_missing=True) for m in range(len(sizes))]
    for m, zs, arr in iter_pyramid_blocks(data, factors, chunk_size[0], dtype, seg):
        vols[m][:, :, zs : zs + arr.shape[0]] = np.ascontiguousarray(arr.transpose(2, 1, 0))
    return sizes


def write_segment_properties(
    cloudpath: str,
    ids: Sequence[int],
    numeric: Mapping[str, Sequence[float]] | None = None,
    *,
    directory: str = "segment_properties",
) -> None:
    """Write neuroglancer ``segment_properties`` (ids as labels + numeric columns) and link them.

    Parameters
    ----------
    cloudpath : str
        A segmentation layer already holding an ``info``.
    ids : sequence of int
        Object ids.
    numeric : mapping, optional
        Column name -> one value per id (NaN allowed), shown when a segment is selected.
    directory : str
        Sub-directory of the layer.
    """
    ids = [int(i) for i in ids]
    props: list[dict[str, Any]] = [
        {"id": "label", "type": "label", "values": [f"dendrite {i}" for i in ids]}
    ]
    for name, values in (numeric or {}).items():
        vals = np.asarray(values, dtype=np.float32)
        if vals.shape != (len(ids),):
            raise ValueError(f"property {name!r} has {vals.size} values for {len(ids)} ids")
        props.append(
            {
                "id": str(name),
                "type": "number",
                "data_type": "float32",
                "values": [None if not np.isfinite(v) else float(v) for v in vals],
            }
        )
    put_json(
        f"{cloudpath}/{directory}",
        "info",
        {
            "@type": "neuroglancer_segment_properties",
            "inline": {"ids": [str(i) for i in ids], "properties": props},
        },
    )
    info = get_json(cloudpath, "info")
    info["segment_properties"] = directory
    put_json(cloudpath, "info", info)
