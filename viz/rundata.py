"""One reader for a pipeline output folder: :class:`RunData` and :func:`load_run_data`.

Layout of a run folder (every part but one volume or the skeletons is optional)::

    OUT/volume.ome.zarr      image group ``raw`` + ``raw/labels/labels3d`` + ``raw/labels/labels2d``
    OUT/skeletons/           ``graphs.json`` (id -> node-link graph) or ``<id>.graphml``
    OUT/tables/morphometrics.csv
    OUT/metrics.json  OUT/config.toml  OUT/run.json (``voxel_size`` (z, y, x) nm, timings, models)
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from dendrosam.errors import FormatError, InputError, VoxelSizeError

log = logging.getLogger(__name__)

#: Sub-folder of a run folder that holds its Neuroglancer precomputed layers.
PRECOMPUTED_DIR = "precomputed"

__all__ = ["RunData", "load_run_data", "as_run_data"]

_UNIT_TO_NM = {"nanometer": 1.0, "nm": 1.0, "micrometer": 1e3, "um": 1e3, "angstrom": 0.1, None: 1.0}


@dataclass(frozen=True)
class RunData:
    """Everything the viewer, publisher and report need from one reconstruction.

    Attributes
    ----------
    voxel_size : tuple of float
        (z, y, x) nm.
    image, labels, labels2d : array-like or None
        (Z, Y, X) EM image, 3D object ids, per-section 2D ids (lazy arrays allowed).
    skeletons : mapping
        id -> networkx graph, node ``pos`` (z, y, x) nm and ``radius`` nm.
    morphometrics : pandas.DataFrame or None
        One row per object, column ``label``.
    metrics, config, run : mapping
        ``metrics.json``, parsed ``config.toml`` and ``run.json`` (timings, model cards).
    out : pathlib.Path or None
        The run folder this was read from.
    """

    voxel_size: tuple[float, float, float]
    image: Any = None
    labels: Any = None
    labels2d: Any = None
    skeletons: Mapping[int, nx.Graph] = field(default_factory=dict)
    morphometrics: Any = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)
    out: Path | None = None

    def __post_init__(self) -> None:
        vs = tuple(float(v) for v in self.voxel_size)
        if len(vs) != 3 or not all(np.isfinite(v) and v > 0 for v in vs):
            raise VoxelSizeError(f"voxel_size must be three positive numbers (z, y, x) nm, got {self.voxel_size!r}")
        object.__setattr__(self, "voxel_size", vs)
        shapes = {n: tuple(a.shape) for n, a in (("image", self.image), ("labels", self.labels),
                                                  ("labels2d", self.labels2d)) if a is not None}
        if len(set(shapes.values())) > 1:
            raise InputError(f"image and label volumes differ in shape: {shapes}")

    @property
    def shape(self) -> tuple[int, int, int] | None:
        """(Z, Y, X) of the volumes, or None when the run holds none."""
        for a in (self.image, self.labels, self.labels2d):
            if a is not None:
                return tuple(int(n) for n in a.shape)
        return None


def as_run_data(
    source: Any = None,
    *,
    image: Any = None,
    labels: Any = None,
    skeletons: Mapping[int, nx.Graph] | None = None,
    voxel_size: tuple[float, float, float] | None = None,
    morphometrics: Any = None,
) -> RunData:
    """Accept a run folder, a :class:`RunData`, a ``Volume`` or arrays; return a :class:`RunData`.

    Keyword arrays override the corresponding part of ``source``.
    """
    if isinstance(source, (str, Path)):
        base = load_run_data(source)
    elif isinstance(source, RunData):
        base = source
    elif source is not None and hasattr(source, "data") and hasattr(source, "voxel_size"):
        base = RunData(voxel_size=source.voxel_size, image=source.data)
    elif source is not None:
        if voxel_size is None:
            raise VoxelSizeError("voxel_size=(z, y, x) nm is required when publishing bare arrays")
        base = RunData(voxel_size=voxel_size, image=source)
    else:
        base = None
    if image is not None and hasattr(image, "data") and hasattr(image, "voxel_size"):
        voxel_size = voxel_size or image.voxel_size
        image = image.data
    vs = voxel_size or (base.voxel_size if base else None)
    if vs is None:
        raise VoxelSizeError("voxel_size=(z, y, x) nm is required when publishing bare arrays")
    parts = dict(
        image=image if image is not None else (base.image if base else None),
        labels=labels if labels is not None else (base.labels if base else None),
        skeletons=skeletons if skeletons is not None else (base.skeletons if base else {}),
        morphometrics=morphometrics if morphometrics is not None else (base.morphometrics if base else None),
    )
    if base is None:
        return RunData(voxel_size=vs, **parts)
    from dataclasses import replace

    return replace(base, voxel_size=vs, **parts)


def _ome_multiscale(group: Any) -> tuple[Any, tuple[float, float, float] | None]:
    """Level-0 array of an OME-Zarr multiscale group and its (z, y, x) scale in nm."""
    attrs = dict(group.attrs)
    attrs = attrs.get("ome", attrs)
    ms = attrs.get("multiscales")
    if not ms:
        return group["0"], None
    ds = ms[0]["datasets"][0]
    scale = None
    for t in ds.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = t["scale"][-3:]
    if scale is not None:
        axes = ms[0].get("axes", [])[-3:]
        unit = axes[0].get("unit") if axes and isinstance(axes[0], dict) else None
        scale = tuple(float(s) * _UNIT_TO_NM.get(unit, 1.0) for s in scale)
    return group[ds["path"]], scale


def _has_image(group: Any) -> bool:
    """True if an OME-Zarr group holds an image (multiscales or a level ``0``), not only labels."""
    attrs = dict(group.attrs)
    return bool(attrs.get("ome", attrs).get("multiscales")) or "0" in group


def _input_image(source: str, voxel_size: Any) -> Any:
    """The run's input image, read lazily from where it was (runs reference inputs, not copies).

    Returns None when the input has moved or cannot be read: figures and layers then skip it.
    """
    from dendrosam.errors import DendrosamError
    from dendrosam.reconstruct import open_volume

    try:
        return open_volume(source, voxel_size=tuple(voxel_size) if voxel_size else None).data
    except DendrosamError as exc:
        log.warning("run input %s not readable (%s); the image layer is skipped", source, exc)
        return None


def _graph_from_json(data: Mapping[str, Any]) -> nx.Graph:
    g = nx.node_link_graph(data, edges="links" if "links" in data else "edges")
    return _normalise_graph(g)


def _normalise_graph(g: nx.Graph) -> nx.Graph:
    """Give every node a float (z, y, x) ``pos`` and ``radius`` whatever way they were stored."""
    for _, d in g.nodes(data=True):
        pos = d.get("pos")
        if isinstance(pos, str):
            pos = [float(v) for v in re.split(r"[,\s\[\]()]+", pos) if v]
        if pos is None and all(k in d for k in ("z", "y", "x")):
            pos = (d["z"], d["y"], d["x"])
        if pos is None:
            raise FormatError("skeleton graph node without 'pos' (or z, y, x) attributes")
        d["pos"] = tuple(float(v) for v in pos)
        d["radius"] = float(d.get("radius", 0.0))
    return g


def _load_skeletons(folder: Path) -> dict[int, nx.Graph]:
    graphs_json = folder / "graphs.json"
    if graphs_json.is_file():
        try:
            data = json.loads(graphs_json.read_text())
        except json.JSONDecodeError as exc:
            raise FormatError(f"{graphs_json}: not valid JSON ({exc})") from exc
        data = data.get("graphs", data)
        return {int(k): _graph_from_json(v) for k, v in data.items()}
    out = {}
    for path in sorted(folder.glob("*.graphml")):
        digits = re.findall(r"\d+", path.stem)
        if digits:
            out[int(digits[-1])] = _normalise_graph(nx.read_graphml(path))
    return out


def load_run_data(out: str | Path) -> RunData:
    """Read a pipeline output folder (tolerating missing optional parts).

    Parameters
    ----------
    out : str or pathlib.Path
        The run folder.

    Returns
    -------
    RunData
        Volumes stay lazy (zarr arrays).

    Raises
    ------
    InputError
        The folder does not exist or holds neither volumes nor skeletons.
    VoxelSizeError
        Neither ``run.json`` nor the OME-Zarr metadata give a voxel size.
    """
    out = Path(out)
    if not out.is_dir():
        raise InputError(f"{out}: run folder not found")
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
    config: dict[str, Any] = {}
    if (out / "config.toml").is_file():
        try:
            config = tomllib.loads((out / "config.toml").read_text())
        except tomllib.TOMLDecodeError as exc:
            raise FormatError(f"{out / 'config.toml'}: invalid TOML ({exc})") from exc
    image = labels = labels2d = None
    scale = None
    store = out / "volume.ome.zarr"
    if store.is_dir():
        import zarr

        try:
            if (store / "raw").is_dir():
                raw = zarr.open_group(str(store / "raw"), mode="r")
            else:
                raw = zarr.open_group(str(store), mode="r")
        except (zarr.errors.GroupNotFoundError, ValueError) as exc:
            raise FormatError(f"{store}: not a readable OME-Zarr group ({exc})") from exc
        if _has_image(raw):
            image, scale = _ome_multiscale(raw)
        if "labels" in raw:
            lab = raw["labels"]
            if "labels3d" in lab:
                labels, _ = _ome_multiscale(lab["labels3d"])
            if "labels2d" in lab:
                labels2d, _ = _ome_multiscale(lab["labels2d"])
    if image is None and run.get("input"):
        image = _input_image(run["input"], run.get("voxel_size"))
    skeletons = _load_skeletons(out / "skeletons") if (out / "skeletons").is_dir() else {}
    morpho = None
    if (out / "tables" / "morphometrics.csv").is_file():
        import pandas as pd

        morpho = pd.read_csv(out / "tables" / "morphometrics.csv")
    if image is None and labels is None and not skeletons:
        raise InputError(f"{out}: not a dendrosam run folder (no volume.ome.zarr and no skeletons/)")
    vs = run.get("voxel_size") or scale
    if vs is None:
        raise VoxelSizeError(f"{out}: no voxel size in run.json or in the OME-Zarr metadata")
    return RunData(
        voxel_size=tuple(vs), image=image, labels=labels, labels2d=labels2d, skeletons=skeletons,
        morphometrics=morpho, metrics=metrics, config=config, run=run, out=out,
    )
