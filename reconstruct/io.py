"""Open any supported EM stack or label volume as a lazy :class:`~dendrosam.reconstruct.volume.Volume`.

=========================  ===========================================  ==========================
format                     how to name it                               voxel size from
=========================  ===========================================  ==========================
OME-TIFF                   ``stack.ome.tif``                            OME ``PhysicalSize{X,Y,Z}``
ImageJ / plain TIFF        ``stack.tif`` (multi-page)                   ImageJ spacing + resolution
folder of 2D slices        ``slices/`` (``*.tif``, ``*.tiff``, ``*.png``)  -- (give ``voxel_size``)
zarr v2 / v3               ``vol.zarr`` (+ ``dataset=``)                attrs ``resolution``
OME-Zarr 0.4 / 0.5         ``img.zarr``, ``img.zarr/labels/cells``      multiscales ``scale`` + units
HDF5                       ``file.h5:/path/to/dataset``                 attrs ``resolution`` (nm) or
                                                                        ``element_size_um``
Neuroglancer precomputed   ``precomputed://file:///abs/path``           ``info`` resolution
NumPy                      ``vol.npy`` (memory-mapped)                  --
=========================  ===========================================  ==========================

A user ``voxel_size`` always wins. When nothing states it, :data:`DEFAULT_VOXEL_SIZE`
(40, 15, 15) nm is used with a :class:`UserWarning`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import FormatError, InputError, LabelError
from dendrosam.reconstruct.io_arrays import CastArray, ExpandedArray, GreyArray
from dendrosam.reconstruct.io_readers import (
    HDF5_SUFFIXES,
    TIFF_SUFFIXES,
    Opened,
    is_precomputed_dir,
    read_hdf5,
    read_npy,
    read_precomputed,
    read_slice_folder,
    read_tiff,
    read_zarr,
    split_h5_path,
    squeeze_axes,
)
from dendrosam.reconstruct.io_writers import create_ome_zarr_array, write_ome_zarr, write_tiff
from dendrosam.reconstruct.volume import (
    DEFAULT_VOXEL_SIZE,
    Volume,
    check_section,
    validate_voxel_size,
)

__all__ = [
    "DEFAULT_VOXEL_SIZE",
    "SUPPORTED_FORMATS",
    "Volume",
    "check_section",
    "create_ome_zarr_array",
    "open_labels",
    "open_volume",
    "write_ome_zarr",
    "write_tiff",
]

#: Human-readable list used in error messages.
SUPPORTED_FORMATS = (
    "OME-TIFF / TIFF (.tif, .tiff), a folder of .tif/.tiff/.png slices, zarr or OME-Zarr "
    "(.zarr folder), HDF5 (file.h5:/dataset), Neuroglancer precomputed "
    "(precomputed://file:///path or a folder with an 'info' file), NumPy (.npy)"
)


def _dispatch(path: str, level: int, dataset: str | None) -> Opened:
    """Pick the reader for ``path`` from its scheme, suffix or folder content."""
    if path.startswith("precomputed://"):
        return read_precomputed(path, level)
    file_part, h5_dataset = split_h5_path(path)
    p = Path(file_part).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        is_zarr = p.suffix.lower() == ".zarr" or any(
            (p / m).exists() for m in ("zarr.json", ".zgroup", ".zarray")
        )
        if is_zarr:
            return read_zarr(p, level, dataset)
        if is_precomputed_dir(p):
            return read_precomputed(f"precomputed://file://{p.resolve()}", level)
        return read_slice_folder(p)
    suffix = p.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return read_tiff(p, level)
    if suffix in HDF5_SUFFIXES:
        return read_hdf5(p, h5_dataset or dataset)
    if suffix == ".npy":
        return read_npy(p)
    if suffix == ".png":
        return read_slice_folder_file(p)
    raise FormatError(f"{p}: unsupported format {suffix or '(no extension)'!r}; supported: "
                      f"{SUPPORTED_FORMATS}")


def read_slice_folder_file(path: Path) -> Opened:
    """One 2D PNG file (a single section)."""
    from dendrosam.reconstruct.io_arrays import SliceFolderArray

    arr = SliceFolderArray([path])
    return Opened(arr, "ZYX", (None, None, None), {"format": "png", "path": str(path)})


def _to_zyx(opened: Opened, source: str, allow_2d: bool) -> Any:
    """Bring the reader's array to (Z, Y, X): 2D -> (1, Y, X), RGB(A) -> grey, else error."""
    data, axes = opened.data, opened.axes
    shape = tuple(int(s) for s in data.shape)
    if any(s == 0 for s in shape):
        raise InputError(f"{source}: empty volume (shape {shape} has a zero-size axis)")
    rgb = axes.endswith("S") or (len(shape) == 4 and shape[-1] in (3, 4))
    if rgb and shape[-1] in (3, 4):
        warnings.warn(f"{source}: RGB(A) data converted to grey", UserWarning, stacklevel=3)
        if len(shape) == 3:  # one RGB image (Y, X, C)
            data, shape = ExpandedArray(data), (1,) + shape
            if not allow_2d:
                raise InputError(
                    f"{source}: a single 2D image {shape[1:3]}; a stack of sections is needed "
                    "(pass allow_2d=True to read it as one section)"
                )
        data, shape = GreyArray(data), shape[:3]
    if len(shape) == 2:
        if not allow_2d:
            raise InputError(
                f"{source}: a single 2D image {shape}; a stack of sections is needed "
                "(pass allow_2d=True to read it as one section)"
            )
        return ExpandedArray(data)
    if len(shape) != 3:
        raise InputError(
            f"{source}: {len(shape)}D data of shape {shape} (axes {axes or '?'}); expected a "
            "(Z, Y, X) stack, or RGB(A) with colour last"
        )
    return data


