"""The command line's one place of error translation: every failure is one line and exit 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

SATDELTA = [sys.executable, "-m", "satdelta.plugins.cli.main"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["detect", "only-one.tif"], "Missing argument 'AFTER'"),
        (["detect", "a.tif", "b.tif", "-o", "out", "--method", "nope"], "'--method'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["detect", "missing-before.tif", "missing-after.tif", "-o", "out"], "missing-before.tif"),
        # options that are wrong whatever the scenes fail before any file is opened
        (["detect", "nowhere.tif", "nothere.tif", "-o", "out", "--threshold", "value"], '"value"'),
    ],
)
def test_errors_are_one_line_with_exit_status_1(tmp_path, args, expected):
    proc = subprocess.run(SATDELTA + args, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("satdelta: error: ") and expected in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_help_and_version_exit_0(tmp_path):
    for args in (["--help"], ["--version"], ["detect", "--help"]):
        proc = subprocess.run(SATDELTA + args, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout.strip()


def test_rasterios_no_geotransform_warning_never_reaches_stderr_from_any_thread():
    """rasterio's own "no geotransform" warning for the arrays it warps is hidden by a filter
    the CLI sets first: a thread leaving warnings.catch_warnings (which restores the filters
    it saved) cannot undo it. Other warnings still show."""
    code = (
        "import threading, warnings\n"
        "from satdelta.plugins.cli.main import main\n"
        "main(['--version'])\n"
        "from rasterio.errors import NotGeoreferencedWarning\n"
        "def other():\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.simplefilter('ignore', UserWarning)\n"
        "t = threading.Thread(target=other); t.start(); t.join()\n"
        "warnings.warn(NotGeoreferencedWarning('Dataset has no geotransform, gcps, or rpcs. "
        "The identity matrix will be returned.'))\n"
        "warnings.warn(UserWarning('still shown'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "geotransform" not in out.stderr and "still shown" in out.stderr
