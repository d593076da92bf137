"""QC figures render to real PNGs; the report is self-contained and carries the numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dendrosam.viz.figures import label_colours, write_figures
from dendrosam.viz.report import flatten, write_report
from dendrosam.viz.rundata import RunData

METRICS = {"voi_split": 0.4213, "voi_merge": 0.1187, "arand": 0.0931, "SA50": 0.875,
           "per_section": [{"z": z, "voi_split": 0.1 * z, "voi_merge": 0.05} for z in range(4)],
           "worst_objects": [{"label": 7, "iou": 0.31}, {"label": 3, "iou": 0.72}]}


@pytest.fixture
def run(synthetic):
    labels2d = synthetic["labels"].copy()
    labels2d[:, :40] = np.where(labels2d[:, :40] > 0, labels2d[:, :40] + 100, 0)  # other 2D ids
    return RunData(voxel_size=synthetic["voxel_size"], image=synthetic["image"], labels=synthetic["labels"],
                   labels2d=labels2d, skeletons=synthetic["skeletons"], morphometrics=synthetic["morphometrics"],
                   metrics=METRICS, config={"track": {"min_overlap": 0.25}, "sam": {"type": "tiny"}},
                   run={"timings": {"segment": 12.5, "track": 0.8}, "model_cards": {"sam": {"name": "tiny-sam-v1"}}})


def test_label_colours_are_stable_per_id():
    a = label_colours(np.array([[0, 5, 9]]))
    b = label_colours(np.array([[9, 5]]))
    assert a[0, 0, 3] == 0 and (a[0, 1:, 3] == 1).all()
    np.testing.assert_array_equal(a[0, 1], b[0, 1])
    np.testing.assert_array_equal(a[0, 2], b[0, 0])
    assert not np.array_equal(a[0, 1], a[0, 2])


def test_every_figure_renders_a_non_trivial_png(tmp_path, run):
    from PIL import Image

    paths = write_figures(run, tmp_path)
    assert set(paths) == {"sections", "projections", "skeletons", "morphometrics", "metrics"}
    for name, path in paths.items():
        img = np.asarray(Image.open(path).convert("L"))
        assert img.shape[0] >= 300 and img.shape[1] >= 400, name
        assert path.stat().st_size > 10_000, name
        assert img.std() > 10, name  # not a blank canvas


def test_report_is_self_contained_and_holds_the_numbers(tmp_path, run):
    paths = write_report(tmp_path / "report", run)
    page = paths.html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?https?:""", page)  # no external assets
    assert page.count("data:image/png;base64,") == 5
    for text in ("0.4213", "0.1187", "0.0931", "0.875", "tiny-sam-v1", "min_overlap", "12.5"):
        assert text in page
    md = paths.markdown.read_text()
    assert "| voi_split | 0.4213 |" in md and "| track.min_overlap | 0.25 |" in md
    assert "![skeletons](figures/skeletons.png)" in md


def test_flatten_nested_config():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": [{"x": 1}]}) == {"a.b": 1, "a.c": [1, 2], "d": "[1 entries]"}


def test_morphometric_histograms_of_equal_values():
    """Objects of one size give columns whose values differ only by rounding: numpy's histogram
    cannot split such a range into bins, so the figure uses one bin around them."""
    import pandas as pd

    from dendrosam.viz.figures import plot_morphometrics

    length = 7600.0 + np.array([0.0, 9.1e-13, 1.8e-12])
    fig = plot_morphometrics(pd.DataFrame({"label": [1, 2, 3], "cable_length_nm": length, "n": [4, 4, 4]}))
    counts = [patch.get_height() for patch in fig.axes[0].patches]
    assert sum(counts) == 3 and len(counts) == 1
