"""Resumability: a run killed with SIGKILL and resumed, a corrupted block, a Dask worker killed
mid-run -- every path ends with output identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dendrosam.reconstruct.pipeline import reconstruct_volume
from dendrosam.reconstruct.store import RunStore

sys.path.insert(0, str(Path(__file__).parent))
from test_pipeline import VOXEL, config, tree, tubes  # noqa: E402

DEPTH = 60


def _stack(tmp_path: Path) -> Path:
    img, _ = tubes(depth=DEPTH, size=48, radius=5)
    path = tmp_path / "stack.npy"
    np.save(path, img)
    return path


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_pipeline import VOXEL, config
    from dendrosam.reconstruct.pipeline import reconstruct_volume
    if __name__ == "__main__":
        img = np.load({stack!r})
        reconstruct_volume(img, {out!r}, config(sections_per_task=1), VOXEL, resume=True, progress=False)
    """
)


def _done(out: Path, stage: str = "segments") -> int:
    folder = out / ".dendrosam" / "done" / stage
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """The stack on disk and the files of its uninterrupted serial run."""
    tmp = tmp_path_factory.mktemp("ref")
    stack = _stack(tmp)
    ref = reconstruct_volume(np.load(stack), tmp / "ref", config(sections_per_task=1), VOXEL, progress=False)
    return stack, tree(ref.out)


def test_sigkill_then_resume_is_identical(tmp_path, reference):
    stack, a = reference
    img = np.load(stack)

    out = tmp_path / "killed"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), stack=str(stack), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    while _done(out) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _done(out)
    assert 5 <= done < DEPTH, f"kill landed after {done} of {DEPTH} blocks"
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # never looks complete

    # damage one finished block behind the records' back: resume must notice (checksum) and redo it
    store = RunStore(out)
    labels2d = store.open_array("labels/labels2d")
    labels2d[0] = np.zeros(labels2d.shape[1:], np.uint32)
    (store.meta / "lock").write_text(str(proc.pid))  # the dead run's stale lock
    # a writer killed between creating its temporary file and renaming it leaves one behind
    orphan = out / ".dendrosam" / "parts" / "segments" / ".0_1.csv.dead1234.tmp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a tab")
    # ... and one killed inside zarr's own chunk write leaves CHUNK.<uuid hex>.partial
    chunk_orphan = out / "volume.ome.zarr" / "labels" / "labels2d" / "0" / "c" / "3" / "0" / "0.460660d435f94b92b74d96fd0e3f16f5.partial"
    chunk_orphan.parent.mkdir(parents=True, exist_ok=True)
    chunk_orphan.write_bytes(b"half a chunk")

    res = reconstruct_volume(img, out, config(sections_per_task=1), VOXEL, resume=True, progress=False)
    b = tree(res.out)
    assert a.keys() == b.keys()  # the orphan is gone
    assert [k for k in a if a[k] != b[k]] == []
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    log = (out / "run.log").read_text()
    redone = int(log.rsplit("segmentation: ", 1)[1].split(" of")[0])
    assert 1 <= redone <= DEPTH - done + 1  # only the unfinished blocks and the damaged one


@pytest.mark.slow
def test_dask_worker_killed_mid_run(tmp_path, reference):
    from distributed import Client, LocalCluster

    stack, a = reference
    img = np.load(stack)
    out = tmp_path / "dask"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def killer() -> None:
            deadline = time.monotonic() + 60
            while _done(out) < 5 and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(_done(out))

        thread = threading.Thread(target=killer)
        thread.start()
        res = reconstruct_volume(img, out, config(sections_per_task=1), VOXEL,
                                 scheduler=cluster.scheduler_address, progress=False)
        thread.join()
    assert killed and killed[0] < DEPTH, "the worker was killed only after segmentation had finished"
    b = tree(res.out)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
