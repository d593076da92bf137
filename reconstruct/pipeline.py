"""The whole pipeline, chunk by chunk: sections -> 2D masks -> 3D labels -> skeleton graphs.

:func:`reconstruct_volume` runs every stage into a run folder (layout in :mod:`.store`), serially
or on Dask (:mod:`.engine`), and :func:`open_run` re-opens a finished one. Memory does not grow
with depth: sections are read lazily in blocks, labels are written section-chunk by chunk, the
tracker scans z-blocks and stitches them, skeletons are computed per object batch on crops.

Resumability: every segmentation block and skeleton batch (and the tracking pass) writes its data,
then an atomic completion record holding a key (config hash, input identity, block range) and a
checksum of the data. ``resume=True`` skips blocks whose record and checksum still match and
redoes the rest; ``run.json`` says ``"complete"`` only after everything else is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import InputError, OutputError

from .config import (PipelineConfig, SegmentSettings, config_class, config_hash, config_to_toml, load_config,
                     resolve_joins)
from .engine import cached, make_engine, worker_device
from .store import RunStore, array_checksum, atomic_write_bytes, block_key, input_identity

__all__ = ["RunResult", "reconstruct_volume", "open_run"]

log = logging.getLogger("dendrosam.pipeline")


@dataclass(frozen=True)
class RunResult:
    """A finished run.

    Attributes
    ----------
    labels3d, labels2d : zarr.Array
        (Z, Y, X) uint32 3D object ids / per-section 2D ids, read lazily from the run folder.
    graphs : dict of int to networkx.Graph
        Skeleton graph per 3D object (node ``pos`` (z, y, x) nm, ``radius`` nm; edge ``length`` nm).
    morphometrics : pandas.DataFrame or None
        One row per object (None when the morphometry stage is not installed).
    contacts : networkx.Graph or None
        Object adjacency with contact areas (None when the contacts stage is not installed).
    metrics : dict or None
        Evaluation against ground truth (None without ``gt``).
    out : pathlib.Path
        The run folder.
    """

    labels3d: Any
    labels2d: Any
    graphs: dict = field(repr=False)
    morphometrics: Any = field(repr=False)
    contacts: Any = field(repr=False)
    metrics: dict | None
    out: Path


@dataclass(frozen=True)
class _Source:
    """How a task opens the input: a path for :func:`open_volume`, or a zarr array of the run."""

    path: str
    voxel_size: tuple[float, float, float]
    zarr: bool = False

    def open(self) -> Any:
        if self.zarr:
            import zarr

            return zarr.open_array(self.path, mode="r", zarr_format=3)
        from .io import open_volume

        return open_volume(self.path, self.voxel_size).data


@dataclass(frozen=True)
class _Task:
    out: str
    stage: str
    block: tuple
    key: str
    payload: Any = None


# ------------------------------------------------------------------------------ segmentation
def _threshold_block(block: np.ndarray, s: SegmentSettings) -> np.ndarray:
    """Classical baseline: smoothed section, bright-pixel quantile threshold, 2D components."""
    import cc3d
    import fastremap
    from scipy.ndimage import gaussian_filter

    from dendrosam.segment.preprocess import normalize_section

    out = np.zeros(block.shape, np.uint32)
    for i, section in enumerate(block):  # one vectorised pass per section
        img = normalize_section(section).astype(np.float32)
        if s.sigma_px > 0:
            img = gaussian_filter(img, s.sigma_px)
        fg = img > np.quantile(img, s.threshold)
        lab = cc3d.connected_components(fg, connectivity=4, out_dtype=np.uint32)
        lab = cc3d.dust(lab, threshold=s.min_size_px, connectivity=4, in_place=True)
        out[i] = fastremap.renumber(lab, in_place=True)[0]
    return out


def _threshold_table(labels: np.ndarray, z0: int) -> Any:
    import pandas as pd
    from scipy.ndimage import find_objects

    rows = []
    for i, section in enumerate(labels):
        for j, sl in enumerate(find_objects(section)):
            if sl is not None:
                rows.append((z0 + i, j + 1, sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    table = pd.DataFrame(rows, columns=["z", "id", "x0", "y0", "x1", "y1"])
    return table.assign(score=np.nan, stability=np.nan, detector_score=np.nan, source="threshold")


def _segment_block(images: np.ndarray, gt: np.ndarray | None, s: SegmentSettings, z0: int,
                   voxel_size: Sequence[float] | None = None) -> tuple:
    from dendrosam.reconstruct.volume import check_section

    for i, section in enumerate(images):  # NaN/inf, constant or empty sections: a warning, not a stop
        check_section(section, z0 + i)
    if s.method == "threshold":
        labels = _threshold_block(images, s)
        return labels, _threshold_table(labels, z0)
    from dendrosam.segment import SegmentConfig, load_detector, load_sam, segment_slices
    from dendrosam.segment.detector import in_plane_nm

    device = worker_device(s.device)
    sam = cached(("sam", s.sam, s.sam_type, device), lambda: load_sam(s.sam, s.sam_type, device))
    detector = None
    if s.prompts == "detector":
        detector = cached(("yolo", s.detector, device), lambda: load_detector(s.detector, device))
    res = segment_slices(images, sam, detector, prompts=s.prompts, gt=gt, progress=False,
                         pixel_nm=None if voxel_size is None else in_plane_nm(voxel_size),
                         config=SegmentConfig(conf=s.conf, max_det=s.max_det, fill=s.fill,
                                              fill_seed_distance=s.fill_seed_distance, overlap=s.overlap,
                                              cut=s.cut, cut_h=s.cut_h, tta=s.tta))
    table = res.table.assign(z=res.table["z"] + z0)
    return np.asarray(res.labels, dtype=np.uint32), table


def _segment_task(task: _Task) -> int:
    """Segment sections ``block`` and record them (runs on a worker)."""
    source, gt_source, settings = task.payload
    store = RunStore(task.out)
    z0, z1 = task.block
    images = np.asarray(source.open()[z0:z1])
    gt = None if gt_source is None else np.asarray(gt_source.open()[z0:z1])
    labels, table = _segment_block(images, gt, settings, z0, source.voxel_size)
    store.write_region(store.open_array("labels/labels2d"), z0, labels)
    atomic_write_bytes(_part(store, "segments", task.block, "csv"), table.to_csv(index=False).encode())
    store.record("segments", task.block, task.key, array_checksum(labels))
    return int(labels.max(initial=0))


def _part(store: RunStore, stage: str, block: tuple, ext: str) -> Path:
    return store.meta / "parts" / stage / f"{'_'.join(map(str, block))}.{ext}"


# ------------------------------------------------------------------------------ skeletons
def _object_boxes(labels3d: Any, depth: int, block: int, pad: int = 1) -> dict[int, tuple]:
    """``{label: (lo, hi, n_voxels)}`` padded bounding boxes, from one streaming pass over z-blocks.

    Same format as :func:`dendrosam.reconstruct.skeleton_chunks.object_boxes` (which needs the
    whole volume in memory); 3D ids are consecutive, so per-block tables are indexed by id.
    """
    from scipy.ndimage import find_objects

    lo = hi = count = np.zeros((0, 3), np.int64)
    count = np.zeros(0, np.int64)
    for z0 in range(0, depth, block):
        sub = np.asarray(labels3d[z0 : z0 + block])
        n = int(sub.max(initial=0))
        if n > len(count):
            grow = n - len(count)
            lo = np.vstack([lo, np.full((grow, 3), np.iinfo(np.int64).max)])
            hi = np.vstack([hi, np.full((grow, 3), -1)])
            count = np.concatenate([count, np.zeros(grow, np.int64)])
        count[:n] += np.bincount(sub.ravel(), minlength=n + 1)[1:]
        for j, sl in enumerate(find_objects(sub)):
            if sl is not None:
                lo[j] = np.minimum(lo[j], [sl[0].start + z0, sl[1].start, sl[2].start])
                hi[j] = np.maximum(hi[j], [sl[0].stop + z0, sl[1].stop, sl[2].stop])
    shape = np.asarray(labels3d.shape)
    return {
        int(j) + 1: (tuple(map(int, np.maximum(lo[j] - pad, 0))), tuple(map(int, np.minimum(hi[j] + pad, shape))), int(count[j]))
        for j in np.flatnonzero(count)
    }


def _skeleton_task(task: _Task) -> int:
    """Skeletonize + measure a batch of objects on their padded crops (runs on a worker)."""
    import networkx as nx

    from dendrosam.reconstruct import morphometrics
    from dendrosam.reconstruct.skeleton_chunks import skeletonize_objects

    boxes, voxel_size, skel_items = task.payload
    store = RunStore(task.out)
    labels3d = store.open_array("labels/labels3d", mode="r")
    graphs = skeletonize_objects(labels3d, voxel_size, list(boxes), config_class("skeleton", skel_items), boxes=boxes)
    rows = []
    for label, graph in graphs.items():  # volume and surface area from the object's own crop
        lo, hi, _ = boxes[label]
        crop = np.asarray(labels3d[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
        rows.append(morphometrics({label: graph}, crop, voxel_size))
    data = json.dumps({str(k): nx.node_link_data(g, edges="edges") for k, g in graphs.items()}, sort_keys=True)
    if rows:
        import pandas as pd

        csv = pd.concat(rows, ignore_index=True).to_csv(index=False)
        atomic_write_bytes(_part(store, "skeletons", task.block, "csv"), csv.encode())
    atomic_write_bytes(_part(store, "skeletons", task.block, "json"), data.encode())
    store.record("skeletons", task.block, task.key, hashlib.sha256(data.encode()).hexdigest())
    return len(graphs)


def _streamed_contacts(labels3d: Any, voxel_size: tuple, block: int) -> Any:
    """:func:`contact_graph` of the whole volume from z-blocks overlapping by one section.

    Block ``[z0, z1]`` counts every face inside it; the in-plane faces and voxels of its last
    section are counted again by the next block, so the contact graph of that section alone is
    subtracted. Areas, face and voxel counts add up exactly; centroids are area-weighted.
    """
    import networkx as nx

    from dendrosam.reconstruct import contact_graph

    depth = labels3d.shape[0]
    vz = float(voxel_size[0])
    edges: dict[tuple[int, int], np.ndarray] = {}
    voxels: dict[int, int] = {}

    def add(graph: Any, z_offset: int, sign: int) -> None:
        for node, n in graph.nodes(data="voxels"):
            voxels[node] = voxels.get(node, 0) + sign * n
        for a, b, d in graph.edges(data=True):
            c = np.asarray(d["centroid"]) + (z_offset * vz, 0.0, 0.0)
            acc = np.array([d["area_nm2"], d["n_faces"], d["n_faces_gap"], *(c * d["area_nm2"])])
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0.0) + sign * acc

    for z0 in range(0, depth, block):
        z1 = min(depth, z0 + block)
        add(contact_graph(np.asarray(labels3d[z0 : min(depth, z1 + 1)]), voxel_size), z0, 1)
        if z1 < depth:
            add(contact_graph(np.asarray(labels3d[z1 : z1 + 1]), voxel_size), z1, -1)
    graph = nx.Graph(voxel_size=tuple(float(v) for v in voxel_size), gap=0)
    vox_vol = float(np.prod(voxel_size))
    graph.add_nodes_from((k, {"voxels": n, "volume_nm3": n * vox_vol}) for k, n in sorted(voxels.items()) if n > 0)
    for (a, b), acc in sorted(edges.items()):
        if acc[1] > 0.5:
            graph.add_edge(a, b, area_nm2=float(acc[0]), n_faces=int(round(acc[1])),
                           n_faces_gap=int(round(acc[2])), centroid=tuple(map(float, acc[3:] / acc[0])))
    return graph


def _graphs_from_json(text: str) -> dict:
    import networkx as nx

    out = {}
    for k, d in json.loads(text).items():
        g = nx.node_link_graph(d, edges="edges")
        for _, attrs in g.nodes(data=True):
            attrs["pos"] = tuple(attrs["pos"])
        g.graph["voxel_size"] = tuple(g.graph.get("voxel_size", ()))
        out[int(k)] = g
    return out


# ------------------------------------------------------------------------------ orchestration
def _stream_checksum(arr: Any, block: int) -> str:
    digest = hashlib.sha256()
    for z0 in range(0, arr.shape[0], block):
        digest.update(array_checksum(np.asarray(arr[z0 : z0 + block])).encode())
    return digest.hexdigest()


def _pending(store: RunStore, tasks: Sequence[_Task], verify: Callable[[_Task, dict], bool]) -> list[_Task]:
    """Tasks whose completion record is missing, stale, or whose data no longer verifies."""
    todo = []
    for t in tasks:
        rec = store.completed(t.stage, t.block, t.key)
        if rec is None or not verify(t, rec):
            todo.append(t)
    return todo


def _open_input(input: Any, voxel_size: Any) -> tuple[Any, str]:
    """(Volume, identity) of a path or an in-memory array."""
    from .io import open_volume
    from .volume import Volume

    if isinstance(input, (str, Path)):
        vol = open_volume(input, voxel_size)
        return vol, input_identity(input)
    if isinstance(input, Volume):
        vol = open_volume(input, voxel_size)
    else:
        if voxel_size is None:
            raise InputError("an array input needs voxel_size=(z, y, x) in nm")
        arr = np.asarray(input)
        if arr.ndim != 3:
            raise InputError(f"input array must be (Z, Y, X), got shape {arr.shape}")
        vol = Volume.from_array(arr, voxel_size)
    return vol, input_identity(np.asarray(vol.data))


def _run_stages(vol: Any, store: RunStore, cfg: PipelineConfig, ident: dict, engine: Any, gt: Any, timings: dict) -> dict:
    """Segment, track, skeletonize into ``store``; returns what run.json needs to know."""
    from dendrosam.reconstruct import track_blocks

    chash, iid = ident["config"], ident["input"]
    depth, ny, nx_ = vol.shape
    vs = vol.voxel_size
    eng = cfg.engine
    chunks = (1, min(eng.chunk_yx[0], ny), min(eng.chunk_yx[1], nx_))
    if isinstance(vol.data, np.ndarray) or vol.source == "<array>":
        raw = store.create_array("raw", vol.shape, chunks, vs, dtype=str(vol.dtype))
        rkey = block_key(chash, iid, "raw", (0, depth))
        if store.completed("raw", (0, depth), rkey) is None:
            for z0 in range(0, depth, eng.block_sections):
                store.write_region(raw, z0, np.asarray(vol.data[z0 : z0 + eng.block_sections]))
            store.record("raw", (0, depth), rkey, iid)
        source = _Source(str(store.zarr_path / "0"), vs, zarr=True)
    else:
        source = _Source(vol.source, vs)
    gt_source = None
    if cfg.segment.prompts != "detector":
        if gt is None:
            raise InputError(f"segment.prompts = {cfg.segment.prompts!r} needs ground truth (--gt)")
        gt_source = _gt_source(gt, vs, store)
    labels2d = store.create_array("labels/labels2d", vol.shape, chunks, vs)

    t0 = time.perf_counter()
    spt = eng.sections_per_task
    tasks = [
        _Task(str(store.out), "segments", (z, min(depth, z + spt)), block_key(chash, iid, "segments", (z, min(depth, z + spt))), (source, gt_source, cfg.segment))
        for z in range(0, depth, spt)
    ]
    todo = _pending(store, tasks, lambda t, r: array_checksum(np.asarray(labels2d[t.block[0] : t.block[1]])) == r["checksum"])
    log.info("segmentation: %d of %d blocks to do", len(todo), len(tasks))
    engine.map(_segment_task, todo, desc="segment")
    timings["segment"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels3d = store.create_array("labels/labels3d", vol.shape, chunks, vs)
    jcfg = cfg.joins
    jkey = block_key(chash, iid, "joins", (0, depth))
    jrec = store.completed("joins", (0, depth), jkey) if jcfg.model != "none" else None
    if jrec is None or _stream_checksum(labels3d, eng.block_sections) != jrec["checksum"]:
        tkey = block_key(chash, iid, "track", (0, depth))
        rec = store.completed("track", (0, depth), tkey)
        if rec is None or _stream_checksum(labels3d, eng.block_sections) != rec["checksum"]:
            tcfg = config_class("track", cfg.track)
            result = track_blocks(labels2d, eng.block_sections, vs, tcfg, out=labels3d,
                                  map_fn=lambda fn, items: engine.map(fn, list(items), desc="track"))
            extra = {"warps": result.warps.tolist()} if tcfg.align_model == "affine" else {}
            store.record("track", (0, depth), tkey, _stream_checksum(labels3d, eng.block_sections),
                         n_objects=int(result.n_objects), shifts=result.shifts.tolist(), **extra)
            rec = store.completed("track", (0, depth), tkey)
            store.forget("skeletons")
        timings["track"] = time.perf_counter() - t0
        if jcfg.model != "none":
            t0 = time.perf_counter()
            _join_objects(labels2d, source.open(), labels3d, vs, jcfg, rec, eng.block_sections)
            store.record("joins", (0, depth), jkey, _stream_checksum(labels3d, eng.block_sections))
            store.forget("skeletons")
            timings["joins"] = time.perf_counter() - t0
    else:
        timings["track"] = time.perf_counter() - t0  # tracking and joins verified, nothing redone

    t0 = time.perf_counter()
    boxes = _object_boxes(labels3d, depth, eng.block_sections)
    ids = sorted(boxes)
    batches = [ids[i : i + eng.objects_per_task] for i in range(0, len(ids), eng.objects_per_task)]
    stasks = []
    for b in batches:
        blk = (b[0], b[-1])
        payload = ({i: boxes[i] for i in b}, vs, cfg.skeleton)
        stasks.append(_Task(str(store.out), "skeletons", blk, block_key(chash, iid, "skeletons", blk), payload))

    def verify(t: _Task, r: dict) -> bool:
        p = _part(store, "skeletons", t.block, "json")
        return p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == r["checksum"]

    engine.map(_skeleton_task, _pending(store, stasks, verify), desc="skeletonize")
    timings["skeletonize"] = time.perf_counter() - t0
    graphs: dict = {}
    for t in stasks:
        graphs.update(_graphs_from_json(_part(store, "skeletons", t.block, "json").read_text()))
    import pandas as pd

    parts = [pd.read_csv(_part(store, "segments", t.block, "csv")) for t in tasks]
    return {"graphs": graphs, "segments": pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(),
            "source": source, "labels3d": labels3d, "labels2d": labels2d, "skeleton_tasks": stasks}


def _join_objects(labels2d: Any, image: Any, labels3d: Any, vs: tuple, jcfg: Any, track_rec: dict,
                  block: int) -> None:
    """Learned joins, written into ``labels3d`` block by block.

    They start from the tracked objects in ``labels3d`` (``joins.start = "tracks"``) or from every
    2D object on its own (``"sections"``); either way the tracker's section shifts (or, with
    ``track.align_model = "affine"``, its affine transforms) are used.
    """
    from .joins import SectionObjectIds, learned_joins

    model = _join_model(jcfg)
    shifts = track_rec.get("shifts")  # absent in records of older versions: no shift compensation
    warps = track_rec.get("warps")  # only with track.align_model = "affine"
    start = SectionObjectIds(labels2d) if jcfg.start == "sections" else labels3d
    n_start = start.n_objects if jcfg.start == "sections" else int(track_rec["n_objects"])
    res = learned_joins(labels2d, image, start, vs, model, shifts=None if shifts is None else np.asarray(shifts),
                        stop=jcfg.stop, max_gap=jcfg.max_gap, n_objects=n_start,
                        contacts=jcfg.contacts, linkage=jcfg.linkage, contact_weight=jcfg.contact_weight,
                        warps=None if warps is None else np.asarray(warps))
    log.info("joins: %d scored pairs and %d contacts, %d %s -> %d objects", res.n_pairs, res.n_contacts,
             n_start, "2D objects" if jcfg.start == "sections" else "tracked objects", res.n_objects)
    for z0 in range(0, labels3d.shape[0], block):
        labels3d[z0 : z0 + block] = res.lut[np.asarray(start[z0 : z0 + block])]


def _gt_source(gt: Any, voxel_size: tuple, store: RunStore) -> _Source:
    if isinstance(gt, (str, Path)):
        return _Source(str(gt), voxel_size)
    arr = np.asarray(gt)
    garr = store.create_array("labels/gt", arr.shape, (1, *arr.shape[1:]), voxel_size)
    store.write_region(garr, 0, arr.astype(np.uint32))
    return _Source(str(store.zarr_path / "labels" / "gt" / "0"), voxel_size, zarr=True)


def _read_gt(gt: Any, vol: Any) -> np.ndarray:
    if isinstance(gt, (str, Path)):
        from .io import open_labels

        return np.asarray(open_labels(gt, vol.voxel_size, like=vol).data[:])
    return np.asarray(gt)


# ------------------------------------------------------------------------------ outputs
def _write_skeletons(store: RunStore, graphs: dict) -> None:
    """``skeletons/<id>.swc`` (um, the SWC convention), ``<id>.graphml`` (nm) and ``graphs.json``."""
    import networkx as nx

    from .export import write_graphml, write_swc

    folder = store.out / "skeletons"
    folder.mkdir(parents=True, exist_ok=True)
    for label, graph in graphs.items():
        write_graphml(graph, folder / f"{label}.graphml")
        write_swc(graph, folder / f"{label}.swc")
    data = {str(k): nx.node_link_data(g, edges="edges") for k, g in graphs.items()}
    store.write_json("skeletons/graphs.json", data)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("dendrosam", "numpy", "zarr", "kimimaro", "torch", "segment-anything", "ultralytics", "dask"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _model_cards(s: SegmentSettings) -> dict:
    if s.method != "sam":
        return {"method": s.method}
    from dendrosam.segment import load_sam

    sam = cached(("sam", s.sam, s.sam_type, s.device), lambda: load_sam(s.sam, s.sam_type, s.device))
    return {"method": "sam", "sam": {"path": sam.source, "arch": sam.arch.name, "card": sam.card},
            "detector": {"path": s.detector or "default"} if s.prompts == "detector" else None}


def _join_model(jcfg: Any) -> Any:
    """The configured join model, loaded once per process (None for ``model = "none"``)."""
    from .joins import load_join_model

    path = Path(jcfg.model)
    stamp = path.stat().st_mtime_ns if jcfg.model not in ("default", "none") and path.is_file() else None
    return cached(("joins", jcfg.model, stamp), lambda: load_join_model(jcfg.model))


def _join_card(jcfg: Any) -> dict | None:
    model = _join_model(jcfg)
    return None if model is None else {"path": jcfg.model, "stop": jcfg.stop, "max_gap": jcfg.max_gap,
                                       "contacts": jcfg.contacts, "linkage": jcfg.linkage, "start": jcfg.start,
                                       "card": model.card}


def _finish_outputs(store: RunStore, vol: Any, cfg: PipelineConfig, parts: dict, gt: Any, timings: dict) -> tuple:
    t0 = time.perf_counter()
    labels3d, graphs = parts["labels3d"], parts["graphs"]
    _write_skeletons(store, graphs)
    (store.out / "tables").mkdir(exist_ok=True)
    store.write_text("tables/segments.csv", parts["segments"].to_csv(index=False))
    import pandas as pd

    from dendrosam.reconstruct.contacts import contacts_table

    parts_csv = [p for t in parts["skeleton_tasks"] if (p := _part(store, "skeletons", t.block, "csv")).is_file()]
    morpho = pd.concat([pd.read_csv(p) for p in parts_csv], ignore_index=True) if parts_csv else pd.DataFrame()
    morpho = morpho.sort_values("label", ignore_index=True) if len(morpho) else morpho
    store.write_text("tables/morphometrics.csv", morpho.to_csv(index=False))
    contacts = _streamed_contacts(labels3d, vol.voxel_size, cfg.engine.block_sections)
    store.write_text("tables/contacts.csv", contacts_table(contacts).to_csv(index=False))
    timings["analysis"] = time.perf_counter() - t0
    metrics = None
    if gt is not None:
        from dendrosam.reconstruct import evaluate

        t0 = time.perf_counter()
        metrics = evaluate(_read_gt(gt, vol), np.asarray(labels3d[:])).to_dict()
        store.write_json("metrics.json", metrics)
        timings["evaluate"] = time.perf_counter() - t0
    return morpho, contacts, metrics


def reconstruct_volume(
    input: Any,
    out: str | Path,
    config: PipelineConfig | str | Path | None = None,
    voxel_size: Sequence[float] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    gt: Any = None,
    publish: bool = False,
    progress: bool = True,
) -> RunResult:
    """Run the whole pipeline on a stack and write a run folder.

    Parameters
    ----------
    input : path, Volume or array
        Any format :func:`open_volume` reads; an array needs ``voxel_size``.
    out : path
        Run folder (layout in :mod:`dendrosam.reconstruct.store`).
    config : PipelineConfig, path of a TOML file, or None
        None = defaults (shipped models).
    voxel_size : (z, y, x) nm, optional
        Overrides the file's metadata and ``config.voxel_size``.
    workers : int, optional
        0 = serial (no Dask), N = local Dask cluster of N processes; default from the config.
    scheduler : str, optional
        Existing Dask scheduler address (overrides ``workers``).
    resume : bool
        Continue a run of the same config and input, skipping verified blocks.
    overwrite : bool
        Replace a previous run in ``out`` (even one with other settings).
    gt : path or array, optional
        Ground-truth 3D labels: metrics.json at the end (and the prompts for ``gt-*`` modes).
    publish : bool
        Also write Neuroglancer precomputed layers (``dendrosam.viz.publish``).
    progress : bool
        tqdm progress bars per stage.

    Returns
    -------
    RunResult

    Raises
    ------
    InputError, VoxelSizeError, ConfigError, CheckpointError, OutputError, SchedulerError
        User mistakes, with a message naming the file or option.

    Examples
    --------
    >>> res = reconstruct_volume("stack.ome.tif", "run1")          # doctest: +SKIP
    >>> len(res.graphs), res.labels3d.shape                         # doctest: +SKIP
    """
    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    engine_over = {k: v for k, v in (("workers", workers), ("scheduler", scheduler)) if v is not None}
    if engine_over:
        cfg = replace(cfg, engine=replace(cfg.engine, **engine_over))
    vs_req = voxel_size if voxel_size is not None else cfg.voxel_size
    vol, iid = _open_input(input, vs_req)
    cfg = resolve_joins(replace(cfg, voxel_size=tuple(vol.voxel_size)))
    _join_model(cfg.joins)  # a bad model file fails now, not after segmentation
    ident = {"config": config_hash(cfg), "input": iid}
    eng = cfg.engine
    preload = ["scipy.ndimage", "cc3d", "fastremap", "dendrosam.segment.preprocess", __name__]
    if cfg.segment.method == "sam":
        preload += ["dendrosam.segment.api", "torch", "segment_anything"]
    with make_engine(eng.workers, eng.scheduler, eng.connect_timeout_s, progress, preload) as engine:
        store = RunStore(out)
        store.prepare(ident, resume=resume, overwrite=overwrite)
        with store.lock(), _log_to(store.out / "run.log"):
            parts, extra = _run_locked(vol, input, store, cfg, ident, engine, gt, publish)
    return RunResult(parts["labels3d"], parts["labels2d"], parts["graphs"], *extra, store.out)


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Copy the ``dendrosam`` loggers' INFO messages to ``path`` while the block runs."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_log = logging.getLogger("dendrosam")
    old_level = root_log.level
    root_log.addHandler(handler)
    root_log.setLevel(min(root_log.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        root_log.removeHandler(handler)
        root_log.setLevel(old_level)
        handler.close()


def _run_locked(vol: Any, input: Any, store: RunStore, cfg: PipelineConfig, ident: dict, engine: Any,
                gt: Any, publish: bool) -> tuple[dict, tuple]:
    timings: dict[str, float] = {}
    store.write_text("config.toml", config_to_toml(cfg))
    info = {"status": "running", "input": str(input) if isinstance(input, (str, Path)) else "<array>",
            "input_identity": ident["input"], "shape": list(vol.shape), "voxel_size": list(vol.voxel_size),
            "versions": _versions(), "config_hash": ident["config"]}
    store.write_json("run.json", info)
    log.info("run %s -> %s (%s, voxel %s nm)", info["input"], store.out, vol.shape, vol.voxel_size)
    info["models"] = {**_model_cards(cfg.segment), "joins": _join_card(cfg.joins)}
    parts = _run_stages(vol, store, cfg, ident, engine, gt, timings)
    store.sweep_orphans()  # every task has returned: any temporary file left is a dead writer's
    extra = _finish_outputs(store, vol, cfg, parts, gt, timings)
    _report_and_publish(store, vol, cfg, parts, extra, info, publish, timings)
    info.update(status="complete", timings_s={k: round(v, 3) for k, v in timings.items()},
                n_objects=len(parts["graphs"]), finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    store.write_json("run.json", info)  # written last: only now does the run look complete
    return parts, extra


def _report_and_publish(store: RunStore, vol: Any, cfg: PipelineConfig, parts: dict, extra: tuple,
                        info: dict, publish: bool, timings: dict) -> None:
    """``report.html``/``report.md`` (and precomputed layers with ``publish``) via ``dendrosam.viz``."""
    from dendrosam.viz import RunData, write_report

    t0 = time.perf_counter()
    morpho, _, metrics = extra
    data = RunData(voxel_size=vol.voxel_size, image=vol.data, labels=parts["labels3d"], labels2d=parts["labels2d"],
                   skeletons=parts["graphs"], morphometrics=morpho, metrics=metrics or {},
                   config=cfg.to_dict(), run=dict(info, timings_s=timings), out=store.out)
    write_report(store.out, data)
    timings["report"] = time.perf_counter() - t0
    if publish:
        from dendrosam.viz import publish as publish_layers

        t0 = time.perf_counter()
        from dendrosam.viz.rundata import PRECOMPUTED_DIR

        publish_layers(data, store.out / PRECOMPUTED_DIR, overwrite=True)
        timings["publish"] = time.perf_counter() - t0


def open_run(out: str | Path) -> RunResult:
    """Re-open a finished run folder.

    Raises
    ------
    OutputError
        The folder is not a run, or its run did not complete (``run.json`` status).
    """
    import networkx as nx
    import pandas as pd

    store = RunStore(out)
    status = store.status()
    if status != "complete":
        raise OutputError(f"{store.out}: no complete run here (status: {status or 'none'}); re-run with --resume")
    graphs = _graphs_from_json((store.out / "skeletons" / "graphs.json").read_text())
    tables = store.out / "tables"
    morpho = pd.read_csv(tables / "morphometrics.csv") if (tables / "morphometrics.csv").is_file() else None
    contacts = None
    if (tables / "contacts.csv").is_file():
        df = pd.read_csv(tables / "contacts.csv")
        contacts = nx.from_pandas_edgelist(df, "id_a", "id_b", edge_attr=True) if len(df) else nx.Graph()
    mpath = store.out / "metrics.json"
    metrics = json.loads(mpath.read_text()) if mpath.is_file() else None
    return RunResult(store.open_array("labels/labels3d", "r"), store.open_array("labels/labels2d", "r"),
                     graphs, morpho, contacts, metrics, store.out)
