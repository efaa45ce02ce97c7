"""The examples in the core's docstrings run and give what they show (imagery, annotations)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import satdelta.annotations
import satdelta.imagery


def _modules() -> list[str]:
    names = []
    for package in (satdelta.imagery, satdelta.annotations):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_examples_are_found() -> None:
    attempted = sum(
        doctest.testmod(importlib.import_module(m), optionflags=doctest.ELLIPSIS).attempted
        for m in _modules()
    )
    assert attempted >= 50, attempted
