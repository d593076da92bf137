"""CLI: benchmark harness on tiny random models; user errors exit with one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_benchmark_models_writes_table_plots_summary(tiny_sam, zoom_sam, blobs, tmp_path):
    from dendrosam.reconstruct.prompted import prompted_mask_scores
    from dendrosam.segment.api import segment_slices
    from dendrosam.segment.compare import benchmark_models

    img, gt = blobs
    summary = benchmark_models(img[:2], gt[:2], {"a": tiny_sam, "b": zoom_sam}, tmp_path)
    table = pd.read_csv(tmp_path / "per_object.csv")
    assert len(table) == 2 * 2 * 2 * 3  # models x prompt kinds x sections x objects
    assert ((table.iou >= 0) & (table.iou <= 1)).all()
    for f in ("summary.md", "iou_distributions.png", "relative_improvement.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert "| gt-boxes | a |" in summary and "+0.0%" in summary
    ref = segment_slices(img[:1], tiny_sam, prompts="gt-boxes", gt=gt[:1], progress=False)
    s = prompted_mask_scores(gt[0], ref.labels[0], [10, 20, 30])
    got = table[(table.model == "a") & (table.prompts == "gt-boxes") & (table.z == 0)]
    np.testing.assert_allclose(got.iou.to_numpy(), s.iou)


def test_parse_model_specs():
    from dendrosam.errors import ConfigError
    from dendrosam.segment.compare import parse_model_specs

    assert parse_model_specs(["m=a.pt", "n=b.pth:vit_b"]) == {"m": ("a.pt", None),
                                                                "n": ("b.pth", "vit_b")}
    with pytest.raises(ConfigError, match="NAME=CHECKPOINT"):
        parse_model_specs(["a.pt"])


def test_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    import tifffile

    from dendrosam.cli import main

    tifffile.imwrite(tmp_path / "raw.tif", np.zeros((2, 32, 32), np.uint8))
    (tmp_path / "bad.pt").write_bytes(b"nope")
    code = main(["segment", str(tmp_path / "raw.tif"), "--out", str(tmp_path / "o.zarr"),
                 "--prompts", "gt-boxes", "--gt", str(tmp_path / "raw.tif"),
                 "--sam", str(tmp_path / "bad.pt"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bad.pt" in err[0] and "not a readable" in err[0]
