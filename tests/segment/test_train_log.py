"""The training metrics log: CSV and JSON lines agree, new columns, exact truncation on resume."""

import csv
import json

from dendrosam.segment.train_log import MetricsLog


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_log_columns_grow_and_truncate(tmp_path):
    log = MetricsLog(tmp_path / "m.csv", tmp_path / "m.jsonl")
    log.reset()
    for step in range(1, 6):
        row = {"step": step, "loss": 1.0 / step}
        if step == 3:
            row["val_iou"] = 0.5  # a validation column appears mid-run
        log.write(row)
    rows = _csv_rows(tmp_path / "m.csv")
    assert list(rows[0]) == ["step", "loss", "val_iou"]
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["val_iou"] for r in rows] == ["", "", "0.5", "", ""]

    # a resumed run (new object, as after a restart) drops rows after the checkpoint and appends
    log2 = MetricsLog(tmp_path / "m.csv", tmp_path / "m.jsonl")
    log2.truncate(3)
    log2.write({"step": 4, "loss": 0.2})
    assert [r["step"] for r in _csv_rows(tmp_path / "m.csv")] == ["1", "2", "3", "4"]
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4] and lines[-1]["loss"] == 0.2
    assert log2.rows() == lines
