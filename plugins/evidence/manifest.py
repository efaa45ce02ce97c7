"""The package's ``manifest.json`` (every file with its sha256, the source scenes, the software
and the parameters) and :func:`verify_package`, which checks a package against it.

The manifest does not list itself; a reviewer who wants to be sure the manifest is the
original compares its sha256 (printed when the package is made) with the sender's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from satdelta.plugins.evidence.errors import EvidenceError

__all__ = ["MANIFEST", "Verification", "file_sha256", "list_files", "verify_package"]

MANIFEST = "manifest.json"
FORMAT = "satdelta-evidence/1"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def list_files(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"sha256", "bytes"}}`` of every file under ``folder`` except the
    manifest."""
    return {
        p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    }


def write_manifest(folder: Path, content: dict[str, Any]) -> str:
    """Write ``manifest.json`` (``content`` plus the file list) and return its sha256."""
    manifest = {"format": FORMAT, **content, "files": list_files(folder)}
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return file_sha256(path)


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_package` found: files whose bytes changed, that are missing, that
    were added (relative paths, sorted)."""

    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added)


def verify_package(folder: str | Path) -> Verification:
    """Compare the files of a package with its manifest.

    Raises
    ------
    EvidenceError
        No readable manifest in ``folder``.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        listed = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(listed, dict):
            raise ValueError(f"format {manifest.get('format')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(
            f"expected an evidence package with {MANIFEST} ({FORMAT}) in {folder}, could not "
            f"read it ({exc}); give the folder `satdelta evidence` wrote"
        ) from None
    present = list_files(folder) if folder.is_dir() else {}
    differ = [p for p in listed if p in present and present[p]["sha256"] != listed[p]["sha256"]]
    return Verification(
        changed=tuple(sorted(differ)),
        missing=tuple(sorted(p for p in listed if p not in present)),
        added=tuple(sorted(p for p in present if p not in listed)),
    )
