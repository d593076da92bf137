"""``dendrosam info`` and ``dendrosam convert``, plus the shared ``--voxel-size`` option."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_voxel_size_argument", "register", "voxel_size_from_args"]


def add_voxel_size_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--voxel-size Z Y X`` (nm) to ``parser``; read it back with :func:`voxel_size_from_args`."""
    parser.add_argument(
        "--voxel-size", nargs=3, type=float, metavar=("Z", "Y", "X"), default=None,
        help="voxel size in nm, z y x (overrides the file's metadata)",
    )  # fmt: skip


def voxel_size_from_args(args: argparse.Namespace) -> tuple[float, float, float] | None:
    """The validated ``--voxel-size`` or None (raises VoxelSizeError naming the option)."""
    from dendrosam.reconstruct.volume import validate_voxel_size

    value = getattr(args, "voxel_size", None)
    return None if value is None else validate_voxel_size(value, "--voxel-size")


def _info(args: argparse.Namespace) -> int:
    from dendrosam.reconstruct.io import open_volume

    vol = open_volume(args.input, voxel_size_from_args(args), level=args.level,
                      dataset=args.dataset, allow_2d=True)  # fmt: skip
    prov = vol.provenance
    record: dict[str, Any] = {
        "source": vol.source, "format": prov.get("format"), "shape": list(vol.shape),
        "dtype": str(vol.dtype), "voxel_size_nm": list(vol.voxel_size),
        "voxel_size_origin": prov.get("voxel_size_origin"),
        "chunks": list(prov["chunks"]) if prov.get("chunks") else None,
        "extent_um": [round(n * v / 1000, 4) for n, v in zip(vol.shape, vol.voxel_size)],
    }  # fmt: skip
    if args.json:
        print(json.dumps(record))
        return 0
    for key, value in record.items():
        print(f"{key:18s} {value}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from dendrosam.errors import OutputError
    from dendrosam.reconstruct.io import open_volume
    from dendrosam.reconstruct.io_writers import write_ome_zarr, write_tiff

    vol = open_volume(args.input, voxel_size_from_args(args), level=args.level,
                      dataset=args.dataset, allow_2d=True)  # fmt: skip
    out = str(args.out).rstrip("/")
    if out.endswith(".zarr"):
        write_ome_zarr(out, vol, name=args.name, overwrite=args.overwrite, n_levels=args.levels,
                       block=args.block)  # fmt: skip
    elif out.endswith((".tif", ".tiff")):
        write_tiff(out, vol, overwrite=args.overwrite)
    else:
        raise OutputError(f"{out}: output must end in .zarr (OME-Zarr) or .ome.tif/.tif (OME-TIFF)")
    print(f"wrote {out}: shape {vol.shape}, voxel size {vol.voxel_size} nm")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    add_voxel_size_argument(p)
    p.add_argument("--level", type=int, default=0, help="resolution level of a multiscale input")
    p.add_argument("--dataset", default=None, help="array inside a zarr group or HDF5 file")


def register(subparsers: Any) -> None:
    """Add the ``info`` and ``convert`` sub-commands."""
    p = subparsers.add_parser("info", help="shape, dtype, voxel size and format of a volume",
                              description="Print what open_volume sees in INPUT.")  # fmt: skip
    p.add_argument("input", help="any readable volume (TIFF, slice folder, zarr, h5, precomputed)")
    _common(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_info)

    p = subparsers.add_parser("convert", help="convert a volume to OME-Zarr or OME-TIFF",
                              description="Stream INPUT to OUT (.zarr or .ome.tif) by z-blocks.")  # fmt: skip
    p.add_argument("input")
    p.add_argument("out", help="output path ending in .zarr or .ome.tif")
    _common(p)
    p.add_argument("--name", default="raw", help="OME-Zarr image name (default raw)")
    p.add_argument("--levels", type=int, default=1, help="OME-Zarr resolution levels (default 1)")
    p.add_argument("--block", type=int, default=16, help="sections per block (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_convert)
