"""Round trips of skeleton and contact graphs through SWC, GraphML, JSON and CSV."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from dendrosam.errors import ConfigError, FormatError, InputError
from dendrosam.reconstruct.contacts import contact_graph
from dendrosam.reconstruct.export import (
    read_graphml,
    read_json,
    read_swc,
    write_contacts,
    write_graphml,
    write_json,
    write_skeletons,
    write_swc,
)

VS = (40.0, 15.0, 15.0)


def y_graph() -> nx.Graph:
    """A hand-made Y: branch point 0, arms of 3, 2 and 1 edges (longest path 2-...-0-...-5)."""
    g = nx.Graph(label=7, voxel_size=VS, source="kimimaro")
    pts = {0: (0.0, 0.0, 0.0), 1: (40.0, 15.0, 30.0), 2: (80.0, 30.0, 60.0), 3: (80.0, 45.0, 90.0),
           4: (0.0, -100.0, 0.0), 5: (0.0, -200.0, 15.0), 6: (-40.0, 0.0, -60.0)}
    for n, p in pts.items():
        g.add_node(n, pos=p, radius=100.0 + n)
    for u, v in [(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (0, 6)]:
        g.add_edge(u, v, length=float(np.linalg.norm(np.subtract(pts[u], pts[v]))))
    return g


def same_geometry(a: nx.Graph, b: nx.Graph, mapping: dict) -> None:
    assert nx.is_isomorphic(a, b)
    for n, m in mapping.items():
        assert b.nodes[m]["pos"] == pytest.approx(a.nodes[n]["pos"], abs=1e-9)
        assert b.nodes[m]["radius"] == pytest.approx(a.nodes[n]["radius"], abs=1e-9)
    assert {frozenset((mapping[u], mapping[v])) for u, v in a.edges} == {frozenset(e) for e in b.edges}


@pytest.mark.parametrize("units", ["um", "nm"])
def test_swc_round_trip(tmp_path, units):
    g = y_graph()
    ids = write_swc(g, tmp_path / "y.swc", units=units)
    back = read_swc(tmp_path / "y.swc")
    same_geometry(g, back, ids)
    assert back.graph["label"] == 7 and back.graph["voxel_size"] == VS
    assert back.size(weight="length") == pytest.approx(g.size(weight="length"))
    rows = [line.split() for line in (tmp_path / "y.swc").read_text().splitlines() if not line.startswith("#")]
    assert f"# units: {units} (x y z radius)" in (tmp_path / "y.swc").read_text()
    # root = a tip of the longest path, parent -1, breadth-first ids, type 3
    assert rows[0][6] == "-1" and rows[0][1] == "3" and 1 in (ids[3], ids[5])
    assert all(int(r[6]) < int(r[0]) for r in rows[1:])
    scale = 1e-3 if units == "um" else 1.0
    x, y, z = (float(v) for v in rows[0][2:5])
    root = next(n for n, i in ids.items() if i == 1)
    assert (z, y, x) == pytest.approx(tuple(scale * c for c in g.nodes[root]["pos"]))


def test_graphml_and_json_round_trip(tmp_path):
    g = y_graph()
    write_graphml(g, tmp_path / "y.graphml")
    write_json(g, tmp_path / "y.json")
    for back in (read_graphml(tmp_path / "y.graphml"), read_json(tmp_path / "y.json")):
        assert back.graph == g.graph
        assert dict(back.nodes(data=True)) == dict(g.nodes(data=True))
        assert {frozenset((u, v)): d for u, v, d in back.edges(data=True)} == {
            frozenset((u, v)): d for u, v, d in g.edges(data=True)
        }


def test_write_skeletons_and_contacts(tmp_path):
    graphs = {7: y_graph(), 9: nx.relabel_nodes(y_graph(), lambda n: n + 100)}
    graphs[9].graph["label"] = 9
    written = write_skeletons(graphs, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(
        [f"{f}/{k}.{f}" for f in ("swc", "graphml", "json") for k in (7, 9)] + ["skeletons.graphml", "skeletons.json"]
    )
    allg = read_graphml(tmp_path / "skeletons.graphml")
    assert allg.number_of_nodes() == 14 and nx.number_connected_components(allg) == 2
    assert {d["label"] for _, d in allg.nodes(data=True)} == {7, 9}

    labels = np.zeros((4, 4, 6), np.uint32)
    labels[:, :, :3], labels[:, :, 3:] = 1, 2
    write_contacts(contact_graph(labels, VS), tmp_path)
    table = pd.read_csv(tmp_path / "contacts.csv")
    assert table.loc[0, ["id_a", "id_b", "n_faces"]].tolist() == [1, 2, 16]
    assert read_graphml(tmp_path / "contacts.graphml").edges[1, 2]["centroid"] == pytest.approx((60.0, 22.5, 37.5))


def test_user_errors(tmp_path):
    with pytest.raises(ConfigError, match="units"):
        write_swc(y_graph(), tmp_path / "a.swc", units="mm")
    with pytest.raises(InputError, match="not found"):
        read_swc(tmp_path / "missing.swc")
    (tmp_path / "bad.swc").write_text("1 3 0 0 0 1\n")
    with pytest.raises(FormatError, match="7 columns"):
        read_swc(tmp_path / "bad.swc")
    (tmp_path / "bad.graphml").write_text("<graphml><oops")
    with pytest.raises(FormatError, match="GraphML"):
        read_graphml(tmp_path / "bad.graphml")
    with pytest.raises(ConfigError, match="format"):
        write_skeletons({}, tmp_path, formats=("obj",))
