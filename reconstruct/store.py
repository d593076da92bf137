"""The run folder: layout, atomic writes, per-block completion records and the lock file.

Layout (other stages read it; keep it stable)::

    OUT/volume.ome.zarr/            OME-Zarr group; raw/ only for array inputs (else run.json
                                    holds a reference to the input), labels/labels2d, labels/labels3d
    OUT/skeletons/                  <id>.swc, <id>.graphml, graphs.json (node-link, all objects)
    OUT/tables/                     morphometrics.csv, contacts.csv, segments.csv
    OUT/metrics.json                when ground truth was given
    OUT/config.toml, OUT/run.json   the config used; provenance + status ("complete" written last)
    OUT/report.html, OUT/report.md, OUT/run.log
    OUT/.dendrosam/                 identity.json, lock, done/<stage>/<block>.json

A block is *complete* when its record exists, the record's key (a hash of the config, the input
identity and the block range) matches, and the checksum of the data now on disk matches the
record. Records are written after the data, by rename, so a killed run never leaves a record for
a half-written block; ``--resume`` redoes every block that is not complete. A writer killed
mid-write leaves a hidden ``.NAME.XXXX.tmp`` (or, inside a zarr array, ``CHUNK.<hex>.partial``)
beside its target; the run removes these once no writer is active, so a finished run folder holds
only its outputs.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import OutputError

log = logging.getLogger(__name__)

# zarr's LocalStore writes a chunk to ``<chunk>.<uuid4 hex>.partial`` and renames it into place.
_ZARR_PARTIAL = re.compile(r".+\.[0-9a-f]{32}\.partial")

__all__ = [
    "RunStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "array_checksum",
    "input_identity",
    "block_key",
]

ZARR_NAME = "volume.ome.zarr"
_META = ".dendrosam"


def _output_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"{path}: disk full while writing ({exc.strerror or exc})")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{path}: not writable ({exc.strerror or exc})")
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename onto ``path``.

    Raises
    ------
    OutputError
        The folder is not writable or the disk is full (the target is left untouched).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise _output_error(path, exc) from None


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def array_checksum(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-order bytes."""
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.data)
    return digest.hexdigest()


