"""The packaging contract: one namespace, lazy exports that stay functions.

A sub-module with the same name as a lazily exported function replaces that function in the
package namespace once anything imports the sub-module; these tests import every sub-module
first and then check every exported name.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

PACKAGES = ("dendrosam.segment", "dendrosam.reconstruct", "dendrosam.viz")


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_survive_importing_every_submodule(name):
    package = importlib.import_module(name)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("cli"):
            importlib.import_module(f"{name}.{info.name}")
    for export in package.__all__:
        value = getattr(package, export)
        assert not isinstance(value, types.ModuleType), f"{name}.{export} is shadowed by a sub-module"


def test_public_api_of_the_design_contract():
    from dendrosam.reconstruct import evaluate, open_volume, reconstruct_volume, skeletonize, track
    from dendrosam.segment import load_detector, load_sam, segment_slices
    from dendrosam.viz import publish, view

    for f in (open_volume, reconstruct_volume, track, skeletonize, evaluate, load_sam, load_detector,
              segment_slices, publish, view):
        assert callable(f) and not isinstance(f, types.ModuleType)


def test_importing_reconstruct_is_light():
    """`import dendrosam.reconstruct` must not pull torch, ultralytics, dask or neuroglancer."""
    code = ("import sys, dendrosam.reconstruct, dendrosam.segment, dendrosam.viz; "
            "print(','.join(m for m in ('torch', 'ultralytics', 'dask', 'neuroglancer', 'cloudvolume') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_bare_stage_names_are_not_installed():
    """`segment`, `reconstruct`, `viz` are other PyPI projects' names: we never install them."""
    code = "import importlib.util as u; print([n for n in ('segment', 'reconstruct', 'viz') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
