"""The user-mistake catalogue, through the real CLI: every case exits non-zero with exactly one
``dendrosam: error:`` line naming the file/option and the problem, and never a traceback.

Cases that are *accepted* (16-bit, float, constant sections) are checked to succeed.
Run with ``-s`` to print the "case -> message" table used in the docs.
"""

from __future__ import annotations

import warnings

import errno
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dendrosam.cli import main

VS = ["--voxel-size", "40", "10", "10"]
FAST = ["--method", "threshold", "--no-progress"]
TABLE: list[tuple[str, str]] = []


def stack(dtype=np.uint8, shape=(4, 32, 32)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random(shape) * 200).astype(dtype)


def tif(path: Path, arr: np.ndarray) -> Path:
    import tifffile

    tifffile.imwrite(path, arr, photometric="minisblack")
    return path


# ----------------------------------------------------------------------------- case builders
# each returns the argv; ``t`` is a fresh temporary folder
def c_missing(t):
    return ["run", str(t / "nope.tif"), "--out", str(t / "o"), *VS, *FAST]


def c_empty_dir(t):
    (t / "empty").mkdir()
    (t / "empty" / "notes.txt").write_text("x")
    return ["run", str(t / "empty"), "--out", str(t / "o"), *VS, *FAST]


def c_mixed_sizes(t):
    from PIL import Image

    d = t / "slices"
    d.mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(d / "s000.png")
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(d / "s001.png")
    return ["run", str(d), "--out", str(t / "o"), *VS, *FAST]


def c_extension(t):
    (t / "stack.xyz").write_bytes(b"hello")
    return ["run", str(t / "stack.xyz"), "--out", str(t / "o"), *VS, *FAST]


def c_truncated_tiff(t):
    p = tif(t / "s.tif", stack(shape=(4, 64, 64)))
    p.write_bytes(p.read_bytes()[:3000])
    return ["run", str(p), "--out", str(t / "o"), *VS, *FAST]


def c_corrupt_zarr(t):
    import zarr

    arr = zarr.open_array(str(t / "s.zarr"), mode="w", shape=(4, 32, 32), chunks=(1, 32, 32), dtype="uint8")
    arr[:] = stack()
    chunk = next(p for p in (t / "s.zarr").rglob("*") if p.is_file() and p.parent.name != "s.zarr" and "zarr.json" not in p.name)
    chunk.write_bytes(b"garbage" * 3)
    return ["run", str(t / "s.zarr"), "--out", str(t / "o"), *VS, *FAST]


def c_zarr_4d(t):
    import zarr

    zarr.open_array(str(t / "s.zarr"), mode="w", shape=(2, 2, 8, 8, 3), dtype="uint8")
    return ["run", str(t / "s.zarr"), "--out", str(t / "o"), *VS, *FAST]


def c_h5_1d(t):
    import h5py

    with h5py.File(t / "s.h5", "w") as f:
        f["raw"] = np.zeros(10, np.uint8)
    return ["run", str(t / "s.h5"), "--out", str(t / "o"), *VS, *FAST]


def c_2d_image(t):
    return ["run", str(tif(t / "one.tif", stack()[0])), "--out", str(t / "o"), *VS, *FAST]


def c_zero_size(t):
    import zarr

    zarr.open_array(str(t / "s.zarr"), mode="w", shape=(0, 32, 32), dtype="uint8")
    return ["run", str(t / "s.zarr"), "--out", str(t / "o"), *VS, *FAST]


def c_voxel(values):
    def build(t):
        return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), "--voxel-size", *values, *FAST]

    return build


def c_gt(labels: Callable[[], np.ndarray]):
    def build(t):
        return ["run", str(tif(t / "s.tif", stack())), "--gt", str(tif(t / "gt.tif", labels())),
                "--out", str(t / "o"), *VS, *FAST]

    return build


