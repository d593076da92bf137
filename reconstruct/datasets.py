"""Bundled real EM crops for the demo and the tests, and the recipe that made them.

``medulla40`` is the held-out half (x >= 125) of the Janelia FlyEM NeuroProof medulla FIB-SEM
cube at the 40 nm protocol (every 4th 10 nm slice): models are trained on the x < 125 half only.
``gala`` is the small gala FIB-SEM training crop. See ``data/ATTRIBUTION.md`` for licences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dendrosam.errors import InputError

__all__ = ["DATA_DIR", "DEMO_DATASETS", "build_demo_data", "demo_data"]

DATA_DIR = Path(__file__).resolve().parent / "data"

#: name -> {role: file name in :data:`DATA_DIR`}
DEMO_DATASETS: dict[str, dict[str, str]] = {
    "medulla40": {
        "raw": "medulla40_raw.ome.tif",
        "neurons": "medulla40_neurons.ome.tif",
        "watershed": "medulla40_watershed.ome.tif",
    },
    "gala": {"raw": "gala_raw.ome.tif", "neurons": "gala_neurons.ome.tif"},
}

#: Crop of the 10 nm medulla cube kept in the package: z every 4th slice, x >= 125 (held out).
MEDULLA_CROP = (slice(None, None, 4), slice(None), slice(125, None))


def demo_data(name: str = "medulla40") -> dict[str, Path]:
    """Paths of a bundled dataset's volumes, e.g. ``{"raw": ..., "neurons": ..., ...}``.

    Examples
    --------
    >>> from dendrosam.reconstruct import demo_data, open_volume
    >>> paths = demo_data("medulla40")
    >>> open_volume(paths["raw"]).shape
    (32, 250, 125)
    """
    if name not in DEMO_DATASETS:
        raise InputError(f"unknown demo dataset {name!r}; available: {', '.join(DEMO_DATASETS)}")
    paths = {role: DATA_DIR / f for role, f in DEMO_DATASETS[name].items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InputError(f"demo data missing from the installation: {', '.join(missing)}")
    return paths


def build_demo_data(shared: Path, out: Path = DATA_DIR) -> dict[str, Path]:
    """Re-create the bundled files from the source volumes (the recipe in ATTRIBUTION.md).

    Parameters
    ----------
    shared : pathlib.Path
        Folder with ``medulla_fib/`` and ``gala_fib/`` as distributed with the project data.
    out : pathlib.Path
        Where to write (default: the package's data folder).
    """
    import tifffile

    from dendrosam.reconstruct.io import open_volume
    from dendrosam.reconstruct.io_writers import write_tiff

    written: dict[str, Path] = {}
    med = shared / "medulla_fib"
    sources = {
        "medulla40_raw.ome.tif": med / "raw_z000-124.ome.tif",
        "medulla40_neurons.ome.tif": med / "neurons_z000-124.ome.tif",
        "medulla40_watershed.ome.tif": med / "watershed_overseg_z000-124.ome.tif",
    }
    for name, src in sources.items():
        vol = open_volume(src)
        crop = np.asarray(vol.data[MEDULLA_CROP])
        vs = (vol.voxel_size[0] * 4, vol.voxel_size[1], vol.voxel_size[2])
        written[name] = write_tiff(out / name, crop, vs, overwrite=True)
    for role in ("raw", "neurons"):  # gala states no voxel size: none is written
        data = tifffile.imread(shared / "gala_fib" / f"{role}.ome.tif")
        path = out / f"gala_{role}.ome.tif"
        tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX"}, compression="zlib")
        written[path.name] = path
    return written
