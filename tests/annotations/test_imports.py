"""The core packages stand alone: satdelta.annotations and satdelta.imagery import neither
each other nor satdelta.plugins (the root error class lives in satdelta.errors)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import importlib, pkgutil, sys
package = importlib.import_module({package!r})
for info in pkgutil.iter_modules(package.__path__, {package!r} + "."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:  # an optional extra (dask) that is not installed
        if exc.name.startswith("satdelta"):
            raise
bad = sorted(m for m in sys.modules if m.startswith({forbidden!r}))
assert not bad, bad
"""


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("satdelta.annotations", ("satdelta.imagery", "satdelta.plugins")),
        ("satdelta.imagery", ("satdelta.annotations", "satdelta.plugins")),
    ],
)
def test_core_package_imports_neither_the_other_nor_plugins(
    package: str, forbidden: tuple[str, ...]
) -> None:
    code = CHECK.format(package=package, forbidden=forbidden)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_one_root_error_class() -> None:
    import satdelta.annotations.errors as annotation_errors
    import satdelta.imagery
    import satdelta.imagery.errors as imagery_errors
    from satdelta.errors import SatdeltaError

    assert imagery_errors.SatdeltaError is SatdeltaError
    assert satdelta.imagery.SatdeltaError is SatdeltaError
    assert annotation_errors.SatdeltaError is SatdeltaError
    assert issubclass(annotation_errors.StoreError, SatdeltaError)
