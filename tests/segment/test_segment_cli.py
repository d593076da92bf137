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
                 "--sam", str(tmp_path / "bad.pt"), "--device", "cpu",
                 "--voxel-size", "40", "8", "8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bad.pt" in err[0] and "not a readable" in err[0]


@pytest.fixture
def stack_files(blobs, tmp_path):
    """The blobs stack and its labels as TIFFs (no voxel size stated), and a tiny SAM file."""
    import tifffile

    from dendrosam.segment.registry import build_sam, get_arch
    from dendrosam.segment.sam import save_sam_checkpoint

    img, gt = blobs
    tifffile.imwrite(tmp_path / "raw.tif", img, photometric="minisblack")
    tifffile.imwrite(tmp_path / "gt.tif", gt, photometric="minisblack")
    save_sam_checkpoint(tmp_path / "tiny.pt", build_sam("tiny", seed=0), get_arch("tiny"))
    save_sam_checkpoint(tmp_path / "zoom.pt", build_sam("tiny_zoom", seed=0), get_arch("tiny_zoom"))
    return tmp_path


def test_cli_segment_voxel_size_reaches_the_output(stack_files, blobs, tiny_sam, capsys):
    from dendrosam.cli import main
    from dendrosam.reconstruct import open_volume
    from dendrosam.segment.api import segment_slices

    d = stack_files
    out = d / "seg.zarr"
    code = main(["segment", str(d / "raw.tif"), "--out", str(out), "--prompts", "gt-boxes",
                 "--gt", str(d / "gt.tif"), "--sam", str(d / "tiny.pt"), "--device", "cpu",
                 "--voxel-size", "40", "8", "8", "--z-range", "1", "3"])
    assert code == 0 and "segmented 2 sections" in capsys.readouterr().out
    labels = open_volume(f"{out}/labels/sections")
    assert labels.voxel_size == (40.0, 8.0, 8.0)
    img, gt = blobs
    ref = segment_slices(img[1:3], tiny_sam, prompts="gt-boxes", gt=gt[1:3], progress=False)
    assert np.array_equal(np.asarray(labels.data[:]), ref.labels)
    table = pd.read_csv(d / "seg_prompts.csv")
    assert sorted(set(table.z)) == [1, 2] and len(table) == 6


