"""OME-Zarr (NGFF 0.4, zarr format 2) that Neuroglancer, napari and Fiji open directly.

Layout: ``DEST/`` is the image multiscale group (``0``, ``1``, ...) with
``DEST/labels/labels3d`` as an NGFF label multiscale; scales are in nanometres. Open it in
Neuroglancer as ``zarr2://<url of DEST>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.viz.pyramid import iter_pyramid_blocks, pyramid_factors

__all__ = ["write_viewer_ome_zarr"]


def _multiscales(name: str, sizes: list[np.ndarray]) -> list[dict[str, Any]]:
    return [
        {
            "version": "0.4",
            "name": name,
            "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
            "datasets": [
                {"path": str(m), "coordinateTransformations": [{"type": "scale", "scale": [float(v) for v in s]}]}
                for m, s in enumerate(sizes)
            ],
        }
    ]


def _write_pyramid(
    group: Any, data: Any, voxel_size: tuple[float, float, float], *, seg: bool, chunks: tuple[int, int, int]
) -> list[np.ndarray]:
    shape = tuple(int(n) for n in data.shape)
    dtype = np.dtype(np.uint32) if seg and np.dtype(data.dtype).kind != "u" else np.dtype(data.dtype)
    factors = pyramid_factors(shape, voxel_size, min_size=min(chunks[1:]) // 2)
    sizes, shapes = [np.asarray(voxel_size, float)], [np.asarray(shape)]
    for f in factors:
        sizes.append(sizes[-1] * f)
        shapes.append(np.ceil(shapes[-1] / f).astype(int))
    arrays = [
        group.create_array(
            str(m), shape=tuple(int(n) for n in s), dtype=dtype, chunks=chunks,
            chunk_key_encoding={"name": "v2", "separator": "/"}, fill_value=0, overwrite=True,
        )
        for m, s in enumerate(shapes)
    ]
    for m, zs, arr in iter_pyramid_blocks(data, factors, chunks[0], dtype, seg):
        arrays[m][zs : zs + arr.shape[0]] = arr
    return sizes


def write_viewer_ome_zarr(
    dest: str | Path,
    image: Any,
    voxel_size: tuple[float, float, float],
    labels: Any = None,
    *,
    chunks: tuple[int, int, int] = (16, 128, 128),
) -> Path:
    """Write an image (and optional 3D labels) as a multiscale OME-Zarr group.

    Parameters
    ----------
    dest : str or pathlib.Path
        Group folder to create (replaced if it exists).
    image : array-like
        (Z, Y, X) image, read in z-blocks.
    voxel_size : tuple of float
        (z, y, x) nm.
    labels : array-like, optional
        (Z, Y, X) object ids, stored as ``labels/labels3d``.
    chunks : tuple of int
        (z, y, x) chunk shape of every level.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    import zarr

    dest = Path(dest)
    root = zarr.open_group(str(dest), mode="w", zarr_format=2)
    sizes = _write_pyramid(root, image, voxel_size, seg=False, chunks=chunks)
    root.attrs["multiscales"] = _multiscales("raw", sizes)
    if labels is not None:
        lab_root = root.create_group("labels")
        lab_root.attrs["labels"] = ["labels3d"]
        lab = lab_root.create_group("labels3d")
        sizes = _write_pyramid(lab, labels, voxel_size, seg=True, chunks=chunks)
        lab.attrs["multiscales"] = _multiscales("labels3d", sizes)
        lab.attrs["image-label"] = {"version": "0.4", "source": {"image": "../../"}}
    return dest
