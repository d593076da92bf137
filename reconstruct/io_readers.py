"""One reader per storage format: each returns a lazy array, a voxel size (or None) and provenance.

Readers do not validate dimensions or apply defaults; :func:`dendrosam.reconstruct.io.open_volume`
does that once for every format. Voxel sizes are returned ``(z, y, x)`` in nm, with ``None`` for an
axis the metadata does not state.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import DendrosamError, FormatError, InputError
from dendrosam.reconstruct.io_arrays import (
    AxisView,
    CheckedArray,
    PrecomputedArray,
    SliceFolderArray,
)

__all__ = [
    "Opened",
    "SLICE_SUFFIXES",
    "corrupt_as_format_error",
    "TIFF_SUFFIXES",
    "HDF5_SUFFIXES",
    "unit_to_nm",
    "read_tiff",
    "read_slice_folder",
    "read_zarr",
    "read_hdf5",
    "read_precomputed",
    "read_npy",
    "is_precomputed_dir",
    "natural_key",
    "split_h5_path",
    "squeeze_axes",
]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
SLICE_SUFFIXES = (".tif", ".tiff", ".png")

_UNITS_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "\\u00b5m": 1e3, "micron": 1e3, "micrometer": 1e3,
    "micrometre": 1e3, "microns": 1e3,
    "mm": 1e6, "millimeter": 1e6, "millimetre": 1e6,
    "cm": 1e7, "m": 1e9, "meter": 1e9, "metre": 1e9,
    "å": 0.1, "a": 0.1, "angstrom": 0.1, "pm": 1e-3, "picometer": 1e-3,
}  # fmt: skip

VoxelNm = tuple[float | None, float | None, float | None]


@dataclass(frozen=True)
class Opened:
    """What a reader found: the lazy array (any ndim), its axes, voxel size and provenance."""

    data: Any
    axes: str
    voxel_size: VoxelNm
    provenance: dict = field(default_factory=dict)


def unit_to_nm(unit: str | None, default: str = "nm") -> float | None:
    """Factor converting a length in ``unit`` to nm (None for an unknown unit such as 'pixel')."""
    key = (unit or default).strip().lower()
    return _UNITS_NM.get(key)


def _scaled(value: Any, unit: str | None, default_unit: str) -> float | None:
    factor = unit_to_nm(unit, default_unit)
    if value is None or factor is None:
        return None
    return float(value) * factor


@contextmanager
def corrupt_as_format_error(source: Any, what: str) -> Iterator[None]:
    """Re-raise whatever a parser throws on a damaged file as :class:`FormatError`.

    Parsers of third-party formats raise library-specific types on corrupt input
    (``json.JSONDecodeError``, ``UnicodeDecodeError``, ``RuntimeError`` from HDF5 or tifffile,
    ``ZeroDivisionError``, ``struct.error``, ...): none of them is a bug of ours, so all become one
    typed error naming the file. :class:`~dendrosam.errors.DendrosamError` passes unchanged.
    """
    try:
        yield
    except DendrosamError:
        raise
    except Exception as exc:
        raise FormatError(f"{source}: {what} ({type(exc).__name__}: {exc})") from None


@contextmanager
def _tifffile_warnings() -> Iterator[list[str]]:
    """Collect tifffile's logged warnings (it logs, not raises, on truncated files)."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    log = logging.getLogger("tifffile")
    handler = _Collect(level=logging.WARNING)
    log.addHandler(handler)
    try:
        yield messages
    finally:
        log.removeHandler(handler)


def _ome_voxel_size(tf: Any) -> VoxelNm:
    import tifffile

    try:
        ome = tifffile.xml2dict(tf.ome_metadata)["OME"]
        image = ome["Image"][0] if isinstance(ome["Image"], list) else ome["Image"]
        px = image["Pixels"]
    except (KeyError, TypeError, ValueError, IndexError, SyntaxError):  # SyntaxError: bad XML
        return (None, None, None)
    # OME's default unit for physical sizes is the micrometre.
    return tuple(  # type: ignore[return-value]
        _scaled(px.get(f"PhysicalSize{a}"), px.get(f"PhysicalSize{a}Unit"), "µm") for a in "ZYX"
    )


