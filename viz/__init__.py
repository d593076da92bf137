"""dendrosam.viz: Neuroglancer publishing, local viewer, QC figures and reports.

Names are imported lazily on first use, so ``import dendrosam.viz`` is instant.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "publish": "publishing", "PublishResult": "publishing",
    "view": "viewer", "ViewerHandle": "viewer",
    "RunData": "rundata", "load_run_data": "rundata",
    "build_state": "state", "state_url": "state",
    "write_figures": "figures", "write_report": "report", "ReportPaths": "report",
    "write_viewer_ome_zarr": "ome_zarr",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
