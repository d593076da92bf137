"""Lazy array adapters that make every readable format look like a (Z, Y, X) numpy array.

Each adapter has ``shape``, ``dtype``, ``ndim`` and a numpy-style ``__getitem__`` (integers,
slices with steps, ``Ellipsis``) that reads only the sections the key touches. Read failures of the
underlying storage (a truncated TIFF page, a corrupt zarr chunk) become
:class:`~dendrosam.errors.FormatError` naming the file and the section.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import DendrosamError, FormatError

__all__ = [
    "AxisView",
    "CastArray",
    "ExpandedArray",
    "GreyArray",
    "PrecomputedArray",
    "SliceFolderArray",
    "CheckedArray",
    "normalise_key",
    "rgb_to_grey",
]


def normalise_key(key: Any, ndim: int) -> tuple[slice | int, ...]:
    """Expand a numpy-style key (ints, slices, one ``Ellipsis``) to exactly ``ndim`` entries."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = key[:i] + fill + key[i + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices: {len(key)} for {ndim} dimensions")
    for k in key:
        if not isinstance(k, (slice, int, np.integer)):
            raise TypeError(f"only integers, slices and ... are supported, got {type(k).__name__}")
    return tuple(key) + (slice(None),) * (ndim - len(key))


def _z_indices(k: slice | int, n: int) -> tuple[list[int], bool]:
    """Section indices addressed by the z part of a key, and whether z is dropped (int)."""
    if isinstance(k, slice):
        return list(range(*k.indices(n))), False
    k = int(k)
    if not -n <= k < n:
        raise IndexError(f"index {k} out of range for axis 0 with size {n}")
    return [k % n], True


class _SectionReader:
    """Base: subclasses implement ``_read_section(z) -> (Y, X[, ...]) ndarray``."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _read_section(self, z: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        key = normalise_key(key, self.ndim)
        zs, drop = _z_indices(key[0], self.shape[0])
        rest = key[1:]
        # Shape of one indexed section from a zero-copy view (no Y*X allocation).
        sub = np.broadcast_to(np.empty((), dtype=bool), self.shape[1:])[rest].shape
        out = np.empty((len(zs),) + sub, self.dtype)
        for i, z in enumerate(zs):
            out[i] = self._read_section(z)[rest]
        return out[0] if drop else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[...]
        return arr if dtype is None else arr.astype(dtype)


def _png_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a PNG from its IHDR chunk (first 26 bytes), without decoding it."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise FormatError(f"{path}: not a valid PNG file (bad header)")
    width = int.from_bytes(head[16:20], "big")
    height = int.from_bytes(head[20:24], "big")
    depth, colour = head[24], head[25]
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour, 1)
    dtype = np.dtype(">u2" if depth == 16 else "u1").newbyteorder("=")
    shape = (height, width) if channels == 1 else (height, width, channels)
    return shape, dtype


def _tiff_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a single-image TIFF from its first IFD, without decoding pixels."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            return tuple(series.shape), np.dtype(series.dtype)
    except Exception as exc:  # tifffile raises many types (RuntimeError, ZeroDivisionError, ...)
        raise FormatError(f"{path}: not a readable TIFF ({exc})") from None


def rgb_to_grey(img: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.601) of an (..., 3|4) RGB(A) image, in the input's dtype."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float64)
    grey = img[..., :3].astype(np.float64) @ weights
    if np.issubdtype(img.dtype, np.integer):
        grey = np.rint(grey)
    return grey.astype(img.dtype)


class SliceFolderArray(_SectionReader):
    """A folder of 2D TIFF/PNG files read one file per section, on demand.

    All headers are read at construction (cheap: no pixel decoding) so mixed sizes are reported
    before any work starts; RGB(A) slices are converted to grey when read.
    """

    def __init__(self, files: Sequence[Path]) -> None:
        if not files:
            raise FormatError("no slice files given")
        self.files = [Path(f) for f in files]
        headers = [self._header(f) for f in self.files]
        shape0, dtype0 = headers[0]
        for f, (shape, _) in zip(self.files, headers):
            if shape != shape0:
                raise FormatError(
                    f"{f}: slice shape {shape} differs from {self.files[0].name} {shape0}; "
                    "every slice of a folder must have the same size"
                )
        self.rgb = len(shape0) == 3
        if self.rgb:
            warnings.warn(
                f"{self.files[0].parent}: RGB slices converted to grey", UserWarning, stacklevel=3
            )
        self.shape = (len(self.files),) + tuple(shape0[:2])
        self.dtype = dtype0

    @staticmethod
    def _header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
        if path.suffix.lower() == ".png":
            return _png_header(path)
        return _tiff_header(path)

    def _read_section(self, z: int) -> np.ndarray:
        path = self.files[z]
        try:
            if path.suffix.lower() == ".png":
                import imagecodecs

                img = imagecodecs.png_decode(path.read_bytes())
            else:
                import tifffile

                img = tifffile.imread(path)
        except Exception as exc:  # codec errors have library-specific types
            raise FormatError(f"{path}: cannot decode slice {z} ({exc})") from None
        if img.ndim == 3 and img.shape[-1] in (3, 4) and self.rgb:
            img = rgb_to_grey(img)
        elif img.ndim == 3 and img.shape[-1] == 2:  # grey + alpha
            img = img[..., 0]
        if img.shape != self.shape[1:]:
            raise FormatError(f"{path}: decoded shape {img.shape} != header shape {self.shape[1:]}")
        return img


class CheckedArray:
    """Pass-through to a lazy array that turns storage read errors into :class:`FormatError`."""

    def __init__(self, base: Any, source: str, keepalive: Any = None) -> None:
        self.base = base
        self.source = source
        self.keepalive = keepalive  # e.g. an open TiffFile / h5py.File the base depends on
        if keepalive is not None and hasattr(keepalive, "close"):
            weakref.finalize(self, keepalive.close)
        self.shape = tuple(int(s) for s in base.shape)
        self.dtype = np.dtype(base.dtype)
        self.chunks = getattr(base, "chunks", None)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.base[key])
        except (IndexError, TypeError, DendrosamError):
            raise
        except Exception as exc:
            raise FormatError(
                f"{self.source}: cannot read {key!r} ({type(exc).__name__}: {exc}); "
                "the file or a chunk of it is truncated or corrupt"
            ) from None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[...]
        return arr if dtype is None else arr.astype(dtype)


class GreyArray(_SectionReader):
    """(Z, Y, X) grey view of a (Z, Y, X, 3|4) RGB(A) array, converted per section."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.shape = tuple(int(s) for s in base.shape[:3])
        self.dtype = np.dtype(base.dtype)
        self.chunks = None

    def _read_section(self, z: int) -> np.ndarray:
        return rgb_to_grey(np.asarray(self.base[z]))