def _tiny_sam(t) -> Path:
    from dendrosam.segment import build_sam, get_arch, save_sam_checkpoint

    return save_sam_checkpoint(t / "tiny.pt", build_sam("tiny", seed=0), get_arch("tiny"))


def c_not_checkpoint(t):
    (t / "m.pt").write_bytes(b"this is not a checkpoint")
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS, "--sam", str(t / "m.pt")]


def c_wrong_arch(t):
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS,
            "--sam", str(_tiny_sam(t)), "--sam-type", "vit_b"]


class _Evil:
    def __reduce__(self):
        return (print, ("code ran at load time",))


def c_pickle(t):
    import torch

    torch.save({"model_state": _Evil()}, t / "evil.pt")
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS, "--sam", str(t / "evil.pt")]


def c_not_yolo(t):
    (t / "y.pt").write_bytes(pickle.dumps({"not": "yolo"}))
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS, "--no-progress",
            "--sam", str(_tiny_sam(t)), "--detector", str(t / "y.pt")]


def c_config(text):
    def build(t):
        (t / "c.toml").write_text(text)
        return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS, *FAST, "--config", str(t / "c.toml")]

    return build


def c_set_malformed(t):
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS, *FAST, "--set", "track.gap"]


def c_other_run(t):
    src = str(tif(t / "s.tif", stack()))
    assert main(["run", src, "--out", str(t / "o"), *VS, *FAST]) == 0
    return ["run", src, "--out", str(t / "o"), *VS, *FAST, "--set", "segment.threshold=0.5"]


def c_unwritable(t):
    (t / "afile").write_text("x")
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "afile" / "sub"), *VS, *FAST]


def c_locked(t):
    import subprocess
    import sys

    src = str(tif(t / "s.tif", stack()))
    assert main(["run", src, "--out", str(t / "o"), *VS, *FAST]) == 0
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (t / "o" / ".dendrosam" / "lock").write_text(str(holder.pid))
    t.joinpath("holder").write_text(str(holder.pid))
    return ["run", src, "--out", str(t / "o"), *VS, *FAST, "--resume"]


def c_scheduler(t):
    return ["run", str(tif(t / "s.tif", stack())), "--out", str(t / "o"), *VS, *FAST,
            "--scheduler", "tcp://127.0.0.1:9", "--set", "engine.connect_timeout_s=1.0"]


def c_demo_missing_models(t):
    return ["demo", "--out", str(t / "demo")]


FAILS: dict[str, tuple[Callable, str]] = {
    "missing input path": (c_missing, "nope.tif"),
    "folder with no images": (c_empty_dir, "empty"),
    "mixed slice sizes in a folder": (c_mixed_sizes, "slices"),
    "unsupported extension": (c_extension, "stack.xyz"),
    "truncated TIFF": (c_truncated_tiff, "s.tif"),
    "corrupt zarr chunk": (c_corrupt_zarr, "s.zarr"),
    "zarr with 5 dimensions": (c_zarr_4d, "s.zarr"),
    "HDF5 dataset with 1 dimension": (c_h5_1d, "s.h5"),
    "2D image where a stack is needed": (c_2d_image, "one.tif"),
    "zero-size dimension": (c_zero_size, "s.zarr"),
    "voxel size zero": (c_voxel(["40", "0", "10"]), "voxel"),
    "voxel size negative": (c_voxel(["-40", "10", "10"]), "voxel"),
    "voxel size absurd": (c_voxel(["4e9", "10", "10"]), "voxel"),
    "labels with negative values": (c_gt(lambda: -np.ones((4, 32, 32), np.int32)), "gt.tif"),
    "labels with fractional values": (c_gt(lambda: np.full((4, 32, 32), 1.5, np.float32)), "gt.tif"),
    "labels shape differs from the image": (c_gt(lambda: np.ones((4, 16, 32), np.uint16)), "shape"),
    "checkpoint that is not a checkpoint": (c_not_checkpoint, "m.pt"),
    "SAM checkpoint of another architecture": (c_wrong_arch, "vit_b"),
    "pickle checkpoint that would run code": (c_pickle, "evil.pt"),
    "YOLO file that is not YOLO": (c_not_yolo, "y.pt"),
    "config with an unknown key": (c_config("[segment]\nsam_typ = 'vit_b'\n"), "segment.sam_typ"),
    "config value of the wrong type": (c_config("[engine]\nworkers = 'two'\n"), "engine.workers"),
    "config that is not TOML": (c_config("[engine\n"), "c.toml"),
    "malformed --set option": (c_set_malformed, "KEY=VALUE"),
    "output holds a different run": (c_other_run, "--overwrite"),
    "unwritable output": (c_unwritable, "afile"),
    "output locked by a running process": (c_locked, "pid"),
    "unreachable --scheduler": (c_scheduler, "tcp://127.0.0.1:9"),
    "demo without the shipped models": (c_demo_missing_models, "shipped"),
}


