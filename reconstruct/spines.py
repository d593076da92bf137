"""Dendritic spines from skeleton graphs: short side branches that end in a bulb.

Definitions (all lengths in nm, measured along the smoothed skeleton):

* **side branch**: the unbranched path from a tip back to the first node of degree >= 3 (its
  **base**, on the shaft).
* **head**: the node of the side branch outside the shaft (path distance from the base larger
  than the base radius) with the largest ``radius``; ``head_radius`` is that radius.
* **neck**: the side-branch nodes that lie outside the shaft (path distance from the base larger
  than the base radius) and before the head (path distance smaller than the head's distance minus
  the head radius); ``neck_radius`` is their smallest radius.
* a side branch is a **spine** if its length is at most ``max_length`` and
  ``head_radius >= head_neck_ratio * neck_radius`` (a bulb at the end of a thin neck).
* ``neck_length = max(0, d_head - base_radius - head_radius)`` with ``d_head`` the path distance
  from the base to the head node: from the shaft surface to the head surface.
* **shaft**: the graph minus the spine branches (bases kept); spine density = spines per um of
  shaft cable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np

from dendrosam.errors import ConfigError

__all__ = ["SpineConfig", "Spine", "detect_spines", "main_path", "shaft_length", "spines_table"]


@dataclass(frozen=True)
class SpineConfig:
    """Spine detection thresholds.

    Parameters
    ----------
    max_length
        Longest side branch (base to tip, nm) that can be a spine.
    head_neck_ratio
        A spine head must be at least this many times thicker than the thinnest neck node.
    """

    max_length: float = 2500.0
    head_neck_ratio: float = 1.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_length) and self.max_length > 0):
            raise ConfigError(f"SpineConfig.max_length must be a positive length in nm, got {self.max_length!r}")
        if not (math.isfinite(self.head_neck_ratio) and self.head_neck_ratio >= 1):
            raise ConfigError(f"SpineConfig.head_neck_ratio must be >= 1, got {self.head_neck_ratio!r}")


@dataclass(frozen=True)
class Spine:
    """One detected spine (positions (z, y, x) nm, lengths nm)."""

    label: int
    base_node: int
    tip_node: int
    base_pos: tuple[float, float, float]
    head_pos: tuple[float, float, float]
    length: float
    neck_length: float
    neck_radius: float
    head_radius: float
    nodes: tuple[int, ...]

    def to_dict(self) -> dict:
        """Flat dict (positions split into _z/_y/_x columns, node list dropped)."""
        row = {k: v for k, v in asdict(self).items() if k not in ("nodes", "base_pos", "head_pos")}
        for name in ("base_pos", "head_pos"):
            row.update({f"{name}_{a}": c for a, c in zip("zyx", getattr(self, name))})
        return row


def main_path(graph: nx.Graph, nodes=None) -> list:
    """Longest weighted tip-to-tip path of a (tree-like) component, by two Dijkstra sweeps.

    Parameters
    ----------
    graph
        Skeleton graph with edge ``length``.
    nodes
        Nodes of one connected component (default: the largest component by cable length).
    """
    if nodes is None:
        comps = list(nx.connected_components(graph))
        if not comps:
            return []
        nodes = max(comps, key=lambda c: graph.subgraph(c).size(weight="length"))
    sub = graph.subgraph(nodes)
    start = next(iter(sub))
    dist = nx.single_source_dijkstra_path_length(sub, start, weight="length")
    a = max(dist, key=dist.get)
    dist, paths = nx.single_source_dijkstra(sub, a, weight="length")
    b = max(dist, key=dist.get)
    return paths[b]


def _side_branch(graph: nx.Graph, tip) -> list:
    """Nodes from ``tip`` back to the first node of degree >= 3 (inclusive), or [] if none."""
    path = [tip]
    prev = None
    node = tip
    while True:
        nxt = [m for m in graph.neighbors(node) if m != prev]
        if not nxt:
            return []
        prev, node = node, nxt[0]
        path.append(node)
        if graph.degree[node] >= 3:
            return path[::-1]  # base first
        if graph.degree[node] == 1:
            return []


def detect_spines(graph: nx.Graph, config: SpineConfig = SpineConfig()) -> list[Spine]:
    """Detect spines on one skeleton graph (definitions in the module docstring).

    Returns
    -------
    list[Spine]
        One per spine, in tip node order. The ends of a shaft are side branches too, but without
        a bulb they are not spines.
    """
    spines = []
    for tip in sorted(n for n, d in graph.degree if d == 1):
        branch = _side_branch(graph, tip)
        if len(branch) < 3:
            continue
        steps = np.array([graph.edges[u, v]["length"] for u, v in zip(branch[:-1], branch[1:])])
        dist = np.concatenate([[0.0], np.cumsum(steps)])
        if dist[-1] > config.max_length:
            continue
        radius = np.array([graph.nodes[n]["radius"] for n in branch])
        base_r = radius[0]
        outside = np.flatnonzero(dist > base_r)
        if outside.size == 0:
            continue
        head = int(outside[np.argmax(radius[outside])])
        head_r = radius[head]
        neck = (dist > base_r) & (dist < dist[head] - head_r)
        neck[0] = neck[head:] = False
        if not neck.any():
            continue
        neck_r = float(radius[neck].min())
        if head_r < config.head_neck_ratio * neck_r:
            continue
        spines.append(
            Spine(
                label=int(graph.graph.get("label", 0)),
                base_node=branch[0],
                tip_node=tip,
                base_pos=tuple(graph.nodes[branch[0]]["pos"]),
                head_pos=tuple(graph.nodes[branch[head]]["pos"]),
                length=float(dist[-1]),
                neck_length=float(max(0.0, dist[head] - base_r - head_r)),
                neck_radius=neck_r,
                head_radius=float(head_r),
                nodes=tuple(branch),
            )
        )
    return spines


def shaft_length(graph: nx.Graph, spines: list[Spine]) -> float:
    """Cable length (nm) of the graph without its spine branches (bases kept)."""
    drop = {n for s in spines for n in s.nodes[1:]}
    return float(graph.subgraph(set(graph) - drop).size(weight="length"))


def spines_table(graphs: Mapping[int, nx.Graph], config: SpineConfig = SpineConfig()):
    """All spines of all graphs as a ``pandas.DataFrame`` (one row per spine, nm units)."""
    import pandas as pd

    rows = [s.to_dict() for label in sorted(graphs) for s in detect_spines(graphs[label], config)]
    columns = list(Spine.__dataclass_fields__)
    if not rows:
        return pd.DataFrame(columns=[c for c in columns if c not in ("nodes", "base_pos", "head_pos")])
    return pd.DataFrame(rows)
