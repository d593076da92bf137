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


def test_tracker_quality_finds_the_wrong_link_and_removes_it():
    """v (GT id 2) overlaps A (GT 1) more than B (GT 2), its own past: one wrong link, merge 0 without it."""
    import importlib.util

    import numpy as np

    from dendrosam.reconstruct.tracking import track

    spec = importlib.util.spec_from_file_location("tracker_quality", EXAMPLES / "tracker_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gt = np.zeros((3, 8, 32), np.uint16)
    gt[:2, 2:6, 2:10] = 1
    gt[:2, 2:6, 12:22] = 2
    gt[2, 2:6, 4:16] = 2
    labels2d = module.per_section(gt, "a")
    result = track(labels2d, (40, 10, 10))
    c = module.wrong_links(gt, labels2d, result)
    assert int(c["wrong"].sum()) == 1 and not c["shifted"].any() and not c["end_begin"].any()
    rows = {name: (n, m) for name, n, m in module.merge_sources(gt, labels2d, result)}
    assert rows["as tracked"][1]["vi_merge"] > 0.5
    assert rows["without every wrong link"][0] == 1 and rows["without every wrong link"][1]["vi_merge"] == 0.0


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
    proc = subprocess.run([sys.executable, str(EXAMPLES / "join_folds.py"), "--tiny", "--classifier", "mlp"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 3 and rows[2].startswith("| synthetic1 |")
    assert rows[2].count("0.000 / 0.000 / 0.000") == 6  # perfect 2D labels: every linking is exact
    proc = subprocess.run([sys.executable, str(EXAMPLES / "join_folds.py"), "--tiny", "--repeats", "1", "--stop",
                           "0.6", "--classifier", "mlp"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 4 and rows[3].startswith("| synthetic1 ~1 |") and rows[3].count("0.000 / 0.000 / 0.000") == 6
    trees = subprocess.run([sys.executable, str(EXAMPLES / "join_folds.py"), "--tiny"],  # trees, the default
                           capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert trees.returncode == 0, trees.stderr[-3000:]
    row = trees.stdout.strip().splitlines()[2]  # trees fit on one small stack: the default (GAEC) linking is exact
    assert row.startswith("| synthetic1 | 0.000 / 0.000 / 0.000 |") and row.endswith("| 0.000 / 0.000 / 0.000 |")
    two = subprocess.run([sys.executable, str(EXAMPLES / "join_folds.py"), "--tiny", "--stages", "2"],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.strip().splitlines()[2].count("0.000 / 0.000 / 0.000") == 6  # two stages, trained on two stacks
    bad = subprocess.run([sys.executable, str(EXAMPLES / "join_folds.py"), "--tiny", "--stop", "1.5"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--stop in (0, 1]" in bad.stderr and not bad.stdout


def test_validation_folds_train_without_the_fold(monkeypatch):
    import numpy as np

    from dendrosam.reconstruct import join_recipe

    trained, scored = [], []

    class Graph:  # one example per unit of the sample's value
        def __init__(self, labels, raw, gt, vs):
            n = int(raw[0, 0, 0])
            self.examples = join_recipe.JoinExamples(np.zeros((n, 1)), np.zeros(n), np.ones(n))

        def known(self, contacts=False):
            return self.examples

    monkeypatch.setattr(join_recipe, "join_graph", Graph)
    monkeypatch.setattr(join_recipe, "train_join_model", lambda ex, **kw: trained.append(len(ex.labels)) or "m")
    monkeypatch.setattr(join_recipe, "linking_scores", lambda raw, gt, lab, vs, model, **kw: scored.append(
        int(raw[0, 0, 0])) or {"n": int(raw[0, 0, 0])})
    samples = [(name, np.full((1, 2, 2), n), None, (1.0, 1.0, 1.0)) for name, n in (("a", 3), ("b", 5), ("c", 7))]
    out = dict(join_recipe.validation_folds(samples, lambda raw, gt, vs: (raw,), ["b", "a"]))
    assert trained == [3 + 7, 5 + 7] and scored == [5, 3] and out == {"b": {"n": 5}, "a": {"n": 3}}
    with pytest.raises(ValueError, match=r"no sample named \['d'\]"):
        next(join_recipe.validation_folds(samples, lambda raw, gt, vs: (raw,), ["d"]))


def test_validation_folds_score_perturbed_copies_with_the_fold_model(monkeypatch):
    """``repeats`` copies, perturbed with seeds 1..K, are segmented and linked with the fold's model and stop."""
    import numpy as np

    from dendrosam.reconstruct import join_recipe

    calls = []
    one = join_recipe.JoinExamples(np.zeros((1, 1)), np.zeros(1), np.ones(1))

    class Graph:
        def __init__(self, labels, raw, gt, vs):
            pass

        def known(self, contacts=False):
            return one

    monkeypatch.setattr(join_recipe, "join_graph", Graph)
    monkeypatch.setattr(join_recipe, "train_join_model", lambda ex, **kw: "model")
    monkeypatch.setattr(join_recipe, "linking_scores", lambda raw, gt, lab, vs, model, stop=None, linkage=None:
                        calls.append((int(raw[0, 0, 0]), int(lab[0, 0, 0]), model, stop)) or {})
    samples = [(name, np.full((1, 2, 2), n), None, (1.0, 1.0, 1.0)) for name, n in (("a", 3), ("b", 5))]
    masks = lambda raw, gt, vs: (raw * 2,)  # noqa: E731 - the "labels" remember the image they came from
    names = [f for f, _ in join_recipe.validation_folds(samples, masks, ["b"], repeats=2, stop=0.6,
                                                         perturb=lambda raw, seed: raw + 100 * seed)]
    assert names == ["b", "b ~1", "b ~2"]
    assert calls == [(5, 10, "model", 0.6), (105, 210, "model", 0.6), (205, 410, "model", 0.6)]
    with pytest.raises(ValueError, match="repeats > 0 needs perturb"):
        next(join_recipe.validation_folds(samples, masks, ["b"], repeats=1))


def test_fold_masks_use_the_sam_they_are_given():
    import numpy as np

    from dendrosam.errors import CheckpointError
    from dendrosam.reconstruct.join_recipe import _masks

    with pytest.raises(CheckpointError, match="missing.pt: file not found"):
        _masks(np.full((1, 32, 32), 128, np.uint8), (40.0, 10.0, 10.0), sam="missing.pt")


def test_robustness_resamples_sections_and_labels_exactly():
    """Halving a two-cell section: labels keep the id under each new pixel's centre, the image is area-averaged."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("robustness", EXAMPLES / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gt = np.zeros((3, 40, 40), np.uint16)
    gt[:, :, :19], gt[:, :, 21:] = 1, 2  # a 2-px membrane (0) at x 19-20
    raw = np.where(gt > 0, 200, 30).astype(np.uint8)
    img, (lab,) = module.resample_stack(raw, [gt], 0.5)
    assert img.shape == lab.shape == (3, 20, 20) and img.dtype == np.uint8
    assert lab[1, 7].tolist() == [1] * 9 + [0] + [2] * 10  # source columns 2k + 1: 19 is membrane, 21 is cell 2
    assert img[1, 7].tolist() == [200] * 9 + [115, 115] + [200] * 9  # (200 + 30) / 2 where a pair holds membrane
    same, (same_lab,) = module.resample_stack(raw, [gt], 1.0)
    assert same is raw and same_lab is gt
    proc = subprocess.run([sys.executable, str(EXAMPLES / "robustness.py"), "--tiny"], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 4 and rows[2].startswith("| synthetic | 10 | 96 × 96 |") and "| 15 | 64 × 64 |" in rows[3]
    noisy = subprocess.run([sys.executable, str(EXAMPLES / "robustness.py"), "--tiny", "--repeats", "2", "--set",
                            "track.gap=2"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                           timeout=300)
    assert noisy.returncode == 0, noisy.stderr[-3000:]
    rows = noisy.stdout.strip().splitlines()
    assert rows[0].endswith("| 2 noisy copies |") and all(r.count("(mean ") == 2 for r in rows[2:])
    bad = subprocess.run([sys.executable, str(EXAMPLES / "robustness.py"), "--tiny", "--set", "joins.stopp=1"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown key 'joins.stopp'" in bad.stderr and not bad.stdout


def test_robustness_offsets_are_the_four_40nm_stacks_of_the_held_out_half(tmp_path):
    """``--offsets``: section k, k+4, ... of x >= 125 for k = 0..3, image, GT and watershed alike."""
    import importlib.util

    import numpy as np
    import tifffile

    spec = importlib.util.spec_from_file_location("robustness", EXAMPLES / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cube = tmp_path / "medulla_fib"
    cube.mkdir()
    vol = np.arange(9 * 2 * 128, dtype=np.uint32).reshape(9, 2, 128)
    for name, dtype in (("raw", np.uint8), ("neurons", np.uint32), ("watershed_overseg", np.uint32)):
        tifffile.imwrite(cube / f"{name}_z000-124.ome.tif", (vol % 251).astype(dtype) if dtype == np.uint8 else vol)
    crops = list(module._crops(tmp_path, [10.0], [], offsets=True))
    assert [c[0] for c in crops] == [f"medulla 40 nm, held-out [{k}::4]" for k in range(4)]
    for k, (_, (raw, gt, ws), vs, px) in enumerate(crops):
        assert gt.shape == (len(range(k, 9, 4)), 2, 3) and vs == (40.0, 10.0, 10.0) and px == 10.0
        assert (gt == vol[k::4, :, 125:]).all() and (ws == gt).all() and (raw == gt % 251).all()
    bad = subprocess.run([sys.executable, str(EXAMPLES / "robustness.py"), str(tmp_path / "nowhere"), "--offsets"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--offsets needs" in bad.stderr and not bad.stdout