def _check_one_error(capsys, argv, must_name: str, case: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dendrosam: error:")]
    assert code != 0, f"{case}: exit code 0"
    assert len(errors) == 1, err
    assert must_name.lower() in errors[0].lower(), errors[0]
    TABLE.append((case, errors[0].replace(str(Path.cwd()), ".")))


@pytest.mark.parametrize("case", list(FAILS))
def test_user_mistake(case, tmp_path, capsys, monkeypatch, request):
    build, must_name = FAILS[case]
    if case == "demo without the shipped models":  # a build without them: point at a missing file
        monkeypatch.setattr("dendrosam.segment.sam.DEFAULT_SAM_PATH", tmp_path / "dendrosam_sam_pieces.pt")
    argv = build(tmp_path)
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    try:
        _check_one_error(capsys, argv, must_name, case)
    finally:
        holder = tmp_path / "holder"
        if holder.exists():
            import os
            import signal

            os.kill(int(holder.read_text()), signal.SIGKILL)


def test_disk_full_during_a_chunk_write(tmp_path, capsys, monkeypatch):
    import zarr

    real = zarr.Array.__setitem__

    def full(self, key, value):
        if "labels" in str(self.store_path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", full)
    argv = ["run", str(tif(tmp_path / "s.tif", stack())), "--out", str(tmp_path / "o"), *VS, *FAST]
    _check_one_error(capsys, argv, "disk full", "disk full during a write")
    assert '"complete"' not in (tmp_path / "o" / "run.json").read_text()


ACCEPTED = {
    "16-bit stack": lambda: stack(np.uint16) * 100,
    "float32 stack": lambda: stack(np.float32) / 7.0,
    "a constant section": lambda: np.concatenate([stack()[:3], np.full((1, 32, 32), 7, np.uint8)]),
    "an all-zero stack": lambda: np.zeros((4, 32, 32), np.uint8),
    "NaN and inf pixels": lambda: np.where(np.arange(32) % 5 == 0, np.nan, stack(np.float32)).astype(np.float32),
}

ACCEPTED_WARNING = {
    "a constant section": "section 3",
    "NaN and inf pixels": "NaN",
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_inputs_succeed(case, tmp_path, capsys):
    argv = ["run", str(tif(tmp_path / "s.tif", ACCEPTED[case]())), "--out", str(tmp_path / "o"), *VS, *FAST]
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert '"complete"' in (tmp_path / "o" / "run.json").read_text()
    if case in ACCEPTED_WARNING:  # one "dendrosam: warning:" line naming the problem
        lines = [ln for ln in err.splitlines() if ln.startswith("dendrosam: warning:")]
        assert any(ACCEPTED_WARNING[case] in ln for ln in lines), err


def test_zz_print_table():
    """Print the docs table (``pytest -s``); runs last in file order."""
    for case, message in TABLE:
        print(f"| {case} | `{message}` |")
