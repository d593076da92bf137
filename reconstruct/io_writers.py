"""Writers: OME-Zarr image + label groups (streamed block by block) and OME-TIFF.

OME-Zarr layout written here (0.5 on zarr v3 by default, 0.4 on zarr v2)::

    out.zarr/                 image group, multiscales "raw": levels 0, 1, ... (2x in y, x)
    out.zarr/labels/          {"labels": ["neurons", ...]}
    out.zarr/labels/neurons/  image-label group, same voxel size, levels by striding

Axes are ``z, y, x`` with unit ``nanometer``; level ``k`` has scale ``(vz, vy*2**k, vx*2**k)``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import InputError, OutputError
from dendrosam.reconstruct.volume import Volume, validate_voxel_size

__all__ = ["create_ome_zarr_array", "write_ome_zarr", "write_tiff", "iter_blocks"]

DEFAULT_CHUNKS = (1, 512, 512)


def iter_blocks(data: Any, block: int = 16) -> Iterator[np.ndarray]:
    """Yield (z, Y, X) blocks of ``data``: a Volume, an array-like or an iterable of 2D/3D arrays."""
    if isinstance(data, Volume):
        for _, arr in data.iter_blocks(block):
            yield arr
        return
    if hasattr(data, "shape") and hasattr(data, "__getitem__"):
        shape = tuple(data.shape)
        if len(shape) == 2:
            yield np.asarray(data[...])[None]
            return
        if len(shape) != 3:
            raise InputError(f"expected a (Z, Y, X) array to write, got shape {shape}")
        for z0 in range(0, shape[0], block):
            yield np.asarray(data[z0 : z0 + block])
        return
    for item in data:
        arr = np.asarray(item)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise InputError(f"expected 2D sections or 3D z-blocks, got an item of shape {arr.shape}")
        yield arr


def _compressor(name: str | None, zarr_format: int) -> Any:
    if name in (None, "none"):
        return None
    if name != "zstd":
        raise InputError(f"compressor {name!r} not supported (use 'zstd' or None)")
    if zarr_format == 3:
        from zarr.codecs import ZstdCodec

        return ZstdCodec(level=3)
    from numcodecs import Zstd

    return Zstd(level=3)


def _multiscale(name: str, voxel_size: tuple, n_levels: int, label: bool, version: str) -> dict:
    datasets = []
    for k in range(n_levels):
        f = 2**k
        scale = [voxel_size[0], voxel_size[1] * f, voxel_size[2] * f]
        transforms: list[dict] = [{"type": "scale", "scale": scale}]
        if not label and f > 1:  # mean-pooled pixels are centred between their sources
            offset = [0.0, (f - 1) / 2 * voxel_size[1], (f - 1) / 2 * voxel_size[2]]
            transforms.append({"type": "translation", "translation": offset})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    ms = {
        "name": name,
        "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        "datasets": datasets,
    }
    if version == "0.4":
        ms["version"] = "0.4"
    return ms


def _set_ome_attrs(group: Any, key: str, value: Any, zarr_format: int) -> None:
    if zarr_format == 3:
        ome = dict(group.attrs.get("ome", {}))
        ome["version"] = "0.5"
        ome[key] = value
        group.attrs["ome"] = ome
    else:
        group.attrs[key] = value


def _open_target(
    path: Path, name: str, label: str | None, overwrite: bool, zarr_format: int
) -> tuple[Any, Any]:
    """(root group, group that will hold the levels), creating what is missing."""
    import zarr

    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a zarr folder")
    if label is None and path.exists() and overwrite:
        shutil.rmtree(path)
    try:
        root = zarr.open_group(str(path), mode="a", zarr_format=zarr_format)
    except Exception as exc:
        raise OutputError(f"{path}: cannot create or open the zarr store ({exc})") from None
    if label is None:
        target = root
    else:
        labels = root.require_group("labels")
        names = list(_get_ome(labels, "labels", zarr_format) or [])
        if label not in names:
            _set_ome_attrs(labels, "labels", names + [label], zarr_format)
        target = labels.require_group(label)
    if "0" in target and not overwrite:
        what = f"label {label!r}" if label else f"image {name!r}"
        raise OutputError(f"{path}: already holds {what}; pass overwrite=True (--overwrite on the command line) to replace it")
    return root, target


def _get_ome(group: Any, key: str, zarr_format: int) -> Any:
    attrs = group.attrs
    return attrs.get("ome", {}).get(key) if zarr_format == 3 else attrs.get(key)


def create_ome_zarr_array(
    path: str | Path,
    shape: tuple[int, int, int],
    dtype: Any,
    voxel_size: Any,
    name: str = "raw",
    label: str | None = None,
    chunks: tuple[int, int, int] = DEFAULT_CHUNKS,
    compressor: str | None = "zstd",
    overwrite: bool = False,
    zarr_format: int = 3,
) -> Any:
    """Create an empty chunked level-0 array in an OME-Zarr store for later block writes.

    Writes aligned to ``chunks`` may come from several processes at once (zarr writes each
    chunk as its own object). With ``label`` the array is ``labels/<label>/0`` of an existing or
    new image store; otherwise it is the image ``0`` at the store root.

    Returns
    -------
    zarr.Array
        Filled with 0 until written.
    """
    vs = validate_voxel_size(voxel_size)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"{path}: shape must be three positive sizes (Z, Y, X), got {shape}")
    path = Path(path)
    version = "0.5" if zarr_format == 3 else "0.4"
    _, target = _open_target(path, name, label, overwrite, zarr_format)
    # z chunks are not clipped: a streamed array grows along z
    yx = tuple(max(1, min(int(c), s)) for c, s in zip(chunks[1:], shape[1:]))
    chunks = (max(1, int(chunks[0])), *yx)
    kwargs: dict = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
    comp = _compressor(compressor, zarr_format)
    arr = target.create_array(
        "0", shape=shape, chunks=chunks, dtype=np.dtype(dtype), fill_value=0,
        compressors=comp if comp is not None else None, overwrite=overwrite, **kwargs,
    )  # fmt: skip
    _set_ome_attrs(target, "multiscales", [_multiscale(label or name, vs, 1, bool(label), version)],
                   zarr_format)  # fmt: skip
    if label:
        _set_ome_attrs(target, "image-label",
                       {"version": version, "source": {"image": "../../"}}, zarr_format)  # fmt: skip
    return arr


def _downsample(block: np.ndarray, label: bool) -> np.ndarray:
    """Halve y and x: stride for labels, 2x2 mean (edge-padded) for images."""
    if label:
        return block[:, ::2, ::2]
    z, y, x = block.shape
    padded = np.pad(block, ((0, 0), (0, y % 2), (0, x % 2)), mode="edge").astype(np.float64)
    pooled = padded.reshape(z, (y + 1) // 2, 2, (x + 1) // 2, 2).mean(axis=(2, 4))
    if np.issubdtype(block.dtype, np.integer):
        pooled = np.rint(pooled)
    return pooled.astype(block.dtype)


def _write_stream(
    path: Path, blocks: Iterable[np.ndarray], vs: tuple, name: str, label: str | None,
    chunks: tuple, compressor: str | None, overwrite: bool, n_levels: int, zarr_format: int,
) -> Any:  # fmt: skip
    """Write blocks to level 0 (appending), then levels 1.. from the level below."""
    arr = None
    for block in blocks:
        if arr is None:
            arr = create_ome_zarr_array(path, block.shape, block.dtype, vs, name, label,
                                        chunks, compressor, overwrite, zarr_format)  # fmt: skip
            arr[...] = block
        else:
            if block.shape[1:] != arr.shape[1:]:
                raise InputError(f"{path}: section shape {block.shape[1:]} differs from the "
                                 f"first section's {arr.shape[1:]}")  # fmt: skip
            arr.append(block.astype(arr.dtype, copy=False), axis=0)
    if arr is None:
        raise InputError(f"{path}: nothing to write (no sections given)")
    import zarr

    target = zarr.open_group(str(path), mode="a", zarr_format=zarr_format)
    if label:
        target = target["labels"][label]
    prev = arr
    step = max(8, arr.chunks[0])
    comp = _compressor(compressor, zarr_format)
    kwargs: dict = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
    for k in range(1, n_levels):
        shape = (prev.shape[0], (prev.shape[1] + 1) // 2, (prev.shape[2] + 1) // 2)
        ch = tuple(max(1, min(int(c), s)) for c, s in zip(chunks, shape))
        cur = target.create_array(str(k), shape=shape, chunks=ch, dtype=prev.dtype, fill_value=0,
                                  compressors=comp, overwrite=True, **kwargs)  # fmt: skip
        for z0 in range(0, shape[0], step):
            cur[z0 : z0 + step] = _downsample(np.asarray(prev[z0 : z0 + step]), bool(label))
        prev = cur
    version = "0.5" if zarr_format == 3 else "0.4"
    _set_ome_attrs(target, "multiscales",
                   [_multiscale(label or name, vs, n_levels, bool(label), version)],
                   zarr_format)  # fmt: skip
    return arr


def write_ome_zarr(
    path: str | Path,
    data: Any,
    voxel_size: Any = None,
    name: str = "raw",
    labels: dict[str, Any] | None = None,
    chunks: tuple[int, int, int] = DEFAULT_CHUNKS,
    compressor: str | None = "zstd",
    overwrite: bool = False,
    n_levels: int = 1,
    zarr_format: int = 3,
    block: int = 16,
) -> Path:
    """Write an image (and optional label volumes) as an OME-Zarr store, block by block.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.zarr`` folder to create.
    data : Volume, array-like or iterable
        A (Z, Y, X) array, a :class:`Volume`, or an iterable (e.g. a generator) of 2D sections
        or 3D z-blocks; only one block is in memory at a time.
    voxel_size : sequence of 3 float, optional
        ``(z, y, x)`` nm; taken from ``data`` when it is a :class:`Volume`.
    name : str
        Name of the image multiscale.
    labels : dict, optional
        ``{name: labels}`` written as ``labels/<name>`` (same forms as ``data``).
    chunks : tuple of 3 int
        Chunk shape, clipped to the array shape.
    compressor : {"zstd", None}
    overwrite : bool
        Replace an existing store (otherwise :class:`OutputError`).
    n_levels : int
        Number of resolution levels (each halves y and x).
    zarr_format : {3, 2}
        3 writes OME-Zarr 0.5, 2 writes OME-Zarr 0.4.
    block : int
        Sections per block when ``data`` is an array.

    Returns
    -------
    pathlib.Path
    """
    if voxel_size is None:
        if not isinstance(data, Volume):
            raise InputError(f"{path}: voxel_size is required unless data is a Volume")
        voxel_size = data.voxel_size
    vs = validate_voxel_size(voxel_size)
    if n_levels < 1:
        raise InputError(f"{path}: n_levels must be >= 1, got {n_levels}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass overwrite=True (--overwrite on the command line) to replace it")
    _write_stream(path, iter_blocks(data, block), vs, name, None, chunks, compressor,
                  overwrite, n_levels, zarr_format)  # fmt: skip
    for label_name, lab in (labels or {}).items():
        _write_stream(path, iter_blocks(lab, block), vs, name, label_name, chunks, compressor,
                      True, n_levels, zarr_format)  # fmt: skip
    return path


def write_tiff(
    path: str | Path,
    data: Any,
    voxel_size: Any = None,
    compression: str | None = "zlib",
    overwrite: bool = False,
) -> Path:
    """Write a (Z, Y, X) volume as OME-TIFF with physical sizes in nm, one page per section.

    ``data`` may be a :class:`Volume` or any array-like; sections are written one at a time.
    """
    if voxel_size is None:
        if not isinstance(data, Volume):
            raise InputError(f"{path}: voxel_size is required unless data is a Volume")
        voxel_size = data.voxel_size
    vz, vy, vx = validate_voxel_size(voxel_size)
    import tifffile

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass overwrite=True (--overwrite on the command line) to replace it")
    vol = data if isinstance(data, Volume) else None
    shape = tuple(int(s) for s in data.shape)
    if len(shape) == 2:
        data, shape = np.asarray(data)[None], (1,) + shape
    if len(shape) != 3:
        raise InputError(f"{path}: expected a (Z, Y, X) volume, got shape {shape}")
    dtype = np.dtype(data.dtype)

    def pages() -> Iterator[np.ndarray]:
        for z in range(shape[0]):
            yield vol.section(z) if vol is not None else np.asarray(data[z])

    meta = {
        "axes": "ZYX",
        "PhysicalSizeZ": vz, "PhysicalSizeZUnit": "nm",
        "PhysicalSizeY": vy, "PhysicalSizeYUnit": "nm",
        "PhysicalSizeX": vx, "PhysicalSizeXUnit": "nm",
    }  # fmt: skip
    big = np.prod(shape) * dtype.itemsize > 2**31
    try:
        tifffile.imwrite(path, pages(), shape=shape, dtype=dtype, ome=True, metadata=meta,
                         compression=compression, bigtiff=bool(big))  # fmt: skip
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from None
    return path
