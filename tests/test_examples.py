"""Every example script runs at tiny size (``--tiny``), so the examples never rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("reconstruct_from_python.py", "re-opened"),
        ("run_on_dask_cluster.py", "local cluster of 2 workers"),
        ("train_on_your_sections.py", "reconstructed"),
        ("publish_and_view.py", "Neuroglancer viewer: http://127.0.0.1:"),
    ],
)
def test_example_runs_tiny(script, expect, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout
    runs = sorted((tmp_path / "run").rglob("run.json"))
    if script != "publish_and_view.py":
        assert runs and all(r.read_text().count('"complete"') == 1 for r in runs)


def test_tracker_quality_gt_continuity_counts_inner_endings():
    """Ids ending inside the field and ids beginning are counted per section pair; border ids are not."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("tracker_quality", EXAMPLES / "tracker_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gt = np.zeros((4, 10, 10), np.uint16)
    gt[:, 4:6, 4:6] = 1  # runs through
    gt[:2, 1:3, 1:3] = 2  # ends at z 1, inside the field
    gt[2:, 1:3, 1:3] = 3  # begins at z 2 where 2 ended
    gt[:2, 7:, 7:] = 4  # ends at z 1 too, but touches the border
    assert module.gt_continuity(gt) == [(1, 1, 1), (2, 0, 0)]


def test_joins_quality_links_one_stack_six_ways(tmp_path):
    """Two straight tubes in perfect 2D labels: every linking recovers them exactly (VI 0, ARAND 0)."""
    import importlib.util

    import numpy as np

    from dendrosam.reconstruct.join_features import FEATURE_NAMES
    from dendrosam.reconstruct.joins import JoinModel

    spec = importlib.util.spec_from_file_location("joins_quality", EXAMPLES / "joins_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gt = np.zeros((5, 20, 20), np.uint16)
    gt[:, 2:8, 2:8], gt[:, 11:18, 10:16] = 1, 2
    labels2d = gt * 3  # other ids than the GT's
    n = len(FEATURE_NAMES)
    w = np.zeros((1, n))
    w[0, FEATURE_NAMES.index("iou")] = 50.0  # joins pairs with IoU > 0.5
    model = JoinModel(np.zeros(n), np.ones(n), (((w, np.array([-25.0])),),), {})
    image = np.random.default_rng(0).random(gt.shape)
    rows = module.link_six_ways(labels2d, image, gt, (40.0, 10.0, 10.0), model)
    assert list(rows) == list(module.COLUMNS.values())
    assert all(v == (0.0, 0.0, 0.0) for v in rows.values())
    proc = subprocess.run([sys.executable, str(EXAMPLES / "joins_quality.py"), "--tiny"], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("|") == 3 * (len(module.COLUMNS) + 2) and "synthetic" in proc.stdout


def test_join_folds_tiny_prints_one_fold_six_ways():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "join_folds.py"), "--tiny"], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 3 and rows[2].startswith("| synthetic1 |")
    assert rows[2].count("0.000 / 0.000 / 0.000") == 6  # perfect 2D labels: every linking is exact


def test_validation_folds_train_without_the_fold(monkeypatch):
    import numpy as np

    from dendrosam.reconstruct import join_recipe

    trained, scored = [], []

    def examples(raw, gt, vs, variants):  # one example per unit of the sample's value
        n = int(raw[0, 0, 0])
        return ([join_recipe.JoinExamples(np.zeros((n, 1)), np.zeros(n), np.ones(n))],) * 2

    monkeypatch.setattr(join_recipe, "_examples", examples)
    monkeypatch.setattr(join_recipe, "train_join_model", lambda ex, **kw: trained.append(len(ex.labels)) or "m")
    monkeypatch.setattr(join_recipe, "linking_scores", lambda raw, gt, lab, vs, model: scored.append(
        int(raw[0, 0, 0])) or {"n": int(raw[0, 0, 0])})
    samples = [(name, np.full((1, 2, 2), n), None, (1.0, 1.0, 1.0)) for name, n in (("a", 3), ("b", 5), ("c", 7))]
    out = dict(join_recipe.validation_folds(samples, lambda raw, gt, vs: (raw,), ["b", "a"]))
    assert trained == [3 + 7, 5 + 7] and scored == [5, 3] and out == {"b": {"n": 5}, "a": {"n": 3}}
    with pytest.raises(ValueError, match=r"no sample named \['d'\]"):
        next(join_recipe.validation_folds(samples, lambda raw, gt, vs: (raw,), ["d"]))


def test_fold_masks_use_the_sam_they_are_given():
    import numpy as np

    from dendrosam.errors import CheckpointError
    from dendrosam.reconstruct.join_recipe import _masks

    with pytest.raises(CheckpointError, match="missing.pt: file not found"):
        _masks(np.full((1, 32, 32), 128, np.uint8), (40.0, 10.0, 10.0), sam="missing.pt")