def _imagej_voxel_size(tf: Any) -> VoxelNm:
    meta = tf.imagej_metadata or {}
    unit = meta.get("unit")
    if unit in (None, "", "pixel", "pixels"):
        return (None, None, None)
    page = tf.pages[0]
    sizes: list[float | None] = []
    for tag in ("YResolution", "XResolution"):
        t = page.tags.get(tag)
        num, den = t.value if t is not None else (0, 1)
        sizes.append(_scaled(den / num, unit, "nm") if num else None)
    z = _scaled(meta.get("spacing"), unit, "nm") if meta.get("spacing") else None
    return (z, sizes[0], sizes[1])


def read_tiff(path: Path, level: int = 0) -> Opened:
    """OME-TIFF, ImageJ hyperstack or plain multi-page TIFF, lazily through ``aszarr``."""
    import tifffile
    import zarr

    with _tifffile_warnings() as logged:
        try:
            tf = tifffile.TiffFile(path)
        except Exception as exc:  # TiffFileError, struct.error, TypeError on damaged tags, ...
            raise FormatError(f"{path}: not a readable TIFF ({exc})") from None
        try:
            series = tf.series[0]
            levels = len(series.levels)
            if not 0 <= level < levels:
                raise InputError(f"{path}: level {level} requested, the file has {levels}")
            lev = series.levels[level]
            last = tf.pages[len(tf.pages) - 1]
            end = max((o + n for o, n in zip(last.dataoffsets, last.databytecounts)), default=0)
        except DendrosamError:
            tf.close()
            raise
        except Exception as exc:  # tifffile raises many types on damaged IFDs
            tf.close()
            raise FormatError(f"{path}: truncated or corrupt TIFF ({exc})") from None
    size = path.stat().st_size
    bad = [m for m in logged if "offset" in m or "reshape" in m or "truncat" in m or "corrupt" in m]
    if bad or end > size:
        tf.close()
        detail = bad[0] if bad else f"data ends at byte {end}, file has {size}"
        raise FormatError(f"{path}: truncated or corrupt TIFF ({detail})")
    if tf.is_ome:
        vs, fmt = _ome_voxel_size(tf), "ome-tiff"
    elif tf.is_imagej:
        vs, fmt = _imagej_voxel_size(tf), "imagej-tiff"
    else:
        vs, fmt = (None, None, None), "tiff"
    if level and any(v is not None for v in vs):  # pyramid levels are downsampled in y, x
        fy = series.shape[series.axes.index("Y")] / lev.shape[lev.axes.index("Y")]
        fx = series.shape[series.axes.index("X")] / lev.shape[lev.axes.index("X")]
        vs = (vs[0], vs[1] * fy if vs[1] else None, vs[2] * fx if vs[2] else None)
    store = lev.aszarr()
    arr = zarr.open(store, mode="r")
    if not hasattr(arr, "shape"):  # a multiscale group: level 0 array is "0"
        arr = arr[str(level)]
    data = CheckedArray(arr, str(path), keepalive=tf)
    prov = {"format": fmt, "path": str(path), "level": level, "axes": lev.axes}
    return Opened(data=data, axes=lev.axes, voxel_size=vs, provenance=prov)


_NUMBER = re.compile(r"(\d+)")


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``s2.png`` before ``s10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in _NUMBER.split(name)]


def read_slice_folder(path: Path) -> Opened:
    """A folder of 2D TIFF/PNG slices, naturally sorted, one file per section."""
    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SLICE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    if not files:
        raise InputError(
            f"{path}: folder holds no image slices (expected files ending in "
            f"{', '.join(SLICE_SUFFIXES)})"
        )
    data = SliceFolderArray(files)
    prov = {"format": "slice-folder", "path": str(path), "n_files": len(files)}
    return Opened(data=data, axes="ZYX", voxel_size=(None, None, None), provenance=prov)