def _resolve_voxel_size(
    found: tuple, user: Any, source: str, default: tuple | None, warn: bool
) -> tuple[tuple[float, float, float], str, bool]:
    """Voxel size, its origin and whether it is known (user > metadata > default)."""
    if user is not None:
        return validate_voxel_size(user, "voxel_size"), "user", True
    if all(v is not None for v in found):
        return validate_voxel_size(found, f"{source} (voxel size in its metadata)"), "metadata", True
    base = default or DEFAULT_VOXEL_SIZE
    merged = tuple(f if f is not None else d for f, d in zip(found, base))
    missing = "".join(a for a, f in zip("zyx", found) if f is None)
    if warn:
        warnings.warn(
            f"{source}: voxel size not stated for axes {', '.join(missing)}; assuming "
            f"{tuple(merged)} nm (z, y, x). Pass voxel_size= / --voxel-size Z Y X to set it.",
            UserWarning,
            stacklevel=3,
        )
    origin = "default" if len(missing) == 3 else "metadata+default"
    return validate_voxel_size(merged, f"{source} voxel size"), origin, False


def open_volume(
    path: str | Path | Volume,
    voxel_size: Any = None,
    level: int = 0,
    dataset: str | None = None,
    allow_2d: bool = False,
    *,
    default_voxel_size: tuple | None = None,
    warn_default: bool = True,
) -> Volume:
    """Open an EM stack lazily, with its voxel size in nm.

    Parameters
    ----------
    path : str, pathlib.Path or Volume
        Any format in the module table. A :class:`Volume` is returned as is (with
        ``voxel_size`` applied when given).
    voxel_size : sequence of 3 float, optional
        ``(z, y, x)`` in nm; overrides the file's metadata.
    level : int
        Resolution level of a multiscale store (OME-Zarr, pyramidal OME-TIFF, precomputed mip).
    dataset : str, optional
        Array inside a zarr group or HDF5 file (``labels/cells``, ``/volumes/raw``).
    allow_2d : bool
        Accept a single 2D image as a one-section stack (1, Y, X).
    default_voxel_size : tuple, optional
        Used instead of :data:`DEFAULT_VOXEL_SIZE` for axes the metadata does not state.
    warn_default : bool
        Warn when a default voxel size is used (default True).

    Returns
    -------
    Volume

    Raises
    ------
    InputError, FormatError, VoxelSizeError
        Missing path, unsupported or corrupt file, wrong dimensionality, bad voxel size.

    Examples
    --------
    >>> from dendrosam.reconstruct import demo_data
    >>> vol = open_volume(demo_data("medulla40")["raw"])       # the bundled OME-TIFF crop
    >>> vol.shape, vol.voxel_size
    ((32, 250, 125), (40.0, 10.0, 10.0))
    >>> vol.section(10).shape                                  # reads one section only
    (250, 125)
    """
    if isinstance(path, Volume):
        if voxel_size is None:
            return path
        prov = dict(path.provenance, voxel_size_origin="user")
        return Volume(path.data, validate_voxel_size(voxel_size), path.source, prov, True)
    source = str(path)
    opened = squeeze_axes(_dispatch(source, level, dataset))
    data = _to_zyx(opened, source, allow_2d)
    vs, origin, known = _resolve_voxel_size(
        opened.voxel_size, voxel_size, source, default_voxel_size, warn_default
    )
    prov = dict(opened.provenance, voxel_size_origin=origin)
    prov["chunks"] = getattr(data, "chunks", None)
    return Volume(data=data, voxel_size=vs, source=source, provenance=prov, voxel_size_known=known)