@pytest.mark.parametrize(("extra", "message"), [
    (["--voxel-size", "40", "0", "8"], "--voxel-size"),
    (["--precision", "float16", "--voxel-size", "40", "8", "8"], "float16 needs a CUDA device"),
    (["--batch-size", "0", "--voxel-size", "40", "8", "8"], "--batch-size must be >= 1"),
    (["--cut", "--cut-h", "0", "--voxel-size", "40", "8", "8"], "--cut-h must be > 0"),
])
def test_cli_segment_bad_options_are_one_line(stack_files, capsys, extra, message):
    from dendrosam.cli import main

    d = stack_files
    code = main(["segment", str(d / "raw.tif"), "--out", str(d / "o.zarr"), "--prompts",
                 "gt-boxes", "--gt", str(d / "gt.tif"), "--sam", str(d / "tiny.pt"),
                 "--device", "cpu", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_cli_segment_cut_and_fill(stack_files, tiny_sam, blobs_two_interiors, whole_box_masks):
    import tifffile

    from dendrosam.cli import main
    from dendrosam.reconstruct import open_volume
    from dendrosam.segment.api import SegmentConfig, segment_slices

    img, gt = blobs_two_interiors
    d = stack_files
    tifffile.imwrite(d / "raw.tif", img, photometric="minisblack")
    code = main(["segment", str(d / "raw.tif"), "--out", str(d / "seg.zarr"), "--prompts", "gt-boxes",
                 "--gt", str(d / "gt.tif"), "--sam", str(d / "tiny.pt"), "--device", "cpu",
                 "--voxel-size", "40", "8", "8", "--cut", "--cut-h", "0.5", "--fill"])
    assert code == 0
    got = np.asarray(open_volume(f"{d}/seg.zarr/labels/sections").data[:])
    ref = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False,
                         config=SegmentConfig(cut=True, cut_h=0.5, fill=True))
    assert np.array_equal(got, ref.labels) and (got > 0).all()
    assert (got[:, 59, 81] != got[:, 59, 98]).all()  # cut apart


def test_cli_benchmark_models(stack_files, capsys):
    from dendrosam.cli import main

    d = stack_files
    code = main(["benchmark-models", "--raw", str(d / "raw.tif"), "--gt", str(d / "gt.tif"),
                 "--sam", f"a={d / 'tiny.pt'}", "--sam", f"b={d / 'zoom.pt'}:tiny_zoom",
                 "--out", str(d / "bench"), "--device", "cpu", "--voxel-size", "40", "8", "8",
                 "--z-range", "0", "2"])
    assert code == 0
    table = pd.read_csv(d / "bench" / "per_object.csv")
    assert len(table) == 2 * 2 * 2 * 3  # models x prompt kinds x sections x objects
    assert set(table.model) == {"a", "b"} and sorted(set(table.z)) == [0, 1]
    summary = (d / "bench" / "summary.md").read_text()
    assert summary in capsys.readouterr().out and "| gt-points | b |" in summary
    code = main(["benchmark-models", "--raw", str(d / "raw.tif"), "--gt", str(d / "gt.tif"),
                 "--sam", "nonsense", "--out", str(d / "bench2"), "--voxel-size", "40", "8", "8"])
    assert code == 2 and "NAME=CHECKPOINT" in capsys.readouterr().err


def test_cli_pseudolabel_round_prints_its_metrics_line(stack_files, capsys):
    import json

    import tifffile

    from dendrosam.cli import main

    d = stack_files
    code = main(["pseudolabel", str(d / "raw.tif"), "--region", "0:2", "--sam", str(d / "zoom.pt"),
                 "--detector", "yolov8n.yaml", "--conf", "0", "--min-score=-1e9", "--min-stability", "0",
                 "--min-area", "1", "--steps", "2", "--batch-size", "2", "--warmup", "1",
                 "--val", f"{d / 'raw.tif'}@{d / 'gt.tif'}@2:3", "--work", str(d / "pl"), "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1
    line = json.loads(out[0])
    assert line["round"] == 1 and 0 < line["kept"] <= line["proposed"]
    assert 0.0 <= line["val_iou_after"] <= 1.0 and "det_recall_after" not in line
    assert tifffile.imread(d / "pl" / "round1_labels.tif").shape == (2, 96, 128)


def test_training_pixel_size_comes_from_metadata_or_the_override(tmp_path):
    import tifffile

    from dendrosam.reconstruct.io_writers import write_tiff
    from dendrosam.segment.cli_train import _file_pixel_nm

    data = np.zeros((2, 8, 8), np.uint8)
    stated = write_tiff(tmp_path / "stated.ome.tif", data, (40.0, 4.0, 9.0))
    tifffile.imwrite(tmp_path / "plain.tif", data)  # no voxel size anywhere
    assert _file_pixel_nm(str(stated), None) == pytest.approx(6.0)  # sqrt(4 * 9)
    assert _file_pixel_nm(str(tmp_path / "plain.tif"), None) is None
    assert _file_pixel_nm(str(tmp_path / "plain.tif"), 12.5) == 12.5


def test_run_settings_cut_reaches_the_segmenter(stack_files, tiny_sam, blobs_two_interiors, whole_box_masks):
    """`segment.cut` / `cut_h` of a run's config give the same 2D labels as the segment stage's options."""
    from dendrosam.reconstruct.config import SegmentSettings
    from dendrosam.reconstruct.pipeline import _segment_block
    from dendrosam.segment.api import SegmentConfig, segment_slices

    img, gt = blobs_two_interiors
    settings = SegmentSettings(sam=str(stack_files / "tiny.pt"), device="cpu", prompts="gt-boxes", fill=False,
                               cut=True, cut_h=0.5)
    labels, table = _segment_block(img, gt, settings, 0)
    ref = segment_slices(img, tiny_sam, prompts="gt-boxes", gt=gt, progress=False,
                         config=SegmentConfig(cut=True, cut_h=0.5, conf=settings.conf))
    assert np.array_equal(labels, ref.labels) and (labels[:, 59, 81] != labels[:, 59, 98]).all()
    uncut, _ = _segment_block(img, gt, SegmentSettings(sam=str(stack_files / "tiny.pt"), device="cpu",
                                                       prompts="gt-boxes", fill=False), 0)
    assert (uncut[:, 59, 81] == uncut[:, 59, 98]).all()  # off by default


def test_tta_reaches_the_segmenter_from_the_cli_and_a_run_config(stack_files, zoom_sam, blobs):
    """`--tta` and `segment.tta` give the segment stage's TTA labels; TTA changes them."""
    from dendrosam.cli import main
    from dendrosam.reconstruct import open_volume
    from dendrosam.reconstruct.config import SegmentSettings
    from dendrosam.reconstruct.pipeline import _segment_block
    from dendrosam.segment.api import SegmentConfig, segment_slices

    img, gt = blobs
    d = stack_files
    ref = segment_slices(img, zoom_sam, prompts="gt-boxes", gt=gt, progress=False, config=SegmentConfig(tta=4))
    plain = segment_slices(img, zoom_sam, prompts="gt-boxes", gt=gt, progress=False)
    assert not np.array_equal(ref.labels, plain.labels)
    code = main(["segment", str(d / "raw.tif"), "--out", str(d / "seg.zarr"), "--prompts", "gt-boxes",
                 "--gt", str(d / "gt.tif"), "--sam", str(d / "zoom.pt"), "--device", "cpu",
                 "--voxel-size", "40", "8", "8", "--tta", "4"])
    assert code == 0
    assert np.array_equal(np.asarray(open_volume(f"{d}/seg.zarr/labels/sections").data[:]), ref.labels)
    settings = SegmentSettings(sam=str(d / "zoom.pt"), device="cpu", prompts="gt-boxes", fill=False, tta=4)
    labels, _ = _segment_block(img, gt, settings, 0)
    assert np.array_equal(labels, ref.labels)
