"""What to try next: the lines ``detect`` and ``demo`` end with, written with the
``satdelta`` the user can actually type (a bare ``satdelta`` on the PATH, else its path)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["command_name", "shown_path", "next_steps"]


def command_name() -> str:
    """``satdelta`` when that name runs this install, else the script's path (``.venv/bin/...``)."""
    here = Path(sys.executable).parent / "satdelta"
    found = shutil.which("satdelta")
    if found is not None and (not here.exists() or Path(found).resolve() == here.resolve()):
        return "satdelta"
    return shown_path(here) if here.exists() else "satdelta"


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working folder when it lies inside it, quoted for a shell.

    A PostgreSQL store's address is shown without its password.
    """
    from satdelta.annotations.postgres import is_postgres_url, normalise_url, redact_url

    if is_postgres_url(path):
        return shlex.quote(redact_url(normalise_url(path)))
    p = Path(path).absolute()
    try:
        text = str(p.relative_to(Path.cwd()))
    except ValueError:
        text = str(p)
    return shlex.quote(text)


def next_steps(commands: list[str]) -> list[str]:
    """``next:`` lines: the first one labelled, the others aligned under it."""
    name = command_name()
    return [
        f"{'next:' if i == 0 else '':<10} {name} {command}" for i, command in enumerate(commands)
    ]