def _scan_labels(vol: Volume, block: int = 16) -> tuple[bool, bool, float, float]:
    """(has_negative, all_integral, min, max) of a float/signed label volume, block by block."""
    neg, integral, lo, hi = False, True, np.inf, -np.inf
    for _, arr in vol.iter_blocks(block):
        if arr.size == 0:
            continue
        lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
        neg |= bool(lo < 0)
        if np.issubdtype(arr.dtype, np.floating):
            integral &= bool(np.all(np.isfinite(arr)) and np.all(arr == np.floor(arr)))
    return neg, integral, lo, hi


def open_labels(
    path: str | Path | Volume,
    voxel_size: Any = None,
    like: Volume | None = None,
    level: int = 0,
    dataset: str | None = None,
    allow_2d: bool = False,
) -> Volume:
    """Open a label volume (0 = background) and check it; unsigned integer data out.

    Float labels with integral values and signed labels without negatives are converted lazily
    (float with a warning); these two cases need one streaming pass over the data to check.

    Parameters
    ----------
    path, voxel_size, level, dataset, allow_2d
        As for :func:`open_volume`.
    like : Volume, optional
        The image the labels belong to: shapes must match, and its voxel size is used when the
        label file states none.

    Raises
    ------
    LabelError
        Non-integral or negative values, or a shape different from ``like``.
    """
    default = like.voxel_size if like is not None else None
    vol = open_volume(
        path, voxel_size, level, dataset, allow_2d,
        default_voxel_size=default, warn_default=like is None,
    )  # fmt: skip
    source = vol.source
    dt = vol.dtype
    if dt == np.bool_:
        vol = Volume(CastArray(vol.data, np.uint8), vol.voxel_size, source, vol.provenance,
                     vol.voxel_size_known)  # fmt: skip
    elif np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.signedinteger):
        neg, integral, lo, hi = _scan_labels(vol)
        if not integral:
            raise LabelError(f"{source}: labels are {dt} with non-integer values; ids must be "
                             "whole numbers")  # fmt: skip
        if neg:
            raise LabelError(f"{source}: labels contain negative values (min {lo:g}); ids must "
                             "be >= 0 with 0 = background")  # fmt: skip
        target = np.uint32 if hi < 2**32 else np.uint64
        if np.issubdtype(dt, np.floating):
            warnings.warn(f"{source}: float labels converted to {np.dtype(target)}", UserWarning,
                          stacklevel=2)  # fmt: skip
        vol = Volume(CastArray(vol.data, target), vol.voxel_size, source, vol.provenance,
                     vol.voxel_size_known)  # fmt: skip
    elif not np.issubdtype(dt, np.unsignedinteger):
        raise LabelError(f"{source}: labels must be integers, got dtype {dt}")
    if like is not None and vol.shape != like.shape:
        raise LabelError(f"{source}: label shape {vol.shape} does not match image shape "
                         f"{like.shape} of {like.source}")  # fmt: skip
    return vol
