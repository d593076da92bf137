"""Typed exceptions for every mistake a user can make.

The CLI catches :class:`DendrosamError` and prints ``dendrosam: error: <message>`` on one line
with a non-zero exit code; anything else is a bug and keeps its traceback. Messages name the
file (or option) and the problem, and say what was expected where that helps.
"""

from __future__ import annotations

__all__ = [
    "DendrosamError",
    "InputError",
    "FormatError",
    "VoxelSizeError",
    "LabelError",
    "CheckpointError",
    "ConfigError",
    "OutputError",
    "SchedulerError",
]


class DendrosamError(Exception):
    """Base class: a problem with the user's input, files or settings (not a bug)."""

    exit_code = 2


class InputError(DendrosamError):
    """An input path is missing, empty, or has the wrong shape or content."""


class FormatError(InputError):
    """A file exists but cannot be read: unsupported, truncated or corrupt."""


class VoxelSizeError(DendrosamError):
    """A voxel size is missing, non-positive, non-finite or physically absurd."""


class LabelError(InputError):
    """A label volume has an invalid dtype/values or a shape that does not match its image."""


class CheckpointError(DendrosamError):
    """A model file is not a checkpoint, is of another architecture, or is unsafe to load."""


class ConfigError(DendrosamError):
    """A configuration file or option has an unknown key or a value of the wrong type."""


class OutputError(DendrosamError):
    """An output location is unwritable, full, locked, or holds a different run."""


class SchedulerError(DendrosamError):
    """A Dask scheduler cannot be reached or a cluster cannot be started."""
