"""``dendrosam skeletonize`` end to end on a small TIFF, and its user errors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import tifffile

from dendrosam.cli import main
from dendrosam.reconstruct.export import read_graphml, read_swc


@pytest.fixture
def labels_tif(tmp_path):
    labels = np.zeros((20, 40, 200), np.uint32)
    labels[5:15, 5:20, 10:190] = 3  # 180 x 15 nm long
    labels[5:15, 20:35, 10:190] = 8  # touches 3 across a y-face of 10 x 180 voxels
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, labels)
    return path


def test_cli_writes_everything(tmp_path, labels_tif):
    out = tmp_path / "out"
    rc = main(["skeletonize", str(labels_tif), "--out", str(out), "--voxel-size", "40", "15", "15",
               "--swc-units", "nm"])
    assert rc == 0
    table = pd.read_csv(out / "morphometrics.csv")
    assert table["label"].tolist() == [3, 8]
    # square-ended boxes: the tips sit in the corners of the end faces, up to 8% beyond 179 voxels
    assert ((table["cable_length_nm"] > 179 * 15) & (table["cable_length_nm"] < 1.09 * 179 * 15)).all()
    assert table["n_tips"].tolist() == [2, 2]
    swc = read_swc(out / "swc" / "3.swc")
    assert swc.size(weight="length") == pytest.approx(table.loc[0, "cable_length_nm"], rel=1e-6)
    assert "# units: nm" in (out / "swc" / "3.swc").read_text()
    assert nx.number_connected_components(read_graphml(out / "skeletons.graphml")) == 2
    contacts = pd.read_csv(out / "contacts.csv")
    assert contacts[["id_a", "id_b", "n_faces"]].values.tolist() == [[3, 8, 1800]]
    assert contacts.loc[0, "area_nm2"] == pytest.approx(1800 * 40 * 15)
    assert (out / "spines.csv").is_file() and (out / "json" / "8.json").is_file()


def test_cli_blocks_match_whole(tmp_path, labels_tif):
    for name, extra in (("whole", []), ("blocks", ["--block-size", "20", "40", "64"])):
        assert main(["skeletonize", str(labels_tif), "--out", str(tmp_path / name),
                     "--voxel-size", "40", "15", "15", *extra]) == 0
    a, b = (pd.read_csv(tmp_path / n / "morphometrics.csv") for n in ("whole", "blocks"))
    assert a["n_tips"].tolist() == b["n_tips"].tolist()
    # box-shaped objects: a flat distance ridge lets blocks pick different rails (see
    # test_blocks_same_topology_several_tubes); topology is exact, cable within 12%
    assert a["n_branch_points"].tolist() == b["n_branch_points"].tolist()
    assert b["cable_length_nm"].to_numpy() == pytest.approx(a["cable_length_nm"].to_numpy(), rel=0.12)


def test_cli_user_errors(tmp_path, labels_tif, capsys):
    assert main(["skeletonize", str(tmp_path / "nope.tif"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.tif" in capsys.readouterr().err
    rc = main(["skeletonize", str(labels_tif), "--out", str(tmp_path / "o"), "--voxel-size", "40", "15", "15",
               "--scale", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("dendrosam: error:") and "scale" in err
