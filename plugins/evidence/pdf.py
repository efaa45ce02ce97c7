"""Print the package's page to PDF with headless Chromium (Debian's ``chromium`` package).

No browser is downloaded: the one on PATH is used (``$SATDELTA_CHROMIUM`` names another).
Chromium runs with a fresh profile in a temporary folder and without its background network
traffic, so printing a local page needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from satdelta.plugins.evidence.errors import EvidenceError

__all__ = ["CHROMIUM_FLAGS", "chromium_version", "find_chromium", "print_pdf"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str:
    """Path of the Chromium executable.

    Raises
    ------
    EvidenceError
        None found.
    """
    given = os.environ.get("SATDELTA_CHROMIUM")
    for name in ([given] if given else []) + list(_NAMES):
        found = shutil.which(name)
        if found:
            return found
    raise EvidenceError(
        "no Chromium found to print the PDF (looked for $SATDELTA_CHROMIUM, "
        f"{', '.join(_NAMES)}); install Debian's chromium (`bash scripts/setup.sh install` "
        "does) or pass --no-pdf"
    )


def chromium_version(executable: str) -> str | None:
    """What ``chromium --version`` prints (None if it fails)."""
    try:
        proc = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


def run_chromium(args: list[str], *, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with ``args`` and a throw-away profile; return the finished process.

    Raises
    ------
    EvidenceError
        Chromium is missing, times out or fails.
    """
    executable = find_chromium()
    with tempfile.TemporaryDirectory(prefix="satdelta-chromium-") as profile:
        cmd = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EvidenceError(
                f"Chromium did not finish within {timeout:g} s ({' '.join(cmd)}); retry, or "
                "pass --no-pdf"
            ) from None
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])
        raise EvidenceError(f"Chromium failed (exit {proc.returncode}): {tail}")
    return proc


def print_pdf(page: Path, pdf: Path, *, timeout: float = 180.0) -> None:
    """Print the local HTML ``page`` to ``pdf`` (A4, no header or footer)."""
    run_chromium(
        [f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.resolve().as_uri()],
        timeout=timeout,
    )
    if not pdf.is_file() or pdf.stat().st_size == 0:
        raise EvidenceError(f"Chromium wrote no PDF at {pdf}; rerun with -v, or pass --no-pdf")