def _ome_multiscales(attrs: dict) -> tuple[list | None, str | None]:
    if "ome" in attrs and isinstance(attrs["ome"], dict):
        return attrs["ome"].get("multiscales"), attrs["ome"].get("version", "0.5")
    if "multiscales" in attrs:
        ms = attrs["multiscales"]
        return ms, (ms[0].get("version") if ms else None)
    return None, None


def _scale_of(transforms: list | None) -> list[float] | None:
    for t in transforms or []:
        if t.get("type") == "scale":
            return [float(s) for s in t["scale"]]
    return None


def read_zarr(path: Path, level: int = 0, dataset: str | None = None) -> Opened:
    """A zarr v2/v3 array or group; OME-Zarr multiscales (level chosen), ``labels/<name>``."""
    with corrupt_as_format_error(path, "corrupt zarr metadata"):
        return _read_zarr(path, level, dataset)


def _read_zarr(path: Path, level: int, dataset: str | None) -> Opened:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise FormatError(f"{path}: not a readable zarr store ({exc})") from None
    where = str(path)
    if dataset:
        try:
            node = node[dataset.strip("/")]
        except KeyError:
            raise InputError(f"{path}: no array or group {dataset!r} in the store") from None
        where = f"{path}/{dataset.strip('/')}"
    attrs = dict(node.attrs)
    ms, version = _ome_multiscales(attrs)
    vs: VoxelNm = (None, None, None)
    prov: dict = {"format": "zarr", "path": str(path), "dataset": dataset}
    axes = ""
    if ms:
        meta = ms[0]
        datasets = meta["datasets"]
        if not 0 <= level < len(datasets):
            raise InputError(f"{where}: level {level} requested, the store has {len(datasets)}")
        arr = node[datasets[level]["path"]]
        axes_meta = meta.get("axes") or [{"name": n} for n in "tczyx"[-arr.ndim :]]
        axes_meta = [{"name": a} if isinstance(a, str) else a for a in axes_meta]
        axes = "".join(a["name"][0].upper() for a in axes_meta)
        scale = _scale_of(datasets[level].get("coordinateTransformations"))
        outer = _scale_of(meta.get("coordinateTransformations"))
        if scale is not None and outer is not None:
            scale = [a * b for a, b in zip(scale, outer)]
        if scale is not None:
            by_axis = {
                a["name"].lower(): _scaled(s, a.get("unit"), "nm")
                for a, s in zip(axes_meta, scale)
                if a.get("type", "space") == "space" or a["name"].lower() in "zyx"
            }
            vs = (by_axis.get("z"), by_axis.get("y"), by_axis.get("x"))
        prov.update(format="ome-zarr", ome_version=version, level=level)
        where = f"{where}/{datasets[level]['path']}"
    elif hasattr(node, "shape"):
        arr = node
        axes = "ZYX"[-arr.ndim :] if arr.ndim <= 3 else ""
        res = attrs.get("voxel_size", attrs.get("resolution"))
        if res is not None and len(res) == 3:
            unit = attrs.get("unit", "nm")
            vs = tuple(_scaled(r, unit, "nm") for r in res)  # type: ignore[assignment]
    else:
        arrays = sorted(name for name, _ in node.arrays())
        if len(arrays) != 1:
            raise InputError(
                f"{path}: zarr group without OME multiscales metadata; choose an array with "
                f"dataset= (found: {', '.join(arrays) or 'none'})"
            )
        return _read_zarr(path, level, f"{(dataset or '').strip('/')}/{arrays[0]}".strip("/"))
    data = CheckedArray(arr, where)
    prov["zarr_format"] = arr.metadata.zarr_format
    return Opened(data=data, axes=axes, voxel_size=vs, provenance=prov)


def split_h5_path(path: str) -> tuple[str, str | None]:
    """Split ``file.h5:/group/dataset`` into the file and the dataset path (None when absent)."""
    m = re.match(r"^(.*?\.(?:h5|hdf5|hdf))(?::(/?.*))?$", path, flags=re.IGNORECASE)
    if not m:
        return path, None
    return m.group(1), (m.group(2) or None)


