"""`dendrosam demo`: the README's first command, end to end on the bundled real crop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrosam.cli import main
from dendrosam.reconstruct.config import PipelineConfig
from dendrosam.reconstruct.joins import default_join_model
from dendrosam.segment.detector import DEFAULT_YOLO_PATH
from dendrosam.segment.sam import DEFAULT_SAM_PATH

pytestmark = pytest.mark.skipif(
    not (DEFAULT_SAM_PATH.is_file() and DEFAULT_YOLO_PATH.is_file()), reason="shipped models not installed"
)


def test_demo_runs_the_whole_pipeline_and_compares_with_the_baseline(tmp_path, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr("dendrosam.viz.view", lambda out, block=True: opened.append((out, block)))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress", "--view"]) == 0
    printed = capsys.readouterr().out
    assert "dendrosam (shipped models)" in printed and "NeuroProof watershed" in printed
    # the baseline row is the bundled watershed scored against the bundled GT (held-out medulla half)
    rows = {line[:36].strip(): line[36:].split() for line in printed.splitlines() if len(line) > 36}
    assert rows["NeuroProof watershed"] == ["2.130", "0.288", "0.293"]
    # the pipeline row is what the shipped join model's card reports for this crop with the pipeline's
    # default masks and joins (its recipe's own scoring)
    defaults = PipelineConfig()
    assert default_join_model().card["heldout_linkage"] == defaults.joins.linkage
    card = default_join_model().card["heldout_medulla[::4,:,125:]" + ("+fill" if defaults.segment.fill else "")]
    start = "sections" if defaults.joins.start == "sections" else "tracker"
    row = card[start + ("+joins+contacts" if defaults.joins.contacts else "+joins")]
    assert rows["dendrosam (shipped models)"] == [f"{row[k]:.3f}" for k in ("voi_split", "voi_merge", "arand")]
    # overlap-only linking joins a subset of what perfect linking joins: more split, less merge
    perfect = [float(v) for v in rows["same 2D masks, perfect linking"]]
    local = [float(v) for v in rows["same 2D masks, best overlap links"]]
    assert local[0] >= perfect[0] and local[1] <= perfect[1] and np.isfinite(local).all()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["shape"] == [32, 250, 125]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"voi_split", "voi_merge", "arand", "mSA", "SA50", "F1"} <= set(metrics)
    for part in ("report.html", "precomputed/segmentation/info", "skeletons/graphs.json",
                 "tables/morphometrics.csv", "volume.ome.zarr/labels/labels3d"):
        assert (out / part).exists(), part
    assert opened == [(out, True)]
