"""Plain data objects of the annotation store: reports, claims, annotations, revisions.

All are frozen dataclasses that validate on construction.  Geometries are
shapely Polygon/MultiPolygon in WGS84 lon/lat; times are UTC strings in the
GeoPackage DATETIME form ``YYYY-MM-DDTHH:MM:SS.fffZ``; dates are
:class:`datetime.date`.  ``to_dict`` gives a JSON-serialisable mapping with
full coordinate precision (used for revision snapshots and ``--json`` output).
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal, get_args

import numpy as np
import shapely
from satdelta.annotations.errors import AnnotationValueError
from shapely.geometry import MultiPolygon, Polygon, shape

__all__ = [
    "DEFAULT_LABELS",
    "VERDICTS",
    "STATUSES",
    "ORIGINS",
    "CHANGES",
    "SORTS",
    "ChangeKind",
    "Verdict",
    "Status",
    "Origin",
    "Report",
    "Claim",
    "Annotation",
    "Revision",
    "Change",
    "ATTRIBUTES",
    "UPDATABLE",
    "parse_date",
    "count",
]

Verdict = Literal["supports", "contradicts", "inconclusive"]
Status = Literal["candidate", "accepted", "rejected"]
Origin = Literal["detected", "drawn", "imported"]

#: Labels a new store starts with; the schema is editable (:meth:`Store.add_label`).
DEFAULT_LABELS: tuple[str, ...] = (
    "aircraft",
    "vehicles",
    "personnel formation",
    "structure",
    "ground marking",
    "water",
    "vegetation",
    "other",
)
VERDICTS: tuple[str, ...] = get_args(Verdict)
STATUSES: tuple[str, ...] = get_args(Status)
ORIGINS: tuple[str, ...] = get_args(Origin)
#: What a detected candidate shows (``satdelta.imagery.candidates.change_kind``).
ChangeKind = Literal["appeared", "disappeared", "altered"]
CHANGES: tuple[str, ...] = get_args(ChangeKind)
#: Orders :meth:`Store.list_annotations` can sort by: the order they were added, or the
#: detection's rank (1 = strongest evidence first; unranked ones last).
SORTS: tuple[str, ...] = ("added", "rank")


#: Fields of :class:`Annotation` held as plain values (all but id, geometry, repairs, provenance).
ATTRIBUTES: tuple[str, ...] = (
    "claim_id",
    "report_id",
    "label",
    "verdict",
    "confidence",
    "status",
    "origin",
    "notes",
    "analyst",
    "created",
    "updated",
    "revision",
    "area_m2",
    "source_crs",
    "rank",
    "change",
)
_get_attributes = operator.attrgetter(*ATTRIBUTES)
#: Fields of :class:`Annotation` that :meth:`Store.update_annotation` changes (besides geometry).
UPDATABLE: tuple[str, ...] = (
    "label",
    "verdict",
    "confidence",
    "status",
    "notes",
    "analyst",
    "claim_id",
    "provenance",
    "origin",
)


def count(n: int, noun: str) -> str:
    """``"1 claim"``, ``"2 claims"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def parse_date(value: Any, what: str) -> date | None:
    """Return a :class:`date` from a date or ``YYYY-MM-DD`` string (None passes through)."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise AnnotationValueError(
            f"{what}: expected a date as YYYY-MM-DD, got {value!r}"
        ) from None


def _choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise AnnotationValueError(f"{what}: expected one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class Report:
    """A news report whose claims the analyst checks."""

    id: int
    title: str
    outlet: str | None = None
    url: str | None = None
    published: date | None = None
    language: str | None = None
    notes: str | None = None
    created: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise AnnotationValueError(f"report title: expected non-empty text, got {self.title!r}")
        object.__setattr__(self, "published", parse_date(self.published, "report published"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "outlet": self.outlet,
            "url": self.url,
            "published": self.published.isoformat() if self.published else None,
            "language": self.language,
            "notes": self.notes,
            "created": self.created,
        }


@dataclass(frozen=True)
class Claim:
    """One statement of a report, in the analyst's words, with where and when it applies.

    ``point`` is (lon, lat) and ``bbox`` is (west, south, east, north), both WGS84.
    """

    id: int
    report_id: int
    text: str
    place: str | None = None
    point: tuple[float, float] | None = None
    bbox: tuple[float, float, float, float] | None = None
    time_start: date | None = None
    time_end: date | None = None
    created: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise AnnotationValueError(f"claim text: expected non-empty text, got {self.text!r}")
        if self.point is not None:
            lon, lat = (float(v) for v in self.point)
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise AnnotationValueError(
                    "claim point: expected lon in [-180, 180] and lat in [-90, 90], "
                    f"got {self.point}"
                )
            object.__setattr__(self, "point", (lon, lat))
        if self.bbox is not None:
            if len(self.bbox) != 4:
                raise AnnotationValueError(f"claim bbox: expected W,S,E,N, got {self.bbox}")
            w, s, e, n = (float(v) for v in self.bbox)
            if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
                raise AnnotationValueError(
                    "claim bbox: expected west < east within [-180, 180] and south < north "
                    f"within [-90, 90] (WGS84 degrees), got {self.bbox}"
                )
            object.__setattr__(self, "bbox", (w, s, e, n))
        start = parse_date(self.time_start, "claim time_start")
        end = parse_date(self.time_end, "claim time_end")
        if start and end and end < start:
            raise AnnotationValueError(
                f"claim time window: expected start <= end, got {start} .. {end}"
            )
        object.__setattr__(self, "time_start", start)
        object.__setattr__(self, "time_end", end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "report_id": self.report_id,
            "text": self.text,
            "place": self.place,
            "point": list(self.point) if self.point else None,
            "bbox": list(self.bbox) if self.bbox else None,
            "time_start": self.time_start.isoformat() if self.time_start else None,
            "time_end": self.time_end.isoformat() if self.time_end else None,
            "created": self.created,
        }


def _exact_geojson(geometry: Polygon | MultiPolygon) -> dict[str, Any]:
    """GeoJSON mapping with lists (not tuples) and every coordinate at full precision."""

    def poly(p: Polygon) -> list[list[list[float]]]:
        return [np.asarray(r.coords)[:, :2].tolist() for r in (p.exterior, *p.interiors)]

    if isinstance(geometry, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [poly(p) for p in geometry.geoms]}
    return {"type": "Polygon", "coordinates": poly(geometry)}


def _geojson_many(
    geometries: list[Polygon | MultiPolygon], *, precision: int | None = None
) -> list[dict[str, Any]]:
    """:func:`_exact_geojson` (or, with ``precision``, coordinates rounded) of many geometries.

    The coordinates of all rings come out of shapely in one array, are rounded
    in one numpy call and converted to Python floats in one ``tolist``; only the
    nesting into rings and polygons is a Python loop.  Same values as ring by ring.
    """
    geoms = np.empty(len(geometries), dtype=object)
    geoms[:] = geometries
    if len(geoms) == 0:
        return []
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy = shapely.get_coordinates(rings)
    if precision is not None:
        xy = np.round(xy, precision)
    coords = xy.tolist()
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    polys: list[list[list[list[float]]]] = [[] for _ in range(len(parts))]
    start = 0
    for end, part in zip(ends, ring_of.tolist(), strict=True):
        polys[part].append(coords[start:end])
        start = end
    out: list[list[list[list[list[float]]]]] = [[] for _ in range(len(geoms))]
    for part, geom in enumerate(part_of.tolist()):
        out[geom].append(polys[part])
    multi = (shapely.get_type_id(geoms) == 6).tolist()
    return [
        {"type": "MultiPolygon", "coordinates": p}
        if m
        else {"type": "Polygon", "coordinates": p[0]}
        for p, m in zip(out, multi, strict=True)
    ]


def _single(geometry: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    if isinstance(geometry, MultiPolygon) and len(geometry.geoms) == 1:
        return geometry.geoms[0]
    return geometry


@dataclass(frozen=True)
class Annotation:
    """One evidence polygon tied to a claim, in its current (or a past) state.

    Attributes
    ----------
    id : str
        UUID.
    geometry : shapely.Polygon or shapely.MultiPolygon
        WGS84 lon/lat; a one-part MultiPolygon is normalised to a Polygon.
    confidence : float or None
        In [0, 1]; None = not assessed.
    repairs : tuple of str
        What :func:`~satdelta.annotations.geometry.clean_polygon` changed; empty
        when the geometry was valid as given.
    rank : int or None
        For detected candidates: 1 = the strongest evidence of its run (None otherwise).
    change : {"appeared", "disappeared", "altered"} or None
        For detected candidates: what the candidate shows (None otherwise).
    provenance : dict
        JSON-serialisable; for detected polygons ``{"before": {"source",
        "scene_id", "sha256", "acquired"}, "after": {...}, "method",
        "threshold_method", "threshold", "parameters", "created", ...}``.
    """

    id: str
    geometry: Polygon | MultiPolygon
    claim_id: int
    report_id: int
    label: str
    verdict: Verdict = "inconclusive"
    confidence: float | None = None
    status: Status = "candidate"
    origin: Origin = "drawn"
    notes: str | None = None
    analyst: str | None = None
    created: str = ""
    updated: str = ""
    revision: int = 0
    area_m2: float = 0.0
    source_crs: str = "EPSG:4326"
    rank: int | None = None
    change: ChangeKind | None = None
    repairs: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, Polygon | MultiPolygon) or self.geometry.is_empty:
            raise AnnotationValueError(
                f"annotation geometry: expected a non-empty Polygon or MultiPolygon, got "
                f"{getattr(self.geometry, 'geom_type', type(self.geometry).__name__)}"
            )
        object.__setattr__(self, "geometry", _single(self.geometry))
        if not isinstance(self.label, str) or not self.label.strip():
            raise AnnotationValueError(f"label: expected non-empty text, got {self.label!r}")
        _choice(self.verdict, VERDICTS, "verdict")
        _choice(self.status, STATUSES, "status")
        _choice(self.origin, ORIGINS, "origin")
        if self.confidence is not None:
            try:
                conf = float(self.confidence)
            except (TypeError, ValueError):
                conf = math.nan
            if not 0.0 <= conf <= 1.0:
                raise AnnotationValueError(
                    f"confidence: expected a number from 0 to 1, got {self.confidence!r}"
                )
            object.__setattr__(self, "confidence", conf)
        if self.rank is not None and (
            isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1
        ):
            raise AnnotationValueError(f"rank: expected a whole number >= 1, got {self.rank!r}")
        if self.change is not None:
            _choice(self.change, CHANGES, "change")
        object.__setattr__(self, "repairs", tuple(self.repairs))
        try:
            json.dumps(self.provenance, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AnnotationValueError(
                f"provenance: expected JSON-serialisable values, got {exc}"
            ) from None

    @classmethod
    def _from_store(cls, **fields: Any) -> Annotation:
        """Rebuild an annotation read back from the store, skipping validation.

        Only for rows the store validated when it wrote them.
        """
        obj = object.__new__(cls)
        fields["geometry"] = _single(fields["geometry"])
        obj.__dict__.update({name: fields[name] for name in cls.__dataclass_fields__})
        return obj

    @property
    def repaired(self) -> bool:
        """True when the geometry was repaired on the way in."""
        return bool(self.repairs)

    @property
    def deleted(self) -> bool:
        return False

    def replace(self, **changes: Any) -> Annotation:
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def attributes(self) -> dict[str, Any]:
        """The fields named in :data:`ATTRIBUTES`, in that order."""
        return dict(zip(ATTRIBUTES, _get_attributes(self), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable mapping, geometry as a GeoJSON mapping at full precision."""
        return self._to_dict(_exact_geojson(self.geometry))

    def _to_dict(self, geometry: dict[str, Any]) -> dict[str, Any]:
        """:meth:`to_dict` with the geometry's GeoJSON mapping computed by the caller."""
        return {
            "id": self.id,
            "geometry": geometry,
            **self.attributes(),
            "repairs": list(self.repairs),
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Annotation:
        """Inverse of :meth:`to_dict` (missing optional keys take their defaults)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "geometry"}
        known["repairs"] = tuple(known.get("repairs") or ())
        known["provenance"] = dict(known.get("provenance") or {})
        return cls(geometry=shape(data["geometry"]), **known)


@dataclass(frozen=True)
class Revision:
    """One stored state of an annotation; ``deleted`` marks a tombstone."""

    annotation_id: str
    revision: int
    action: str
    deleted: bool
    created: str
    analyst: str | None
    change_id: int | None
    snapshot: dict[str, Any]

    @property
    def annotation(self) -> Annotation:
        """The annotation as it was in this revision (for a tombstone: just before deletion)."""
        return Annotation.from_dict(self.snapshot)

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotation_id": self.annotation_id,
            "revision": self.revision,
            "action": self.action,
            "deleted": self.deleted,
            "created": self.created,
            "analyst": self.analyst,
            "change_id": self.change_id,
            "snapshot": self.snapshot,
        }


@dataclass(frozen=True)
class Change:
    """One user action (add, update, delete, restore, import, edit, undo) that wrote revisions.

    ``annotation_ids`` are the annotations it wrote revisions of and
    ``records`` the reports and claims it changed (``"report 2"``, ``"claim 7"``);
    both are filled by the call that made the change, empty in :meth:`Store.changes`.
    """

    id: int
    action: str
    description: str
    created: str
    analyst: str | None
    undoes: int | None
    annotation_ids: tuple[str, ...] = ()
    records: tuple[str, ...] = ()