class ExpandedArray(_SectionReader):
    """A 2D (Y, X) image seen as a one-section stack (1, Y, X)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.shape = (1,) + tuple(int(s) for s in base.shape)
        self.dtype = np.dtype(base.dtype)
        self.chunks = None

    def _read_section(self, z: int) -> np.ndarray:
        return np.asarray(self.base[...])


class PrecomputedArray:
    """(Z, Y, X) view of a cloud-volume ``CloudVolume`` (stored x, y, z, channel)."""

    def __init__(self, cv: Any, source: str) -> None:
        self.cv = cv
        self.source = source
        x, y, z = (int(s) for s in cv.shape[:3])
        self.shape = (z, y, x)
        self.dtype = np.dtype(cv.dtype)
        cx, cy, cz = (int(c) for c in cv.underlying)
        self.chunks = (cz, cy, cx)
        self._offset = tuple(int(o) for o in cv.voxel_offset)  # x, y, z

    @property
    def ndim(self) -> int:
        return 3

    def __getitem__(self, key: Any) -> np.ndarray:
        key = normalise_key(key, 3)
        bounds, post, drop = [], [], []
        for axis, k in enumerate(key):
            n = self.shape[axis]
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step < 0:
                    raise IndexError("negative steps are not supported on precomputed volumes")
                stop = max(stop, start)
                bounds.append((start, stop))
                post.append(slice(None, None, step))
            else:
                i = int(k)
                if not -n <= i < n:
                    raise IndexError(f"index {i} out of range for axis {axis} with size {n}")
                bounds.append((i % n, i % n + 1))
                post.append(0)
                drop.append(axis)
        (z0, z1), (y0, y1), (x0, x1) = bounds
        if min(z1 - z0, y1 - y0, x1 - x0) == 0:
            return np.empty((z1 - z0, y1 - y0, x1 - x0), self.dtype)[tuple(post)]
        ox, oy, oz = self._offset
        try:
            cut = self.cv[ox + x0 : ox + x1, oy + y0 : oy + y1, oz + z0 : oz + z1]
        except Exception as exc:
            raise FormatError(f"{self.source}: cannot read precomputed data ({exc})") from None
        zyx = np.transpose(np.asarray(cut)[..., 0], (2, 1, 0))
        return np.ascontiguousarray(zyx[tuple(post)])



class AxisView:
    """Lazy view of ``base`` with some axes fixed to one index (drops size-1 axes lazily)."""

    def __init__(self, base: Any, fixed: dict[int, int]) -> None:
        self.base = base
        self.fixed = dict(fixed)
        self.shape = tuple(int(s) for a, s in enumerate(base.shape) if a not in self.fixed)
        self.dtype = np.dtype(base.dtype)
        chunks = getattr(base, "chunks", None)
        self.chunks = (
            tuple(c for a, c in enumerate(chunks) if a not in self.fixed) if chunks else None
        )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        rest = iter(normalise_key(key, self.ndim))
        full = tuple(
            self.fixed[a] if a in self.fixed else next(rest) for a in range(len(self.base.shape))
        )
        return np.asarray(self.base[full])


class CastArray:
    """Lazy dtype conversion of ``base`` (values already checked to fit ``dtype``)."""

    def __init__(self, base: Any, dtype: Any) -> None:
        self.base = base
        self.shape = tuple(int(s) for s in base.shape)
        self.dtype = np.dtype(dtype)
        self.chunks = getattr(base, "chunks", None)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.base[key]).astype(self.dtype)
