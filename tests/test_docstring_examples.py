"""The runnable examples in the library's docstrings run and print what they say.

Every module of ``kp3d`` and ``data_utils`` is imported and its examples run with :mod:`doctest`;
an example marked ``# doctest: +SKIP`` (one that needs a trained model or a data set) is skipped.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import data_utils
import kp3d


def _modules() -> list[str]:
    names = []
    for pkg in (kp3d, data_utils):
        names.append(pkg.__name__)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return sorted(names)


MODULES = _modules()


def test_every_package_is_walked():
    assert {"kp3d.geometry", "kp3d.mask_figures", "kp3d.viz.training", "data_utils.render"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    torch.manual_seed(0)  # an example that draws random numbers prints the same every time
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for test in finder.find(module, name):
        runner.run(test, out=failures.append)
    assert runner.failures == 0, f"{name}: {runner.failures} docstring example(s) failed:\n" + "".join(failures)
