"""Training bookkeeping: resumable state files and the metrics log (CSV + JSON lines)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MetricsLog", "save_state", "load_state"]


class MetricsLog:
    """Append one row per step to ``metrics.jsonl`` and ``metrics.csv`` (columns grow as needed)."""

    def __init__(self, csv_path: Path, jsonl_path: Path) -> None:
        self.csv_path, self.jsonl_path = Path(csv_path), Path(jsonl_path)
        self._cols: list[str] | None = None  # the CSV header, read once

    def reset(self) -> None:
        """Start empty logs (a fresh run)."""
        for p in (self.csv_path, self.jsonl_path):
            p.unlink(missing_ok=True)
        self._cols = None

    def write(self, row: dict[str, Any]) -> None:
        """Append a row to both logs (constant time per row; a new column rewrites the CSV once)."""
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._cols is None:
            self._cols = self._header() if self.csv_path.exists() else []
        if self._cols and all(k in self._cols for k in row):
            with open(self.csv_path, "a", newline="") as f:
                csv.DictWriter(f, self._cols).writerow(row)
            return
        self._rewrite_csv(self.rows())

    def _rewrite_csv(self, rows: list[dict[str, Any]]) -> None:
        self._cols = list(dict.fromkeys(k for r in rows for k in r))
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, self._cols)
            w.writeheader()
            w.writerows(rows)

    def _header(self) -> list[str]:
        with open(self.csv_path, newline="") as f:
            return next(csv.reader(f), [])

    def rows(self) -> list[dict[str, Any]]:
        """Every logged row (from the JSON lines)."""
        if not self.jsonl_path.exists():
            return []
        return [json.loads(line) for line in self.jsonl_path.read_text().splitlines() if line]

    def truncate(self, step: int) -> None:
        """Drop rows after ``step`` (a resumed run repeats nothing)."""
        rows = [r for r in self.rows() if r.get("step", 0) <= step]
        with open(self.jsonl_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        self._rewrite_csv(rows)


def portable_card(obj: Any) -> Any:
    """Model cards travel with the model: absolute paths are cut to their last two parts.

    ``/data/em/medulla_fib/raw.ome.tif`` -> ``medulla_fib/raw.ome.tif`` (the data set and file
    name are what a reader needs; the machine's folder layout is not).
    """
    if isinstance(obj, dict):
        return {k: portable_card(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable_card(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and "\n" not in obj:
        return "/".join(Path(obj).parts[-2:])
    return obj


def _plain(obj: Any) -> Any:
    """Numpy scalars anywhere in nested dicts/lists -> Python numbers (``weights_only`` refuses them)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def save_state(path: Path, model: Any, opt: Any, rng: np.random.Generator, **info: Any) -> None:
    """Write model + optimizer + RNG states and ``info`` as a plain, ``weights_only`` dict (atomic)."""
    import torch

    state = {
        "format": "dendrosam-train-state", "model_state": model.state_dict(),
        "optimizer_state": _plain(opt.state_dict()), "torch_rng": torch.get_rng_state(),
        "numpy_rng": json.dumps(rng.bit_generator.state), **_plain(info),
    }
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path, model: Any, opt: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote into ``model``, ``opt`` and ``rng``; return the dict."""
    import torch

    from dendrosam.errors import CheckpointError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CheckpointError(f"{path}: not a readable training state ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != "dendrosam-train-state":
        raise CheckpointError(f"{path}: not a dendrosam training state file")
    model.load_state_dict(state["model_state"])
    opt.load_state_dict(state["optimizer_state"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = json.loads(state["numpy_rng"])
    return state
