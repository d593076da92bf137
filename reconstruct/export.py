"""Writers and readers for skeleton and contact graphs: SWC, GraphML, JSON node-link, CSV.

* **SWC** (NeuroMorpho conventions): ``id type x y z radius parent``; ``type`` 3 (basal dendrite)
  unless set; coordinates and radius in um by default (``units="nm"`` possible; the unit is stated
  in a header comment that :func:`read_swc` honours); each component is rooted at a tip of its
  longest path (parent -1) and numbered breadth first from there.
* **GraphML**: the graph as stored, with (z, y, x) tuples (``pos``, ``centroid``, ``voxel_size``)
  split into ``<name>_z``, ``<name>_y``, ``<name>_x`` floats, which :func:`read_graphml` joins back.
* **JSON**: networkx node-link data (``edges`` key); tuples come back as tuples.
* **CSV**: any table (morphometrics, contacts) via pandas.

Readers return graphs in the in-memory format of :mod:`dendrosam.reconstruct.skeleton` (nm).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from dendrosam.errors import ConfigError, FormatError, InputError, OutputError
from dendrosam.reconstruct.spines import main_path

__all__ = [
    "write_swc",
    "read_swc",
    "write_graphml",
    "read_graphml",
    "write_json",
    "read_json",
    "write_table",
    "write_skeletons",
    "write_contacts",
]

_AXES = ("z", "y", "x")
_SCALE = {"um": 1e-3, "nm": 1.0}


def _open_for_writing(path: Path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _swc_order(graph: nx.Graph) -> list[tuple]:
    """(node, parent or None) in SWC order: per component, BFS from an end of its main path."""
    order = []
    comps = sorted(nx.connected_components(graph), key=lambda c: -graph.subgraph(c).size(weight="length"))
    for comp in comps:
        root = main_path(graph, comp)[0]
        order.append((root, None))
        order.extend((v, u) for u, v in nx.bfs_edges(graph.subgraph(comp), root))
    return order


def write_swc(graph: nx.Graph, path: str | Path, units: str = "um", structure_type: int = 3) -> dict:
    """Write one skeleton graph as SWC.

    Parameters
    ----------
    graph
        Skeleton graph (``pos`` (z, y, x) nm, ``radius`` nm).
    path
        Output ``.swc`` file.
    units
        ``"um"`` (NeuroMorpho convention) or ``"nm"``.
    structure_type
        SWC type column (3 = basal dendrite).

    Returns
    -------
    dict
        graph node -> SWC id.
    """
    if units not in _SCALE:
        raise ConfigError(f"SWC units must be 'um' or 'nm', got {units!r}")
    scale = _SCALE[units]
    order = _swc_order(graph)
    ids = {node: i + 1 for i, (node, _) in enumerate(order)}
    vs = graph.graph.get("voxel_size")
    lines = [
        "# SWC written by dendrosam (NeuroMorpho conventions)",
        f"# label: {graph.graph.get('label', '')}",
        f"# units: {units} (x y z radius)",
        f"# voxel_size_nm_zyx: {' '.join(repr(float(v)) for v in vs) if vs else ''}",
        "# id type x y z radius parent",
    ]
    for node, parent in order:
        z, y, x = (scale * c for c in graph.nodes[node]["pos"])
        r = scale * graph.nodes[node].get("radius", 0.0)
        lines.append(
            f"{ids[node]} {int(structure_type)} {x!r} {y!r} {z!r} {r!r} {-1 if parent is None else ids[parent]}"
        )
    with _open_for_writing(Path(path)) as fh:
        fh.write("\n".join(lines) + "\n")
    return ids


def read_swc(path: str | Path) -> nx.Graph:
    """Read an SWC file into a skeleton graph in nm (node ids = SWC ids).

    The unit comes from a ``# units: um|nm`` header line (um when absent, the SWC convention).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: SWC file not found")
    units, label, vs, rows = "um", None, None, []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if text.startswith("#"):
            key, _, value = text[1:].partition(":")
            key, value = key.strip().lower(), value.strip()
            if key == "units" and value:
                units = value.split()[0]
            elif key == "label" and value:
                label = int(value)
            elif key == "voxel_size_nm_zyx" and value:
                vs = tuple(float(v) for v in value.split())
            continue
        if not text:
            continue
        parts = text.split()
        if len(parts) != 7:
            raise FormatError(f"{path}:{lineno}: an SWC row has 7 columns, found {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError as exc:
            raise FormatError(f"{path}:{lineno}: non-numeric SWC value ({exc})") from exc
    if units not in _SCALE:
        raise FormatError(f"{path}: unknown SWC units {units!r} (expected um or nm)")
    scale = 1.0 / _SCALE[units]
    graph = nx.Graph(label=label, voxel_size=vs, source="swc", swc_type=int(rows[0][1]) if rows else 3)
    for nid, _, x, y, z, r, _parent in rows:
        graph.add_node(int(nid), pos=(z * scale, y * scale, x * scale), radius=r * scale)
    for nid, *_, parent in rows:
        if parent != -1:
            if int(parent) not in graph:
                raise FormatError(f"{path}: node {int(nid)} has unknown parent {int(parent)}")
            a, b = graph.nodes[int(nid)]["pos"], graph.nodes[int(parent)]["pos"]
            graph.add_edge(int(nid), int(parent), length=float(np.linalg.norm(np.subtract(a, b))))
    return graph


def _flatten(attrs: dict) -> dict:
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, tuple | list | np.ndarray) and len(value) == 3:
            out.update({f"{key}_{a}": float(v) for a, v in zip(_AXES, value)})
        else:
            out[key] = value
    return out


