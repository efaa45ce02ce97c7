"""Make an evidence package: from a report's accepted annotations to a folder an editor reads
and a reviewer verifies.

:func:`make_package` writes ``index.html`` (the verdict table, and per accepted annotation
its before/after/score chips), ``evidence.pdf`` (the page printed by headless Chromium),
``evidence.geojson`` (RFC 7946, the accepted annotations with every property), the chips in
``chips/`` and ``manifest.json``.  The folder is built beside the target and moved into place
at the end, so a failure leaves no half package.  How to make and check one:
``docs/evidence.md``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from satdelta.annotations import Annotation, Store, to_feature_collection
from satdelta.annotations.export import write_geojson
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.evidence.chips import (
    ROLES,
    Chip,
    SceneBook,
    read_chip,
    scene_attribution,
)
from satdelta.plugins.evidence.drawing import draw_panel
from satdelta.plugins.evidence.errors import EvidenceError
from satdelta.plugins.evidence.gather import ReportEvidence, gather_report
from satdelta.plugins.evidence.html import AnnotationEntry, render_page
from satdelta.plugins.evidence.manifest import write_manifest
from satdelta.plugins.evidence.pdf import chromium_version, find_chromium, print_pdf

__all__ = ["Package", "make_package"]

log = logging.getLogger(__name__)

PAGE = "index.html"
PDF = "evidence.pdf"
GEOJSON = "evidence.geojson"
CHIPS = "chips"


@dataclass(frozen=True)
class Package:
    """A written evidence package.

    Attributes
    ----------
    folder : Path
    manifest_sha256 : str
        The sha256 of ``manifest.json``: give it to the reviewer by another channel.
    annotations : int
        Accepted annotations in the package.
    problems : tuple of str
        Annotations without chips and scenes that could not be opened, as the page names them.
    """

    folder: Path
    manifest_sha256: str
    annotations: int
    problems: tuple[str, ...] = ()


def _software(chromium: str | None) -> dict[str, Any]:
    names = ("satdelta", "numpy", "rasterio", "shapely", "matplotlib", "scikit-image")
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["chromium"] = chromium
    return out


def _draw_chip(
    chip: Chip, ann: Annotation, folder: Path, attribution: str | None
) -> dict[str, str]:
    """Draw the before, after and score panels; return their paths relative to ``folder``."""
    credit = {role: scene_attribution(s, attribution) for role, s in chip.scenes.items()}
    dates = {
        role: s.acquired.isoformat() if s.acquired else "date unknown"
        for role, s in chip.scenes.items()
    }
    both = credit["before"] + (
        "" if credit["after"] == credit["before"] else f"; {credit['after']}"
    )
    panels = {
        "before": (chip.before, f"BEFORE  {dates['before']}", credit["before"]),
        "after": (chip.after, f"AFTER  {dates['after']}", credit["after"]),
        "score": (
            chip.score,
            f"CHANGE  {dates['before']} → {dates['after']}",
            f"score: {chip.score_method}. {both}",
        ),
    }
    paths = {}
    for kind, (image, title, caption) in panels.items():
        rel = f"{CHIPS}/{ann.id}-{kind}.png"
        draw_panel(folder / rel, image, chip.grid, chip.outline, title=title, caption=caption)
        paths[kind] = rel
    return paths


def _chips_of(
    ann: Annotation,
    book: SceneBook,
    folder: Path,
    *,
    attribution: str | None,
    margin: float,
    chip_px: int,
) -> AnnotationEntry:
    """Cut and draw the three chips of one annotation (or say why there are none)."""
    refs = {role: ann.provenance.get(role) for role in ROLES}
    refs = {role: r for role, r in refs.items() if isinstance(r, Mapping) and r.get("source")}
    if len(refs) < len(ROLES):
        return AnnotationEntry(
            ann, {}, problem="its provenance names no before/after scenes (drawn or imported)"
        )
    scenes = {role: book.open(ref) for role, ref in refs.items()}
    gone = [f"{role} scene {refs[role]['source']}" for role, s in scenes.items() if s is None]
    if gone:
        return AnnotationEntry(ann, {}, problem=f"{' and '.join(gone)} cannot be opened")
    try:
        chip = read_chip(ann, scenes["before"], scenes["after"], margin=margin, max_px=chip_px)
    except SatdeltaError as exc:
        return AnnotationEntry(ann, {}, problem=f"the chips could not be cut: {exc}")
    paths = _draw_chip(chip, ann, folder, attribution)
    return AnnotationEntry(ann, paths, score_method=chip.score_method)


def _write_geojson(evidence: ReportEvidence, path: Path) -> None:
    anns = list(evidence.accepted)
    claims = {c.claim.id: c.claim for c in evidence.claims}
    fc = to_feature_collection(
        anns,
        {evidence.report.id: evidence.report},
        claims,
        filters={"report_id": evidence.report.id, "status": "accepted"},
    )
    write_geojson(fc, path)


def _target(output: Path) -> Path:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise EvidenceError(
            f"expected a new or empty folder for the evidence package, got {output}, which "
            "exists and is not empty; choose another folder or remove it"
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.parent / f".{output.name}.{uuid.uuid4().hex[:12]}.tmp"
        tmp.mkdir()  # mode from the umask, like the folder it becomes
    except OSError as exc:
        raise EvidenceError(f"cannot write the evidence package at {output}: {exc}") from None
    return tmp


def make_package(
    store: Store,
    report_id: int,
    output: str | os.PathLike[str],
    *,
    attribution: str | None = None,
    margin: float = 0.5,
    chip_px: int = 512,
    pdf: bool = True,
) -> Package:
    """Write the evidence package of report ``report_id`` into the folder ``output``.

    Parameters
    ----------
    store : Store
        The annotation store.
    report_id : int
    output : path-like
        A folder that does not exist yet, or is empty.
    attribution : str, optional
        The imagery credit burned into every chip; default: each scene file's copyright
        metadata, else a line saying it is not recorded.
    margin : float
        Context around each polygon, as a fraction of its size on each side.
    chip_px : int
        Largest chip side in pixels (a large polygon is shown with coarser pixels).
    pdf : bool
        Also print ``evidence.pdf`` with headless Chromium.

    Raises
    ------
    satdelta.annotations.NotFoundError
        No such report.
    EvidenceError
        ``output`` is not a new or empty folder, or Chromium is missing or fails.
    """
    if not (margin >= 0 and chip_px >= 64):
        raise EvidenceError(f"expected margin >= 0 and chip_px >= 64, got {margin}, {chip_px}")
    output = Path(output)
    evidence = gather_report(store, report_id)
    chromium = find_chromium() if pdf else None
    tmp = _target(output)
    try:
        (tmp / CHIPS).mkdir()
        book = SceneBook()
        entries = {}
        for ann in evidence.accepted:
            log.info("chips of annotation %s", ann.id)
            entries[ann.id] = _chips_of(
                ann, book, tmp, attribution=attribution, margin=margin, chip_px=chip_px
            )
        scenes = list(book.records.values())
        created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        software = _software(chromium_version(chromium) if chromium else None)
        page = render_page(
            evidence, entries, scenes, generated=created, version=software["satdelta"] or "?"
        )
        (tmp / PAGE).write_text(page, encoding="utf-8")
        _write_geojson(evidence, tmp / GEOJSON)
        if pdf:
            print_pdf(tmp / PAGE, tmp / PDF)
        problems = tuple(
            f"annotation {e.annotation.id}: {e.problem}" for e in entries.values() if e.problem
        ) + tuple(
            f"scene {s['source']}: {s['status']}: {s.get('message', '')}"
            for s in scenes
            if s["status"] != "ok"
        )
        digest = write_manifest(
            tmp,
            {
                "created": created,
                "report": {"id": evidence.report.id, "title": evidence.report.title},
                "annotations": [a.id for a in evidence.accepted],
                "scenes": scenes,
                "software": software,
                "parameters": {
                    "store": str(
                        store.path.resolve() if isinstance(store.path, Path) else store.path
                    ),
                    "report_id": report_id,
                    "attribution": attribution,
                    "margin": margin,
                    "chip_px": chip_px,
                    "pdf": pdf,
                },
                "problems": list(problems),
            },
        )
        if output.exists():
            output.rmdir()  # empty (checked above)
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Package(output, digest, len(evidence.accepted), problems)
