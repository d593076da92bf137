"""Import ultralytics so that it never touches the network.

ultralytics looks up DNS on import, checks for its font on GitHub and syncs settings to its
hub. :func:`import_ultralytics` sets its environment before the first import: offline mode, a
settings folder the project controls (with matplotlib's DejaVu Sans as the fonts it wants) and
sync/hub/telemetry off. ultralytics also changes numpy's and torch's print options for the whole
process when imported; they are put back as they were.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

__all__ = ["import_ultralytics", "config_dir"]

_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")


def config_dir() -> Path:
    """The folder used as ``YOLO_CONFIG_DIR`` (``$DENDROSAM_CACHE`` or ``~/.cache/dendrosam``)."""
    base = os.environ.get("DENDROSAM_CACHE") or os.path.join(Path.home(), ".cache", "dendrosam")
    return Path(base) / "ultralytics"


def _prepare(folder: Path) -> None:
    fonts = folder / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    missing = [f for f in _FONTS if not (fonts / f).exists()]
    if missing:
        import matplotlib

        ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        for name in missing:
            shutil.copyfile(ttf, fonts / name)


@contextmanager
def _print_options_kept() -> Iterator[None]:
    """Restore numpy's and torch's print options after the block (ultralytics sets both on import)."""
    import numpy as np
    import torch
    from torch._tensor_str import PRINT_OPTS

    numpy_opts = np.get_printoptions()
    torch_opts = {k: getattr(PRINT_OPTS, k) for k in ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")}
    try:
        yield
    finally:
        np.set_printoptions(**numpy_opts)
        torch.set_printoptions(**torch_opts)


def import_ultralytics() -> ModuleType:
    """Return the ``ultralytics`` module, configured to stay offline.

    Safe to call many times; the environment is only set when ultralytics has not been
    imported yet (it reads it at import time), and its settings are re-asserted every call.
    """
    import sys

    # ultralytics otherwise unpickles .pt files with weights_only=False: a crafted file would run
    # code. Its safe mode restricts unpickling to ultralytics/torch classes.
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    if "ultralytics" not in sys.modules:
        folder = Path(os.environ.get("YOLO_CONFIG_DIR") or config_dir())
        try:
            _prepare(folder)
        except OSError:  # read-only home: a private temporary folder
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="dendrosam-ultralytics-"))
            _prepare(folder)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ.setdefault("YOLO_VERBOSE", "False")
        with _print_options_kept():
            import ultralytics
    import ultralytics
    from ultralytics.utils import SETTINGS

    wanted = {"sync": False, "hub": False, "clearml": False, "comet": False, "dvc": False,
              "mlflow": False, "neptune": False, "raytune": False, "tensorboard": False,
              "wandb": False}
    changes = {k: v for k, v in wanted.items() if k in SETTINGS and SETTINGS[k] != v}
    if changes:
        SETTINGS.update(changes)
    return ultralytics
