"""The :class:`Volume` every stage reads: a lazy (Z, Y, X) array plus its voxel size in nm.

A volume never loads its whole array on its own: :meth:`Volume.section` and :meth:`Volume.read`
fetch only the sections asked for, so a 100 GB stack can be walked section by section. The voxel
size is always ``(z, y, x)`` in nanometres; ``provenance["voxel_size_origin"]`` says whether it
came from the file's metadata, from the user, or is the documented default.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dendrosam.errors import VoxelSizeError

__all__ = [
    "DEFAULT_VOXEL_SIZE",
    "VOXEL_SIZE_RANGE_NM",
    "ArrayLike",
    "SectionReport",
    "Volume",
    "check_section",
    "validate_voxel_size",
]

#: Voxel size assumed when neither the file nor the user gives one: the poster's SBF-SEM geometry
#: (40 nm sections, 15 nm pixels), ``(z, y, x)`` in nm.
DEFAULT_VOXEL_SIZE: tuple[float, float, float] = (40.0, 15.0, 15.0)

#: Smallest and largest voxel edge (nm) accepted as physically plausible for EM.
VOXEL_SIZE_RANGE_NM: tuple[float, float] = (0.1, 10000.0)


@runtime_checkable
class ArrayLike(Protocol):
    """What :attr:`Volume.data` provides: numpy-style shape, dtype and indexing."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __getitem__(self, key: Any) -> Any: ...


def validate_voxel_size(voxel_size: Any, name: str = "voxel_size") -> tuple[float, float, float]:
    """Return ``voxel_size`` as three floats ``(z, y, x)`` in nm, or raise :class:`VoxelSizeError`.

    Parameters
    ----------
    voxel_size : sequence of 3 numbers
        Voxel edge lengths in nm, axis order z, y, x.
    name : str
        How the value is called in the error message (an option or a file).

    Raises
    ------
    VoxelSizeError
        When it is not three numbers, or one of them is non-finite, non-positive or outside
        :data:`VOXEL_SIZE_RANGE_NM`.
    """
    try:
        values = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise VoxelSizeError(
            f"{name}: expected three numbers (z, y, x) in nm, got {voxel_size!r}"
        ) from None
    if len(values) != 3:
        raise VoxelSizeError(
            f"{name}: expected three numbers (z, y, x) in nm, got {len(values)}: {values!r}"
        )
    lo, hi = VOXEL_SIZE_RANGE_NM
    for axis, v in zip("zyx", values):
        if not math.isfinite(v) or v <= 0:
            raise VoxelSizeError(f"{name}: {axis} size must be a positive finite number, got {v!r}")
        if not lo <= v <= hi:
            raise VoxelSizeError(
                f"{name}: {axis} size {v:g} nm is outside the plausible range {lo:g}..{hi:g} nm "
                "(voxel sizes are in nanometres)"
            )
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class SectionReport:
    """What :func:`check_section` found in one 2D section."""

    z: int | None
    n_nan: int
    n_inf: int
    constant: bool
    empty: bool

    @property
    def ok(self) -> bool:
        """True when the section has only finite values and some contrast."""
        return not (self.n_nan or self.n_inf or self.constant or self.empty)


def check_section(img: np.ndarray, z: int | None = None) -> SectionReport:
    """Report NaN/inf pixels and constant (e.g. missing, all-black) sections, warning for each.

    These are data-quality problems, not user mistakes: the pipeline calls this on every section,
    keeps going, and records the report.

    Parameters
    ----------
    img : numpy.ndarray
        One (Y, X) section, any numeric dtype.
    z : int, optional
        Section index, used in the warning text.

    Returns
    -------
    SectionReport
    """
    img = np.asarray(img)
    where = f"section {z}" if z is not None else "section"
    empty = img.size == 0
    n_nan = n_inf = 0
    if np.issubdtype(img.dtype, np.floating) and not empty:
        n_nan = int(np.count_nonzero(np.isnan(img)))
        n_inf = int(np.count_nonzero(np.isinf(img)))
    finite = img[np.isfinite(img)] if (n_nan or n_inf) else img
    constant = not empty and (finite.size == 0 or finite.min() == finite.max())
    if empty:
        warnings.warn(f"{where} is empty (shape {img.shape})", UserWarning, stacklevel=2)
    if n_nan or n_inf:
        warnings.warn(
            f"{where} has {n_nan} NaN and {n_inf} infinite pixels", UserWarning, stacklevel=2
        )
    if constant:
        value = finite.flat[0] if finite.size else float("nan")
        warnings.warn(
            f"{where} is constant (all {value}): a missing or blank section?",
            UserWarning,
            stacklevel=2,
        )
    return SectionReport(z=z, n_nan=n_nan, n_inf=n_inf, constant=bool(constant), empty=empty)


