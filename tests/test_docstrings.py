"""The Examples sections of the docstrings run and give what they print (they never rot)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

#: numpy's documented defaults: examples print the way a fresh interpreter prints them
NUMPY_DEFAULTS = dict(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False,
                      nanstr="nan", infstr="inf", formatter=None, sign="-", floatmode="maxprec",
                      legacy=False)

PACKAGES = ("dendrosam", "dendrosam.segment", "dendrosam.reconstruct", "dendrosam.viz")


def _modules() -> list[str]:
    names = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        names.append(name)
        names += [f"{name}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                  if not m.name.startswith("_")]
    return sorted(set(names))


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples(module):
    mod = importlib.import_module(module)
    with np.printoptions(**NUMPY_DEFAULTS):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 verbose=False, report=False)
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} doctest examples failed"
