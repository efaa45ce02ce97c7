"""satdelta.annotations stands alone: it imports neither satdelta.imagery nor satdelta.plugins."""

from __future__ import annotations

import subprocess
import sys


def test_annotations_import_neither_imagery_nor_plugins() -> None:
    code = (
        "import sys, satdelta.annotations\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('satdelta.imagery', "
        "'satdelta.plugins')))\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
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