@dataclass(frozen=True)
class Volume:
    """A lazily read (Z, Y, X) image or label stack with its voxel size.

    Parameters
    ----------
    data : ArrayLike
        Lazy array-like of shape (Z, Y, X): ``shape``, ``dtype`` and numpy-style ``__getitem__``
        returning :class:`numpy.ndarray` (a zarr array, an h5py dataset, a numpy array, ...).
    voxel_size : tuple of 3 float
        ``(z, y, x)`` in nm.
    source : str
        Where it came from (a path or URL), for messages and provenance.
    provenance : dict
        ``format``, ``path``, ``dataset``/``level`` where relevant, and ``voxel_size_origin``
        (``"metadata"``, ``"user"`` or ``"default"``).
    voxel_size_known : bool
        False when the voxel size is the default because nothing better was known.
    """

    data: Any
    voxel_size: tuple[float, float, float]
    source: str = "<array>"
    provenance: dict = field(default_factory=dict)
    voxel_size_known: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "voxel_size", validate_voxel_size(self.voxel_size))
        if len(self.data.shape) != 3:
            raise ValueError(f"Volume data must be 3D (Z, Y, X), got shape {self.data.shape}")

    @classmethod
    def from_array(
        cls,
        arr: Any,
        voxel_size: Any = DEFAULT_VOXEL_SIZE,
        source: str = "<array>",
    ) -> Volume:
        """Wrap an in-memory (Z, Y, X) array (or a 2D array as one section)."""
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = arr[None]
        return cls(
            data=arr,
            voxel_size=voxel_size,
            source=source,
            provenance={"format": "array", "path": source, "voxel_size_origin": "user"},
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(Z, Y, X)``."""
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        """The element type of the stored data."""
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        """Always 3."""
        return 3

    def __len__(self) -> int:
        return self.shape[0]

    def section(self, z: int) -> np.ndarray:
        """Read section ``z`` (negative indices count from the end) as a (Y, X) array."""
        n = self.shape[0]
        if not -n <= z < n:
            raise IndexError(f"section {z} out of range for {n} sections of {self.source}")
        return np.asarray(self.data[z % n])

    def read(self, z0: int = 0, z1: int | None = None) -> np.ndarray:
        """Read sections ``z0`` (inclusive) to ``z1`` (exclusive) as a (Z, Y, X) array."""
        return np.asarray(self.data[slice(z0, z1)])

    def iter_sections(
        self, z0: int = 0, z1: int | None = None, step: int = 1
    ) -> Iterator[np.ndarray]:
        """Yield sections ``z0, z0 + step, ...`` below ``z1`` one at a time (each (Y, X))."""
        for z in range(*slice(z0, z1, step).indices(self.shape[0])):
            yield self.section(z)

    def iter_blocks(self, block: int = 16) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(z0, array)`` for consecutive z-blocks of at most ``block`` sections."""
        for z0 in range(0, self.shape[0], block):
            yield z0, self.read(z0, min(z0 + block, self.shape[0]))

    def __repr__(self) -> str:
        origin = self.provenance.get("voxel_size_origin", "?")
        return (
            f"Volume(shape={self.shape}, dtype={self.dtype}, voxel_size={self.voxel_size} nm "
            f"[{origin}], source={self.source!r})"
        )
