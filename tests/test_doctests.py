"""Run every docstring example of the library, and require one in every public class.

Style guide: "each public class with the exact formula it implements and a tested example". Each module
under ``methods`` (and the few ``paper_repro`` modules that document a public formula) is one test.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import methods

EXTRA_MODULES = ["paper_repro.metrics", "paper_repro.hv_refs", "paper_repro.combiners", "paper_repro.registry",
                 "paper_repro.experiments.mt2o", "paper_repro.figures"]


def _module_names() -> list[str]:
    names = ["methods"]
    names += [info.name for info in pkgutil.walk_packages(methods.__path__, prefix="methods.")]
    return sorted(names) + EXTRA_MODULES


@pytest.mark.parametrize("name", _module_names())
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"


def test_every_public_class_has_an_example() -> None:
    missing = [n for n in methods.__all__
               if inspect.isclass(getattr(methods, n)) and ">>>" not in (getattr(methods, n).__doc__ or "")]
    assert not missing, f"public classes without a docstring example: {missing}"
