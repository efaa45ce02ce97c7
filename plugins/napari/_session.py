"""The annotation session behind the Change annotator (no napari, no Qt).

A :class:`Session` ties the viewer's map frame to an open
:class:`satdelta.annotations.Store` and a current report/claim.  Every method
that changes something writes to the store at once (one transaction each), so
closing napari, or napari crashing, loses nothing.  The widget only translates
between Shapes-layer rows and these calls.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from satdelta.annotations import Annotation, AnnotationValueError, Claim, Report, Store
from satdelta.plugins.napari._features import (
    ANNOTATION_COLUMNS,
    geometry_to_shapes,
    shape_to_geometry,
)
from satdelta.plugins.napari._frame import MapFrame

__all__ = [
    "EvidenceRows",
    "LayerRows",
    "Session",
    "annotations_to_rows",
    "display_tolerance",
    "polygons_to_rows",
    "UNSTORED",
    "review_order",
    "WORKING_REPORT",
]

log = logging.getLogger(__name__)

#: Report and claim created when the analyst draws before loading any report.
WORKING_REPORT = {
    "report": {"title": "Working notes", "notes": "Created by the napari Change annotator."},
    "claims": [{"text": "Unassigned evidence"}],
}

#: Id prefix of candidates shown but not stored (a pair without georeferencing).
UNSTORED = "unstored-"

#: Seconds the GUI waits for another program's write lock before telling the analyst.
GUI_LOCK_TIMEOUT = 2.0


@dataclass(frozen=True)
class LayerRows:
    """Shapes-layer content for a list of annotations.

    Attributes
    ----------
    shapes : list of (N, 2) ndarray
        World vertices, one entry per polygon part.
    properties : dict of str to list
        One value per entry for every column of ``ANNOTATION_COLUMNS``.
    """

    shapes: list[np.ndarray]
    properties: dict[str, list[Any]]

    def __post_init__(self) -> None:
        n = len(self.shapes)
        for key, col in self.properties.items():
            if len(col) != n:
                raise ValueError(f"column {key!r} has {len(col)} rows for {n} shapes")


@dataclass(frozen=True)
class EvidenceRows:
    """Shapes rows read from the store, with the session state they were read in.

    Attributes
    ----------
    rows : LayerRows
        The current report's annotations in the map frame.
    mark : tuple
        :meth:`Session.mark` just before the read: while the session's mark is the same,
        nothing this session wrote or chose since makes ``rows`` out of date.
    """

    rows: LayerRows
    mark: tuple[Session, int, int | None, MapFrame | None]


def display_tolerance(pixel_size: float) -> float:
    """How far a drawn outline may stray from the stored one: half a pixel (map units).

    Examples
    --------
    >>> display_tolerance(5.0)
    2.5
    """
    return abs(float(pixel_size)) / 2.0


def review_order(items: Sequence[Any]) -> list[Any]:
    """Annotations or change polygons in the order an analyst reviews them.

    By ``rank`` first (an attribute, or ``provenance["rank"]``; 1 is the most likely
    change), then the rest largest first (``area_m2``, or ``pixel_count`` when the area
    is unknown).  The evidence layer's rows, and so key N, follow this order.
    """

    def key(item: Any) -> tuple[float, float]:
        rank = getattr(item, "rank", None)
        provenance = getattr(item, "provenance", None)
        if rank is None and isinstance(provenance, Mapping):
            rank = provenance.get("rank")
        area = getattr(item, "area_m2", None)
        if area is None or not math.isfinite(area):
            area = getattr(item, "pixel_count", 0)
        return (float(rank) if rank is not None else math.inf, -float(area))

    return sorted(items, key=key)


def polygons_to_rows(polygons: Sequence[Any], frame: MapFrame) -> LayerRows:
    """A run's change polygons as Shapes rows that are not stored (pixel frames).

    For a pair without georeferencing: the store keeps lon/lat, so these candidates
    live only in the layer; their ids are ``"unstored-<k>"``.
    """
    shapes: list[np.ndarray] = []
    cols: dict[str, list[Any]] = {k: [] for k in ANNOTATION_COLUMNS}
    for k, p in enumerate(review_order(polygons), start=1):
        row = {
            **ANNOTATION_COLUMNS,
            "annotation_id": f"{UNSTORED}{k}",
            "status": "candidate",
            "origin": "detected",
            "area_m2": float(p.area_m2),
            "score": float(p.score),
        }
        for part in geometry_to_shapes(p.geometry, frame):
            shapes.append(part)
            for c in cols:
                cols[c].append(row[c])
    return LayerRows(shapes, cols)


def annotations_to_rows(
    annotations: Sequence[Annotation], frame: MapFrame, *, tolerance: float = 0.0
) -> LayerRows:
    """Store annotations (WGS84) as Shapes rows in the viewer's frame, in review order.

    A MultiPolygon becomes one row per part, all with the same ``annotation_id``.
    With ``tolerance`` (map units, see :func:`display_tolerance`) detected outlines are
    simplified for display (topology kept); the store keeps the full geometry, and an
    outline is saved back only when the analyst edits it.
    """
    annotations = review_order(annotations)
    shapes: list[np.ndarray] = []
    cols: dict[str, list[Any]] = {k: [] for k in ANNOTATION_COLUMNS}
    # one pyproj call for every vertex of every annotation (5,000 calls would take seconds)
    geoms_map = shapely.transform(
        np.array([a.geometry for a in annotations], dtype=object), frame.lonlat_to_map
    )
    detected = np.array([a.origin == "detected" for a in annotations], dtype=bool)
    if tolerance > 0 and detected.any():  # drawn outlines are shown as drawn
        geoms_map[detected] = shapely.simplify(
            geoms_map[detected], tolerance, preserve_topology=True
        )
    for ann, geom_map in zip(annotations, geoms_map, strict=True):
        parts = geometry_to_shapes(geom_map, frame)
        score = ann.provenance.get("score") if isinstance(ann.provenance, Mapping) else None
        row = {
            "annotation_id": ann.id,
            "label": ann.label,
            "claim_id": str(ann.claim_id),
            "verdict": ann.verdict,
            "confidence": float(ann.confidence) if ann.confidence is not None else float("nan"),
            "status": ann.status,
            "origin": ann.origin,
            "notes": ann.notes or "",
            "area_m2": float(ann.area_m2),
            "score": float(score) if score is not None else float("nan"),
        }
        for part in parts:
            shapes.append(part)
            for k in cols:
                cols[k].append(row[k])
    return LayerRows(shapes, cols)


class Session:
    """An open store plus the frame and the claim new polygons go to.

    Parameters
    ----------
    store : Store
        Open annotation store.
    frame : MapFrame
        The viewer's map frame (must be georeferenced to save polygons).
    """

    def __init__(self, store: Store, frame: MapFrame | None = None) -> None:
        self.store = store
        self.frame = frame
        self.report_id: int | None = None
        self.claim_id: int | None = None
        #: Simplification of the detected outlines the layer shows (see ``rows``).
        self.display_tolerance = 0.0
        self._writes = 0  # store writes made through this session, see mark()
        #: Revision of each annotation as last shown or written here: an edit based on it is
        #: refused if another analyst (a team store) changed the annotation since.
        self._shown: dict[str, int] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str], frame: MapFrame | None = None) -> Session:
        """Open (or create) a store with a short lock timeout suited to a GUI.

        Raises
        ------
        satdelta.annotations.StoreError
            Locked, corrupt, not a store, or not creatable; the message says what to do.
        """
        store = Store.open(path, timeout=GUI_LOCK_TIMEOUT)
        session = cls(store, frame)
        reports = store.list_reports()
        if reports:
            session.select_report(reports[-1].id)
        return session

    def close(self) -> None:
        """Close the store (everything is already committed)."""
        self.store.close()

    # -- reports and claims ---------------------------------------------------
    def reports(self) -> list[Report]:
        return self.store.list_reports()

    def claims(self) -> list[Claim]:
        """Claims of the current report (all claims when none is selected)."""
        return self.store.list_claims(self.report_id)

    def select_report(self, report_id: int) -> None:
        self.report_id = int(report_id)
        claims = self.store.list_claims(self.report_id)
        if self.claim_id not in {c.id for c in claims}:
            self.claim_id = claims[0].id if claims else None

    def load_report(self, data: Mapping[str, Any], *, site: str | None = None) -> Report:
        """Add a report (``{"report", "claims"}``) unless one with its title and URL is stored.

        The report becomes current; with ``site`` (a sample's site key), so does its claim
        about that site.
        """
        r = data.get("report") or {}
        report = next(
            (
                rep
                for rep in self.store.list_reports()
                if rep.title == r.get("title") and (rep.url or None) == (r.get("url") or None)
            ),
            None,
        )
        if report is None:
            report, _claims = self._wrote(self.store.load_report(data))
        self.select_report(report.id)
        for claim in data.get("claims", []):
            if site and claim.get("site") == site:
                cid = self.claim_for_text(claim.get("text", ""))
                if cid is not None:
                    self.claim_id = cid
        return report

    def claim_for_text(self, text: str) -> int | None:
        """Id of the current report's claim with exactly this text."""
        for c in self.claims():
            if c.text == text:
                return c.id
        return None

    def ensure_claim(self) -> int:
        """The claim new polygons go to, creating "Working notes" when the store has none."""
        if self.claim_id is None:
            if self.report_id is None:
                self.load_report(WORKING_REPORT)
            else:
                self.claim_id = self._wrote(
                    self.store.add_claim(report_id=self.report_id, text="Unassigned evidence")
                ).id
        assert self.claim_id is not None
        return self.claim_id

    # -- annotations ----------------------------------------------------------
    def annotations(self) -> list[Annotation]:
        """Current annotations of the current report (all when none is selected).

        Detected candidates come first in rank order (1 = strongest evidence), so the desk
        reviews them strongest first; the others follow in the order they were added.
        """
        return self.store.list_annotations(report_id=self.report_id, sort="rank")

    def objects(self) -> list[Annotation]:
        """The current report's object candidates (:mod:`satdelta.annotations.object_counts`)."""
        return self.store.list_annotations(report_id=self.report_id, objects=True)

    def rows(self, *, tolerance: float = 0.0) -> LayerRows:
        """The current report's annotations as Shapes rows (``tolerance``: see
        :func:`annotations_to_rows`); none in a frame without georeferencing, where
        lon/lat cannot be placed."""
        if not self._frame().georeferenced:
            return LayerRows([], {k: [] for k in ANNOTATION_COLUMNS})
        self.display_tolerance = tolerance
        anns = self.annotations()
        self._shown = {a.id: a.revision for a in anns}
        return annotations_to_rows(anns, self._frame(), tolerance=tolerance)

    def mark(self) -> tuple[Session, int, int | None, MapFrame | None]:
        """What rows read now depend on: this session, its writes so far, report, frame.

        Two equal marks mean the same session wrote nothing and chose no other report or
        frame in between, so rows read at the first are still the rows at the second (a
        session opened on another store meanwhile never has an equal mark).
        """
        return (self, self._writes, self.report_id, self.frame)

    def _wrote(self, result: Any) -> Any:
        self._writes += 1
        if isinstance(result, Annotation):
            self._shown[result.id] = result.revision
        return result

    def _based_on(self, annotation_id: str) -> int | None:
        """The revision the analyst's edit of ``annotation_id`` is based on (None: unknown)."""
        return self._shown.get(annotation_id)

    def _frame(self) -> MapFrame:
        if self.frame is None:
            from satdelta.plugins.napari._frame import FrameError

            raise FrameError(
                "no georeferenced raster is open, so polygons have no map position; "
                "open the before/after rasters first."
            )
        return self.frame

    def _map_geometry(self, vertices: np.ndarray, shape_type: str) -> Any:
        if not self._frame().georeferenced:
            from satdelta.plugins.napari._frame import FrameError

            raise FrameError(
                "these layers are not georeferenced, so a polygon drawn on them has no lon/lat "
                "and is not stored (the store keeps lon/lat); open rasters that carry a CRS "
                "to keep evidence."
            )
        geom = shape_to_geometry(vertices, shape_type, self._frame())
        if geom.geom_type != "Polygon":
            from satdelta.plugins.napari._features import ExportError

            raise ExportError(
                f"only polygons can be evidence, got a {shape_type}; "
                "draw with the polygon, rectangle or ellipse tool."
            )
        return geom

    def add_drawn(
        self, vertices: np.ndarray, shape_type: str = "polygon", **fields: Any
    ) -> Annotation:
        """Save a polygon drawn in napari (world vertices) as a new annotation."""
        geom = self._map_geometry(vertices, shape_type)
        claim_id = int(fields.pop("claim_id", None) or self.ensure_claim())
        ann = self.store.add_annotation(
            geom,
            crs=self._frame().crs,
            claim_id=claim_id,
            label=fields.pop("label", "other"),
            status=fields.pop("status", "candidate"),
            origin=fields.pop("origin", "drawn"),
            **fields,
        )
        return self._wrote(ann)

    def update_geometry(
        self, annotation_id: str, parts: Sequence[tuple[np.ndarray, str]]
    ) -> Annotation:
        """Save an edited outline: every ``(vertices, shape_type)`` part the annotation has.

        A MultiPolygon is shown as one Shapes row per part, so an edit of one part
        must save all of them, or the other parts would be lost.
        """
        polys = [self._map_geometry(v, kind) for v, kind in parts]
        geom = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
        current = self.store.get_annotation(annotation_id)
        wgs84 = shapely.transform(geom, self._frame().map_to_lonlat)
        if shapely.equals_exact(
            shapely.normalize(wgs84), shapely.normalize(current.geometry), tolerance=1e-8
        ) or _same_outline(geom, self._as_shown(current)):
            return current  # napari re-sent an unchanged shape: no new revision
        return self._wrote(
            self.store.update_annotation(
                annotation_id,
                geometry=geom,
                crs=self._frame().crs,
                expected_revision=self._based_on(annotation_id),
            )
        )

    def _as_shown(self, ann: Annotation) -> Any:
        """``ann`` as the layer draws it (map frame): simplified if detected, no holes."""
        geom = shapely.transform(ann.geometry, self._frame().lonlat_to_map)
        if ann.origin == "detected" and self.display_tolerance > 0:
            geom = shapely.simplify(geom, self.display_tolerance, preserve_topology=True)
        parts = list(geom.geoms) if isinstance(geom, shapely.MultiPolygon) else [geom]
        shells = [shapely.Polygon(p.exterior) for p in parts]
        return shells[0] if len(shells) == 1 else shapely.MultiPolygon(shells)

    def update(self, annotation_id: str, **changes: Any) -> Annotation:
        """Save form fields (label, claim_id, verdict, confidence, status, notes)."""
        if "claim_id" in changes:
            changes["claim_id"] = int(changes["claim_id"])
        based_on = self._based_on(annotation_id)
        return self._wrote(
            self.store.update_annotation(annotation_id, expected_revision=based_on, **changes)
        )

    def set_status(self, annotation_ids: Iterable[str], status: str) -> list[Annotation]:
        """Accept or reject annotations (one revision each)."""
        return [
            self._wrote(
                self.store.update_annotation(a, status=status, expected_revision=self._based_on(a))
            )
            for a in dict.fromkeys(annotation_ids)
        ]

    def delete(self, annotation_id: str) -> None:
        """Delete (tombstone) an annotation."""
        based_on = self._based_on(annotation_id)
        self._wrote(self.store.delete_annotation(annotation_id, expected_revision=based_on))

    def undo(self) -> str:
        """Undo the latest change; returns its description."""
        change = self._wrote(self.store.undo())
        for annotation_id in change.annotation_ids:  # new revisions written by this session
            self._shown.pop(annotation_id, None)
        return change.description

    def add_candidates(
        self,
        polygons: Sequence[Any],
        provenance: Mapping[str, Any],
        *,
        replace_earlier: bool = False,
    ) -> list[Annotation]:
        """Save detected change polygons as candidates (one transaction, one undo step).

        Parameters
        ----------
        polygons : sequence of ChangePolygon
            The run's polygons (those without WGS84 geometry are skipped).
        provenance : mapping
            The run's provenance (``DetectionRun.provenance()``).
        replace_earlier : bool, default False
            Also supersede the :meth:`earlier_candidates` of the same before/after pair in
            the same change, so a re-run replaces them and one :meth:`undo` brings them back.
        """
        claim_id = self.ensure_claim()
        items = []
        for p in polygons:
            if p.geometry_wgs84 is None:
                continue
            items.append(
                {
                    "geometry": p.geometry_wgs84,
                    "crs": None,
                    "claim_id": claim_id,
                    "label": "other",
                    "status": "candidate",
                    "origin": "detected",
                    "area_m2": _finite(p.area_m2),
                    "rank": p.rank,
                    "change": p.change,
                    "provenance": {
                        **provenance,
                        "score": _finite(p.score),
                        "area_m2": _finite(p.area_m2),
                    },
                }
            )
        for attempt in range(3):
            earlier = self.earlier_candidates(provenance) if replace_earlier else []
            text = f"detected {len(items)} candidates" + (
                f" (replacing {len(earlier)} earlier)" if earlier else ""
            )
            try:
                saved = self.store.add_annotations(
                    items, action="import", description=text, supersede=earlier
                )
            except AnnotationValueError:
                # one of them was accepted or rejected meanwhile (another window): list again
                if not earlier or attempt == 2:
                    raise
                continue
            return self._wrote(saved)
        raise AssertionError("unreachable")  # pragma: no cover

    def earlier_candidates(self, provenance: Mapping[str, Any]) -> list[str]:
        """Ids of the current report's undecided detected candidates of the same pair.

        Those with status ``"candidate"``, origin ``"detected"`` and the same ``before`` and
        ``after`` scenes in their provenance as ``provenance``; accepted, rejected and
        hand-drawn annotations are never listed.
        """
        pair = (provenance.get("before"), provenance.get("after"))
        return [
            a.id
            for a in self.annotations()
            if a.status == "candidate"
            and a.origin == "detected"
            and isinstance(a.provenance, Mapping)
            and (a.provenance.get("before"), a.provenance.get("after")) == pair
        ]

    def note_write_elsewhere(self, evidence: EvidenceRows | None) -> EvidenceRows | None:
        """Count a write another process made for this session (the detection child).

        ``evidence`` are the rows that process read right after its write, marked with
        this session's :meth:`mark` from when the job was sent.  Returns them marked as
        current when this session wrote and chose nothing since, else None (read again).
        """
        current = evidence is not None and evidence.mark == self.mark()
        self._wrote(None)
        if not current:
            return None
        assert evidence is not None
        return EvidenceRows(evidence.rows, self.mark())

    def export(self, path: str | os.PathLike[str]) -> int:
        """Write the current report's annotations as RFC 7946 GeoJSON; returns the count."""
        return self.store.export(path, format="geojson", report_id=self.report_id)


def _same_outline(a: Any, b: Any, grid: float = 1e-3) -> bool:
    """True when two map-frame geometries match to ``grid`` (float32 round trips differ).

    Every vertex of each lies within ``grid`` of the other (Hausdorff distance): snapping both
    to the grid and comparing vertex lists failed on outlines with arbitrary vertices (the
    object footprints), where snapping can merge a vertex on one side and not the other.

    Examples
    --------
    >>> a = shapely.box(0, 0, 1, 1)
    >>> _same_outline(a, shapely.box(1e-9, 0, 1 - 1e-9, 1))
    True
    >>> _same_outline(a, shapely.box(0, 0, 1, 2))
    False
    """
    if shapely.get_num_geometries(a) != shapely.get_num_geometries(b):
        return False
    return bool(shapely.hausdorff_distance(a, b) <= grid)


def _finite(v: float) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None
