"""Run store: atomic writes, identity checks, lock file, completion records, disk-full errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dendrosam.errors import OutputError
from dendrosam.reconstruct import store as store_mod
from dendrosam.reconstruct.store import RunStore, array_checksum, atomic_write_json, block_key, input_identity

IDENT = {"config": "c1", "input": "i1"}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"a": [1, 2], "b": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_sweep_orphans_removes_only_dead_writers_temporaries(tmp_path):
    store = RunStore(tmp_path / "run")
    store.prepare(IDENT, resume=False, overwrite=False)
    atomic_write_json(store.out / "tables" / "a.json", {"a": 1})
    orphans = [store.out / "tables" / ".a.json.x1y2.tmp", store.meta / "parts" / "s" / ".0_1.csv.q9.tmp",
               store.out / "volume.ome.zarr" / "labels" / "c" / "6" / "0" / "0.460660d435f94b92b74d96fd0e3f16f5.partial"]
    for p in orphans:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    keep = [store.out / "tables" / "a.json", store.out / "tables" / "notes.tmp", store.meta / "identity.json",
            store.out / "tables" / "draft.partial"]
    keep[1].write_text("a user's file, not ours")
    keep[3].write_text("a user's file, not ours")
    assert sorted(store.sweep_orphans()) == sorted(orphans)
    assert all(p.is_file() for p in keep) and not any(p.exists() for p in orphans)
    assert store.sweep_orphans() == []


def test_atomic_write_disk_full_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"v": 1})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.os, "fsync", full)
    with pytest.raises(OutputError, match="disk full"):
        atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_checksums_and_keys_are_exact():
    a = np.arange(12, dtype=np.uint32).reshape(3, 4)
    assert array_checksum(a) == array_checksum(a.copy())
    assert array_checksum(a) != array_checksum(a.astype(np.uint64))  # dtype is part of it
    assert array_checksum(a) != array_checksum(a.reshape(4, 3))  # and shape
    b = a.copy()
    b[2, 3] += 1
    assert array_checksum(a) != array_checksum(b)
    assert block_key("c", "i", "seg", (0, 8)) != block_key("c", "i", "seg", (8, 16))
    assert input_identity(a) == input_identity(a.copy()) != input_identity(b)


def test_input_identity_of_files_changes_with_content(tmp_path):
    f = tmp_path / "s.tif"
    f.write_bytes(b"abc")
    first = input_identity(f)
    assert input_identity(f) == first
    f.write_bytes(b"abcd")
    assert input_identity(f) != first


def test_prepare_refuses_other_runs_and_foreign_folders(tmp_path):
    s = RunStore(tmp_path / "run")
    s.prepare(IDENT, resume=False, overwrite=False)
    s.write_text("run.json", "{}")
    with pytest.raises(OutputError, match="different config"):
        s.prepare({"config": "c2", "input": "i1"}, resume=True, overwrite=False)
    with pytest.raises(OutputError, match="use --resume"):
        s.prepare(IDENT, resume=False, overwrite=False)
    s.prepare(IDENT, resume=True, overwrite=False)
    assert (s.out / "run.json").exists()
    s.prepare({"config": "c2", "input": "i1"}, resume=False, overwrite=True)
    assert not (s.out / "run.json").exists()  # the old run's files are gone
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="not a dendrosam run"):
            RunStore(foreign).prepare(IDENT, resume=False, overwrite=overwrite)
    assert (foreign / "cat.jpg").exists()


def test_unwritable_output_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write|not writable|not a folder"):
        RunStore(blocker / "sub").prepare(IDENT, resume=False, overwrite=False)


def test_lock_names_live_holder_and_takes_over_stale(tmp_path):
    s = RunStore(tmp_path / "run")
    s.prepare(IDENT, resume=False, overwrite=False)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (s.meta / "lock").write_text(str(holder.pid))
        with pytest.raises(OutputError, match=f"pid {holder.pid}"):
            with s.lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its lock is stale and is taken over, then released
    with s.lock():
        assert (s.meta / "lock").read_text() == str(os.getpid())
    assert not (s.meta / "lock").exists()


def test_records_are_keyed(tmp_path):
    s = RunStore(tmp_path / "run")
    s.prepare(IDENT, resume=False, overwrite=False)
    assert s.completed("seg", (0, 4), "k") is None
    s.record("seg", (0, 4), "k", "sum", n=3)
    assert s.completed("seg", (0, 4), "k") == {"key": "k", "checksum": "sum", "n": 3}
    assert s.completed("seg", (0, 4), "other-key") is None
    s.forget("seg")
    assert s.completed("seg", (0, 4), "k") is None


def test_array_region_write_disk_full(tmp_path, monkeypatch):
    s = RunStore(tmp_path / "run")
    s.prepare(IDENT, resume=False, overwrite=False)
    arr = s.create_array("labels/labels2d", (4, 8, 8), (1, 8, 8), (40.0, 10.0, 10.0))
    s.write_region(arr, 1, np.ones((2, 8, 8), np.uint32))
    assert int(s.open_array("labels/labels2d", "r")[:].sum()) == 128
    assert s.create_array("labels/labels2d", (4, 8, 8), (1, 8, 8), (40.0, 10.0, 10.0))[:].sum() == 128  # reopened

    class Full:
        shape = (4, 8, 8)

        def __setitem__(self, key, value):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="disk full"):
        s.write_region(Full(), 0, np.ones((1, 8, 8), np.uint32))