def _unflatten(attrs: dict) -> dict:
    out = dict(attrs)
    stems = {k[:-2] for k in attrs if k[-2:] in ("_z", "_y", "_x")}
    for stem in stems:
        keys = [f"{stem}_{a}" for a in _AXES]
        if all(k in out for k in keys):
            out[stem] = tuple(float(out.pop(k)) for k in keys)
    return out


def _flat_copy(graph: nx.Graph) -> nx.Graph:
    flat = nx.Graph(**_flatten(graph.graph))
    flat.add_nodes_from((n, _flatten(d)) for n, d in graph.nodes(data=True))
    flat.add_edges_from((u, v, _flatten(d)) for u, v, d in graph.edges(data=True))
    return flat


def write_graphml(graph: nx.Graph, path: str | Path) -> None:
    """Write a skeleton or contact graph as GraphML (tuples split into ``_z/_y/_x`` columns)."""
    with _open_for_writing(Path(path)) as fh:
        fh.write("\n".join(nx.generate_graphml(_flat_copy(graph))) + "\n")


def read_graphml(path: str | Path) -> nx.Graph:
    """Read a GraphML file written by :func:`write_graphml` back into the in-memory format."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: GraphML file not found")
    try:
        flat = nx.read_graphml(path)
    except Exception as exc:  # lxml/ElementTree/networkx raise many types for bad files
        raise FormatError(f"{path}: not a readable GraphML file ({exc})") from exc
    relabel = {n: int(n) for n in flat if str(n).lstrip("-").isdigit()}
    flat = nx.relabel_nodes(flat, relabel) if len(relabel) == len(flat) else flat
    attrs = {k: v for k, v in flat.graph.items() if k not in ("node_default", "edge_default")}
    graph = nx.Graph(**_unflatten(attrs))
    graph.add_nodes_from((n, _unflatten(d)) for n, d in flat.nodes(data=True))
    graph.add_edges_from((u, v, _unflatten(d)) for u, v, d in flat.edges(data=True))
    return graph


def write_json(graph: nx.Graph, path: str | Path) -> None:
    """Write a graph as networkx node-link JSON."""
    data = nx.node_link_data(graph, edges="edges")
    with _open_for_writing(Path(path)) as fh:
        json.dump(data, fh)


def read_json(path: str | Path) -> nx.Graph:
    """Read node-link JSON written by :func:`write_json` (lists of 3 back to tuples)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        graph = nx.node_link_graph(data, edges="edges")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: JSON graph file not found") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{path}: not a node-link JSON graph ({exc})") from exc

    def fix(d: dict) -> None:
        for k, v in d.items():
            if isinstance(v, list) and len(v) == 3:
                d[k] = tuple(v)

    fix(graph.graph)
    for _, d in graph.nodes(data=True):
        fix(d)
    for _, _, d in graph.edges(data=True):
        fix(d)
    return graph


def write_table(table, path: str | Path) -> None:
    """Write a pandas table as CSV (no index)."""
    with _open_for_writing(Path(path)) as fh:
        table.to_csv(fh, index=False)


def _combined(graphs: Mapping[int, nx.Graph]) -> nx.Graph:
    """All skeletons in one graph: nodes ``"<label>:<node>"`` with a ``label`` attribute."""
    allg = nx.Graph()
    for label in sorted(graphs):
        g = graphs[label]
        allg.graph.setdefault("voxel_size", g.graph.get("voxel_size"))
        allg.add_nodes_from((f"{label}:{n}", d | {"label": int(label)}) for n, d in g.nodes(data=True))
        allg.add_edges_from((f"{label}:{u}", f"{label}:{v}", d) for u, v, d in g.edges(data=True))
    return allg


def write_skeletons(
    graphs: Mapping[int, nx.Graph],
    out_dir: str | Path,
    formats: Iterable[str] = ("swc", "graphml", "json"),
    swc_units: str = "um",
) -> list[Path]:
    """Write every skeleton (``<out>/<fmt>/<label>.<ext>``) plus ``<out>/skeletons.graphml`` and
    ``<out>/skeletons.json`` holding all objects together. Returns the paths written."""
    out = Path(out_dir)
    formats = tuple(formats)
    unknown = set(formats) - {"swc", "graphml", "json"}
    if unknown:
        raise ConfigError(f"unknown skeleton format(s) {sorted(unknown)}; choose from swc, graphml, json")
    writers = {"swc": lambda g, p: write_swc(g, p, units=swc_units), "graphml": write_graphml, "json": write_json}
    _check_labels(graphs)
    written = []
    for fmt in formats:
        for label in sorted(graphs):
            target = out / fmt / f"{label}.{fmt}"
            writers[fmt](graphs[label], target)
            written.append(target)
    combined = _combined(graphs)
    for fmt in ("graphml", "json"):
        if fmt in formats:
            target = out / f"skeletons.{fmt}"
            writers[fmt](combined, target)
            written.append(target)
    return written


def _check_labels(graphs: Mapping[int, nx.Graph]) -> None:
    """Object ids become file names: only non-negative integers are accepted (no paths)."""
    for label in graphs:
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) or label < 0:
            raise InputError(f"skeleton id {label!r} is not a non-negative integer object id")


def write_contacts(graph: nx.Graph, out_dir: str | Path) -> list[Path]:
    """Write a contact graph as ``contacts.graphml`` and its edge table as ``contacts.csv``."""
    from dendrosam.reconstruct.contacts import contacts_table

    out = Path(out_dir)
    write_graphml(graph, out / "contacts.graphml")
    write_table(contacts_table(graph), out / "contacts.csv")
    return [out / "contacts.graphml", out / "contacts.csv"]
