"""Fuzzing the volume readers: damaged files give a typed error or the declared array, nothing else.

For every format :func:`open_volume` / :func:`open_labels` read, a small valid file is written once,
then each example copies it and damages one of its files in one of three ways:

* truncation at a random offset,
* a random byte range overwritten with random bytes,
* the whole file replaced by random bytes (same name, so the same reader is chosen).

Opening and reading every section must then either return arrays of the declared shape and dtype,
or raise a :class:`~dendrosam.errors.DendrosamError` subclass. Any other exception type (a
``JSONDecodeError`` from zarr metadata, a ``RuntimeError`` from HDF5, ...) fails the test, and a
pytest-timeout mark turns a hang into a failure. Hypothesis runs derandomized with a bounded
number of examples, so the file is deterministic and fast.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import imagecodecs
import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dendrosam.errors import DendrosamError, FormatError
from dendrosam.reconstruct import open_labels, open_volume, write_ome_zarr, write_tiff

VS = (40.0, 10.0, 10.0)
SHAPE = (4, 12, 16)
DATA = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 251).astype(np.uint8)
LABELS = (DATA // 40).astype(np.uint32)
#: Sections declared larger than this (a damaged header) are not read: the allocation alone
#: would be the test's problem, not the reader's (see the module docstring of io_arrays).
MAX_SECTION = 1 << 22

FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Format:
    """How to write one valid sample; ``write(folder, array)`` returns the path to open."""

    name: str
    write: Callable[[Path, np.ndarray], Path]


def _ome_tiff(d: Path, a: np.ndarray) -> Path:
    return write_tiff(d / "v.ome.tif", a, VS)


def _plain_tiff(d: Path, a: np.ndarray) -> Path:
    tifffile.imwrite(d / "v.tif", a, compression="zlib", photometric="minisblack")
    return d / "v.tif"


def _png_folder(d: Path, a: np.ndarray) -> Path:
    (d / "s").mkdir()
    for z, img in enumerate(a):  # PNG holds 8/16-bit only; the sample labels fit in uint8
        (d / "s" / f"s{z}.png").write_bytes(imagecodecs.png_encode(img.astype(np.uint8)))
    return d / "s"


def _tiff_folder(d: Path, a: np.ndarray) -> Path:
    (d / "s").mkdir()
    for z, img in enumerate(a):
        tifffile.imwrite(d / "s" / f"s{z}.tif", img, compression="zlib", photometric="minisblack")
    return d / "s"


def _zarr(fmt: int) -> Callable[[Path, np.ndarray], Path]:
    def write(d: Path, a: np.ndarray) -> Path:
        arr = zarr.create_array(str(d / "v.zarr"), shape=a.shape, chunks=(1,) + a.shape[1:],
                                dtype=a.dtype, zarr_format=fmt)  # fmt: skip
        arr[:] = a
        return d / "v.zarr"

    return write


def _ome_zarr(fmt: int) -> Callable[[Path, np.ndarray], Path]:
    def write(d: Path, a: np.ndarray) -> Path:
        return write_ome_zarr(d / "v.zarr", a, VS, chunks=(1,) + a.shape[1:], zarr_format=fmt)

    return write


def _hdf5(compressed: bool) -> Callable[[Path, np.ndarray], Path]:
    def write(d: Path, a: np.ndarray) -> Path:
        with h5py.File(d / "v.h5", "w") as fh:
            if compressed:
                fh.create_dataset("raw", data=a, chunks=(1,) + a.shape[1:], compression="gzip")
            else:
                fh.create_dataset("raw", data=a)
        return d / "v.h5"

    return write


def _npy(d: Path, a: np.ndarray) -> Path:
    np.save(d / "v.npy", a)
    return d / "v.npy"


FORMATS = [
    Format("ome-tiff", _ome_tiff),
    Format("tiff", _plain_tiff),
    Format("png-folder", _png_folder),
    Format("tiff-folder", _tiff_folder),
    Format("zarr-v2", _zarr(2)),
    Format("zarr-v3", _zarr(3)),
    Format("ome-zarr-0.4", _ome_zarr(2)),
    Format("ome-zarr-0.5", _ome_zarr(3)),
    Format("hdf5-gzip", _hdf5(True)),
    Format("hdf5-contiguous", _hdf5(False)),
    Format("npy", _npy),
]
IDS = [f.name for f in FORMATS]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """One valid sample per (format, image|labels), written once for the module."""
    root = tmp_path_factory.mktemp("pristine")
    out = {}
    for fmt in FORMATS:
        for kind, arr in (("image", DATA), ("labels", LABELS)):
            d = root / fmt.name / kind
            d.mkdir(parents=True)
            out[fmt.name, kind] = fmt.write(d, arr)
    return out


def _files(path: Path) -> list[Path]:
    """The files a sample consists of, in a stable order (a folder's files are all candidates)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _open_and_read_all(path: Path, labels: bool) -> None:
    """Open ``path`` and read every section; check shape and dtype of what comes back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RGB, float-label and voxel-size warnings are not failures
        opener = open_labels if labels else open_volume
        vol = opener(path, voxel_size=VS, allow_2d=True)
        assert len(vol.shape) == 3
        if int(np.prod(vol.shape[1:], dtype=np.int64)) > MAX_SECTION:
            return
        for z in range(vol.shape[0]):
            section = vol.section(z)
            assert section.shape == vol.shape[1:]
            assert section.dtype == vol.dtype
        assert vol.read().shape == vol.shape


def _damage(data: st.DataObject, raw: bytes, mode: str) -> bytes:
    n = len(raw)
    if mode == "truncate":
        return raw[: data.draw(st.integers(0, max(n - 1, 0)), label="cut")]
    if mode == "overwrite":
        start = data.draw(st.integers(0, max(n - 1, 0)), label="start")
        junk = data.draw(st.binary(min_size=1, max_size=32), label="junk")
        return raw[:start] + junk + raw[start + len(junk) :]
    return data.draw(st.binary(min_size=0, max_size=512), label="random file")


def _fuzz_one(pristine: dict, fmt: str, kind: str, mode: str, data: st.DataObject) -> None:
    source = pristine[fmt, kind]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / source.name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy)
        files = _files(copy)
        target = files[data.draw(st.integers(0, len(files) - 1), label="file")]
        target.write_bytes(_damage(data, target.read_bytes(), mode))
        try:
            _open_and_read_all(copy, labels=kind == "labels")
        except DendrosamError as exc:
            assert str(exc), "typed errors must carry a message"
        # Anything else propagates and fails the test with the reader's traceback.


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["truncate", "overwrite", "random"])
@pytest.mark.parametrize("fmt", IDS)
@FUZZ
@given(data=st.data())
def test_damaged_image_file_gives_typed_error_or_declared_array(pristine, fmt, mode, data):
    _fuzz_one(pristine, fmt, "image", mode, data)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", IDS)
@settings(FUZZ, max_examples=8)
@given(data=st.data(), mode=st.sampled_from(["truncate", "overwrite", "random"]))
def test_damaged_label_file_gives_typed_error_or_declared_array(pristine, fmt, mode, data):
    _fuzz_one(pristine, fmt, "labels", mode, data)


# -- the harness itself: valid files read back exactly, damage is really detected ---------------


@pytest.mark.parametrize("fmt", IDS)
def test_pristine_samples_read_back_exactly(pristine, fmt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = open_volume(pristine[fmt, "image"], voxel_size=VS)
        labels = open_labels(pristine[fmt, "labels"], voxel_size=VS)
    np.testing.assert_array_equal(image.read(), DATA)
    np.testing.assert_array_equal(labels.read(), LABELS)
    assert labels.dtype.kind == "u"


@pytest.mark.parametrize("fmt", IDS)
def test_random_bytes_with_the_right_name_are_a_format_error(tmp_path, pristine, fmt):
    """Every file of the sample replaced by noise: always a FormatError that names a path."""
    source = pristine[fmt, "image"]
    copy = tmp_path / source.name
    (shutil.copytree if source.is_dir() else shutil.copy)(source, copy)
    noise = np.random.default_rng(7)
    for f in _files(copy):
        f.write_bytes(noise.integers(0, 256, 200, dtype=np.uint8).tobytes())
    with pytest.raises(FormatError, match=re.escape(str(copy))):
        _open_and_read_all(copy, labels=False)