def input_identity(source: Any) -> str:
    """A stable fingerprint of an input: a file/folder (names, sizes, mtimes) or an array's bytes."""
    if isinstance(source, np.ndarray):
        return "array:" + array_checksum(source)
    text = str(source)
    path = Path(text)
    if not path.exists() and ":/" in text:  # file.h5:/dataset
        path = Path(text.rsplit(":/", 1)[0])
    digest = hashlib.sha256(f"{path.resolve()}|{text}".encode())
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        files = [path] if path.exists() else []
    for f in files:
        st = f.stat()
        digest.update(f"{f.relative_to(path) if path.is_dir() else f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return "path:" + digest.hexdigest()


def block_key(config_hash: str, identity: str, stage: str, block: tuple[int, ...]) -> str:
    """Hash of everything that decides one block's output."""
    text = json.dumps([config_hash, identity, stage, list(block)])
    return hashlib.sha256(text.encode()).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """One run folder (see the module docstring for its layout).

    Parameters
    ----------
    out : path
        The run folder; created on :meth:`prepare`.
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    # ---------------------------------------------------------------- paths
    @property
    def zarr_path(self) -> Path:
        """The OME-Zarr group of the run."""
        return self.out / ZARR_NAME

    @property
    def meta(self) -> Path:
        """Hidden bookkeeping folder (identity, lock, completion records)."""
        return self.out / _META

    def _record_path(self, stage: str, block: tuple[int, ...]) -> Path:
        return self.meta / "done" / stage / ("_".join(map(str, block)) + ".json")

    # ---------------------------------------------------------------- lifecycle
    def prepare(self, identity: Mapping[str, Any], *, resume: bool, overwrite: bool) -> None:
        """Create the folder, or check that an existing one may be reused.

        ``identity`` (config hash + input identity) is compared with the one saved in the folder:
        a different run refuses unless ``overwrite``; the same run needs ``resume`` (or
        ``overwrite``) so finished work is never silently redone.

        Raises
        ------
        OutputError
            Unwritable path, a file in the way, another run's output, or an existing run
            without ``resume``/``overwrite``.
        """
        ident_path = self.meta / "identity.json"
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(f"{self.out}: exists and is not a folder")
        if self.out.is_dir() and any(self.out.iterdir()):
            if not ident_path.is_file():
                if not overwrite:
                    raise OutputError(
                        f"{self.out}: folder exists and is not a dendrosam run (choose another --out)"
                    )
                raise OutputError(f"{self.out}: refusing to --overwrite a folder that is not a dendrosam run")
            old = json.loads(ident_path.read_text())
            if overwrite:
                self._clear()
            elif dict(old) != dict(identity):
                what = [k for k in identity if old.get(k) != identity[k]]
                raise OutputError(
                    f"{self.out}: holds a run with different {' and '.join(what) or 'settings'} "
                    "(use --overwrite to replace it, or another --out)"
                )
            elif not resume:
                raise OutputError(f"{self.out}: already holds this run (use --resume to continue it or --overwrite)")
        try:
            self.meta.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _output_error(self.out, exc) from None
        atomic_write_json(ident_path, dict(identity))

    def _clear(self) -> None:
        """Remove a previous run's content (only called on a folder marked as a run)."""
        for child in self.out.iterdir():
            if child.name == _META:
                for sub in child.iterdir():
                    if sub.name != "lock":
                        shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
            elif child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``OUT/.dendrosam/lock`` (holder pid inside) for the duration of a run.

        Raises
        ------
        OutputError
            Another live process holds the lock (its pid is named). A stale lock (dead holder)
            is taken over.
        """
        path = self.meta / "lock"
        try:
            self.meta.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _output_error(self.out, exc) from None
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = int(path.read_text().strip() or 0)
                except (ValueError, FileNotFoundError):
                    holder = 0
                if holder and holder != os.getpid() and _pid_alive(holder):
                    raise OutputError(f"{self.out}: in use by another dendrosam run (pid {holder})") from None
                path.unlink(missing_ok=True)  # stale: its holder is dead
                continue
            except OSError as exc:
                raise _output_error(self.out, exc) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            break
        else:  # pragma: no cover - a racing process took it between unlink and open
            raise OutputError(f"{self.out}: in use by another dendrosam run")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- completion records
    def record(self, stage: str, block: tuple[int, ...], key: str, checksum: str, **extra: Any) -> None:
        """Mark a block complete (call only after its data is fully written)."""
        atomic_write_json(self._record_path(stage, block), {"key": key, "checksum": checksum, **extra})

    def completed(self, stage: str, block: tuple[int, ...], key: str) -> dict | None:
        """The block's record if it exists and its key matches, else None (checksum not checked)."""
        path = self._record_path(stage, block)
        try:
            rec = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return rec if rec.get("key") == key else None

    def sweep_orphans(self) -> list[Path]:
        """Delete temporary files left by writers that died mid-write (a killed worker).

        Call only while no writer is active (under the lock, before or after the stages): every
        ``.NAME.XXXX.tmp`` left by :func:`atomic_write_bytes`, and every ``CHUNK.<32 hex>.partial``
        left by zarr's local store (a chunk write cut short), is then an orphan, never a file
        being written. Returns the removed paths.
        """
        removed = []
        candidates = itertools.chain(self.out.rglob(".*.tmp"), self.out.rglob("*.partial"))
        for tmp in candidates:
            if tmp.is_file() and (tmp.suffix == ".tmp" or _ZARR_PARTIAL.fullmatch(tmp.name)):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        if removed:
            log.info("removed %d temporary file(s) left by interrupted writers", len(removed))
        return removed

    def forget(self, stage: str) -> None:
        """Drop every record of a stage (its blocks will be redone)."""
        shutil.rmtree(self.meta / "done" / stage, ignore_errors=True)

    # ---------------------------------------------------------------- label arrays
    def create_array(
        self, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], voxel_size: tuple, dtype: str = "uint32"
    ) -> Any:
        """Create (or re-open, when shape/dtype/chunks match) an OME-Zarr level-0 array of the run.

        ``name`` is ``"raw"`` (the image, at the store root) or ``"labels/<label>"``.
        """
        from .io_writers import create_ome_zarr_array

        label = name.split("/", 1)[1] if name.startswith("labels/") else None
        try:
            old = self.open_array(name, mode="r+")
        except (FileNotFoundError, KeyError, ValueError, OSError):
            old = None
        if old is not None and old.shape == tuple(shape) and old.dtype == np.dtype(dtype) and old.chunks == tuple(chunks):
            return old
        try:
            return create_ome_zarr_array(
                self.zarr_path, shape, dtype, voxel_size, label=label, chunks=chunks, overwrite=True
            )
        except OSError as exc:
            raise _output_error(self.zarr_path, exc) from None

    def open_array(self, name: str, mode: str = "r+") -> Any:
        """Open the level-0 array ``name`` (``"raw"`` or ``"labels/<label>"``) of the run."""
        import zarr

        path = self.zarr_path / ("0" if name == "raw" else f"{name}/0")
        return zarr.open_array(str(path), mode=mode, zarr_format=3)

    def write_region(self, arr: Any, z0: int, data: np.ndarray) -> None:
        """Write sections ``z0 : z0 + len(data)`` of a store array (whole sections).

        Raises
        ------
        OutputError
            Disk full or unwritable (no completion record is written by the caller then).
        """
        try:
            arr[z0 : z0 + data.shape[0]] = data
        except OSError as exc:
            raise _output_error(self.zarr_path, exc) from None

    # ---------------------------------------------------------------- files
    def write_json(self, name: str, obj: Any) -> Path:
        """Atomically write ``OUT/name`` as JSON."""
        atomic_write_json(self.out / name, obj)
        return self.out / name

    def write_text(self, name: str, text: str) -> Path:
        """Atomically write ``OUT/name`` as UTF-8 text."""
        atomic_write_bytes(self.out / name, text.encode("utf-8"))
        return self.out / name

    def status(self) -> str | None:
        """``status`` field of ``run.json`` (None when there is none)."""
        try:
            return json.loads((self.out / "run.json").read_text()).get("status")
        except (FileNotFoundError, json.JSONDecodeError):
            return None
