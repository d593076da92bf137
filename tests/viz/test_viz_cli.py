"""The run-folder adapter and the publish / report commands on a run folder."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from dendrosam.cli import main
from dendrosam.errors import InputError
from dendrosam.viz.ome_zarr import write_viewer_ome_zarr
from dendrosam.viz.rundata import load_run_data


@pytest.fixture
def run_folder(tmp_path, synthetic):
    """A run folder in the pipeline's layout (labels2d missing: optional parts may be absent)."""
    out = tmp_path / "run"
    write_viewer_ome_zarr(out / "volume.ome.zarr" / "raw", synthetic["image"], synthetic["voxel_size"],
                          synthetic["labels"], chunks=(4, 32, 32))
    (out / "skeletons").mkdir()
    graphs = {str(k): nx.node_link_data(g, edges="links") for k, g in synthetic["skeletons"].items()}
    (out / "skeletons" / "graphs.json").write_text(json.dumps(graphs))
    (out / "tables").mkdir()
    synthetic["morphometrics"].to_csv(out / "tables" / "morphometrics.csv", index=False)
    (out / "metrics.json").write_text(json.dumps({"voi_split": 0.25, "voi_merge": 0.5}))
    (out / "config.toml").write_text("[track]\nmin_overlap = 0.3\n")
    (out / "run.json").write_text(json.dumps({"voxel_size": [40, 8, 8], "timings": {"track": 1.5}}))
    return out


def test_load_run_data_reads_every_part(run_folder, synthetic):
    data = load_run_data(run_folder)
    assert data.voxel_size == (40.0, 8.0, 8.0) and data.labels2d is None
    np.testing.assert_array_equal(data.labels[:], synthetic["labels"])
    np.testing.assert_array_equal(data.image[:], synthetic["image"])
    assert sorted(data.skeletons) == [3, 7]
    assert data.skeletons[7].nodes[0]["pos"] == (80.0, 400.0, 360.0)
    assert data.config == {"track": {"min_overlap": 0.3}} and data.metrics["voi_merge"] == 0.5
    assert list(data.morphometrics["label"]) == [3, 7, 11]


def test_publish_and_report_commands(run_folder, capsys):
    assert main(["publish", str(run_folder)]) == 0
    assert "3 objects, 3 meshes, 2 skeletons" in capsys.readouterr().out
    assert (run_folder / "precomputed" / ".complete").is_file()
    assert main(["publish", str(run_folder)]) == 0  # idempotent
    assert "already complete: image, segmentation" in capsys.readouterr().out
    assert main(["report", str(run_folder)]) == 0
    page = (run_folder / "report" / "report.html").read_text()
    assert "0.25" in page and "min_overlap" in page


def test_user_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["publish", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"dendrosam: error: {tmp_path / 'missing'}: run folder not found"
    with pytest.raises(InputError, match="not a dendrosam run folder"):
        load_run_data(tmp_path)