def read_hdf5(path: Path, dataset: str | None = None) -> Opened:
    """An HDF5 dataset; voxel size from attrs ``resolution`` (nm) or ``element_size_um`` (µm)."""
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        with corrupt_as_format_error(path, "corrupt HDF5 file"):
            return _hdf5_dataset(fh, path, dataset)
    except DendrosamError:
        fh.close()
        raise


def _hdf5_dataset(fh: Any, path: Path, dataset: str | None) -> Opened:
    import h5py

    if dataset is None:
        names: list[str] = []
        fh.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        if len(names) != 1:
            raise InputError(
                f"{path}: name the dataset as {path}:/path/to/dataset "
                f"(found: {', '.join(names) or 'no datasets'})"
            )
        dataset = names[0]
    if dataset not in fh or not isinstance(fh[dataset], h5py.Dataset):
        raise InputError(f"{path}: no dataset {dataset!r} in the file")
    ds = fh[dataset]
    vs: VoxelNm = (None, None, None)
    if "resolution" in ds.attrs and len(ds.attrs["resolution"]) == 3:
        vs = tuple(float(v) for v in ds.attrs["resolution"])  # type: ignore[assignment]
    elif "element_size_um" in ds.attrs and len(ds.attrs["element_size_um"]) == 3:
        vs = tuple(float(v) * 1e3 for v in ds.attrs["element_size_um"])  # type: ignore[assignment]
    data = CheckedArray(ds, f"{path}:/{dataset.lstrip('/')}", keepalive=fh)
    prov = {"format": "hdf5", "path": str(path), "dataset": "/" + dataset.lstrip("/")}
    axes = "ZYX"[-ds.ndim :] if ds.ndim <= 3 else ""
    return Opened(data=data, axes=axes, voxel_size=vs, provenance=prov)


def read_precomputed(url: str, level: int = 0) -> Opened:
    """Neuroglancer precomputed through cloud-volume (``precomputed://file:///abs/path``)."""
    from cloudvolume import CloudVolume

    cloudpath = url.removeprefix("precomputed://")
    if cloudpath.startswith("file://"):
        local = Path(cloudpath.removeprefix("file://"))
        if not (local / "info").is_file():
            raise InputError(f"{url}: no precomputed 'info' file at {local}")
    try:
        cv = CloudVolume(cloudpath, mip=level, progress=False, fill_missing=False, bounded=True)
    except Exception as exc:
        raise FormatError(f"{url}: cannot open precomputed volume ({exc})") from None
    if cv.num_channels != 1:
        raise InputError(f"{url}: {cv.num_channels} channels; only single-channel is supported")
    rx, ry, rz = (float(r) for r in cv.resolution)
    prov = {"format": "precomputed", "path": url, "level": level, "layer_type": cv.layer_type}
    return Opened(PrecomputedArray(cv, url), "ZYX", (rz, ry, rx), prov)


def read_npy(path: Path) -> Opened:
    """A ``.npy`` array, memory-mapped (no voxel size metadata)."""
    with corrupt_as_format_error(path, "not a readable .npy file"):  # EOFError when empty
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    axes = "ZYX"[-arr.ndim :] if arr.ndim <= 3 else ""
    return Opened(arr, axes, (None, None, None), {"format": "npy", "path": str(path)})


def is_precomputed_dir(path: Path) -> bool:
    """True when ``path`` holds a Neuroglancer precomputed ``info`` file."""
    info = path / "info"
    if not info.is_file():
        return False
    try:
        return "scales" in json.loads(info.read_text())
    except (ValueError, OSError):
        return False


def squeeze_axes(opened: Opened) -> Opened:
    """Drop size-1 axes other than Y and X (e.g. the C and T of a 5D OME array), lazily."""
    axes, shape = opened.axes, opened.data.shape
    if not axes or len(axes) != len(shape):
        return opened
    fixed = {i: 0 for i, (a, s) in enumerate(zip(axes, shape)) if s == 1 and a not in "ZYXSIQ"}
    if not fixed:
        return opened
    data = AxisView(opened.data, fixed)
    new_axes = "".join(a for i, a in enumerate(axes) if i not in fixed)
    return Opened(data, new_axes, opened.voxel_size, opened.provenance)
