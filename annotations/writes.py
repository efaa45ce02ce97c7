"""Writing annotations and labels: add (one or many, superseding others), update, delete, import.

Each public function is one transaction and one entry of the ``changes`` log,
so one :func:`~satdelta.annotations.history.undo` reverses it.  Validation and
geometry work happen before the write lock is taken.
"""

from __future__ import annotations

import json
import os
import struct
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import shapely
from satdelta.annotations.connection import Database, Transaction
from satdelta.annotations.errors import (
    AnnotationValueError,
    GeometryError,
    NotFoundError,
    StaleRevisionError,
)
from satdelta.annotations.geometry import (
    CleanGeometry,
    clean_polygon,
    clean_polygons,
    geodesic_area_m2,
    geodesic_areas_perimeters_m,
)
from satdelta.annotations.gpkg import encode_multipolygons, gpkg_now
from satdelta.annotations.history import (
    INSERT_REVISION,
    next_revision,
    put,
    snapshot_json,
    tombstone,
    tombstone_many,
    touch_annotations,
    write_revision,
)
from satdelta.annotations.model import (
    UPDATABLE,
    Annotation,
    Claim,
    Revision,
    _geojson_many,
    count,
)
from satdelta.annotations.reads import current, get_claim, labels, resolve, resolve_many
from satdelta.annotations.records import require_row
from satdelta.annotations.rows import (
    ANN_COLUMNS,
    annotation_values,
    check_uuid,
    keep_measured_area,
    rows_to_annotations,
)

__all__ = [
    "add_label",
    "retire_label",
    "add_annotations",
    "update_annotation",
    "delete_annotation",
    "import_geojson",
    "ImportResult",
]


def add_label(db: Database, name: str, *, description: str = "") -> None:
    if not isinstance(name, str) or not name.strip():
        raise AnnotationValueError(f"label: expected non-empty text, got {name!r}")
    with db.write() as tx:
        tx.execute(
            "INSERT INTO labels (name, description, active) VALUES (?, ?, 1) "
            "ON CONFLICT(name) DO UPDATE SET active = 1",
            (name.strip(), description),
        )


def retire_label(db: Database, name: str) -> None:
    with db.write() as tx:
        if tx.execute("UPDATE labels SET active = 0 WHERE name = ?", (name,)).rowcount == 0:
            raise NotFoundError(f"no label {name!r}; labels are {', '.join(labels(db))}")


def check_label(tx: Transaction, label: str) -> None:
    """Inside a write: ``label`` is an active label of the schema."""
    row = tx.execute("SELECT active FROM labels WHERE name = ?", (label,)).fetchone()
    if not row or not row[0]:
        names = [r[0] for r in tx.execute("SELECT name FROM labels WHERE active = 1 ORDER BY id")]
        raise AnnotationValueError(
            f"label: expected one of {', '.join(names)}, got {label!r}; add it to the "
            f"schema first: `satdelta annotation labels --add {label}` (Store.add_label)"
        )


# ------------------------------------------------------------------ adding many
def add_annotations(
    db: Database,
    items: Iterable[Mapping[str, Any]],
    *,
    action: str,
    description: str,
    supersede: Iterable[str],
) -> list[Annotation]:
    """See :meth:`Store.add_annotations`."""
    prepared, claims = _prepare(db, [dict(item) for item in items])
    superseded = list(dict.fromkeys(resolve_many(db, supersede)))
    if not prepared and not superseded:
        return []
    desc = description or _describe_addition(prepared, superseded)
    ids = [a.id for a in prepared]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise AnnotationValueError(
            f"annotation id {dup} appears twice in one batch; ids must be unique"
        )
    # everything that does not need the lock is prepared before taking it
    geometries = [a.geometry for a in prepared]
    rows = [
        annotation_values(a, blob)
        for a, blob in zip(prepared, encode_multipolygons(geometries), strict=True)
    ]
    snapshots = [
        snapshot_json(a._to_dict(g))
        for a, g in zip(prepared, _geojson_many(geometries), strict=True)
    ]
    with db.write() as tx:
        for label in {a.label for a in prepared}:
            check_label(tx, label)
        _recheck_claims(tx, claims, prepared, rows, snapshots)
        old = _supersedable(tx, superseded)
        _check_ids_free(tx, ids)
        change = tx.new_change(action, desc)
        if old:
            tombstone_many(tx, old, change, "supersede")
        _insert(tx, rows, snapshots, prepared, change, action)
        touch_annotations(tx)
    return prepared


def _prepare(
    db: Database, items: list[dict[str, Any]]
) -> tuple[list[Annotation], dict[int, Claim]]:
    """Validated annotations of ``items`` (ids, times, areas filled in) and their claims.

    Geometry work is done in array calls; a refused geometry's error is raised in
    item order, as one by one.
    """
    cleaned_all = clean_polygons(
        [item.pop("geometry") for item in items], crs=[item.pop("crs", None) for item in items]
    )
    good = [c.geometry for c in cleaned_all if isinstance(c, CleanGeometry)]
    areas, perimeters = (
        (a.tolist() for a in geodesic_areas_perimeters_m(good)) if good else ([], [])
    )
    measured = iter(zip(areas, perimeters, strict=True))
    claims: dict[int, Claim] = {}
    prepared = []
    now = gpkg_now()
    for i, (item, cleaned) in enumerate(zip(items, cleaned_all, strict=True)):
        if isinstance(cleaned, GeometryError):
            raise cleaned
        claim_id = int(item.pop("claim_id"))
        if claim_id not in claims:
            claims[claim_id] = get_claim(db, claim_id)
        prepared.append(
            _annotation(i, item, cleaned, claims[claim_id], next(measured), now, db.analyst)
        )
    return prepared, claims


def _annotation(
    i: int,
    item: dict[str, Any],
    cleaned: CleanGeometry,
    claim: Claim,
    area_perimeter: tuple[float, float],
    now: str,
    analyst: str | None,
) -> Annotation:
    """The new annotation of item ``i`` (its other fields are Annotation's keywords)."""
    ann_id = item.pop("id", None)
    if ann_id:
        check_uuid(ann_id)
    created = item.pop("created", None) or now
    try:
        return Annotation(
            id=ann_id or str(uuidlib.uuid4()),
            geometry=cleaned.geometry,
            claim_id=claim.id,
            report_id=claim.report_id,
            analyst=item.pop("analyst", None) or analyst,
            created=created,
            updated=item.pop("updated", None) or created,
            revision=1,
            area_m2=keep_measured_area(*area_perimeter, item.pop("area_m2", None)),
            source_crs=item.pop("source_crs", None) or cleaned.source_crs,
            repairs=tuple(item.pop("repairs", ()) or ()) + cleaned.repairs,
            provenance=dict(item.pop("provenance", None) or {}),
            **item,
        )
    except TypeError as exc:
        raise AnnotationValueError(f"annotation {i}: {exc}") from None


def _describe_addition(prepared: list[Annotation], superseded: list[str]) -> str:
    if len(prepared) == 1:
        desc = f"add {prepared[0].label} annotation {prepared[0].id}"
    else:
        desc = f"add {len(prepared)} annotations"
    if superseded:
        replaced = count(len(superseded), "candidate")
        desc = f"{desc}, superseding {replaced}" if prepared else f"supersede {replaced}"
    return desc


def _chunks(values: list[Any], size: int = 500) -> Iterable[tuple[list[Any], str]]:
    """``values`` in parts of ``size``, each with its SQL placeholders ``?, ?, ...``."""
    for start in range(0, len(values), size):
        part = values[start : start + size]
        yield part, ", ".join("?" * len(part))


def _check_ids_free(tx: Transaction, ids: list[str]) -> None:
    for part, marks in _chunks(ids):
        taken = tx.execute(
            "SELECT annotation_uuid FROM annotation_revisions WHERE annotation_uuid IN "
            f"({marks}) LIMIT 1",
            part,
        ).fetchone()
        if taken:
            raise AnnotationValueError(
                f"annotation id {taken[0]} is already in the store; leave id unset for a new one"
            )


def _insert(
    tx: Transaction,
    rows: list[dict[str, Any]],
    snapshots: list[str],
    prepared: list[Annotation],
    change: int,
    action: str,
) -> None:
    """Insert the rows of new annotations and their first revisions."""
    if rows:
        cols = list(rows[0])
        tx.executemany(
            f"INSERT INTO annotations ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r.values()) for r in rows],
        )
    tx.executemany(
        INSERT_REVISION,
        [
            (a.id, a.revision, action, 0, a.updated, tx.analyst, snap, change)
            for a, snap in zip(prepared, snapshots, strict=True)
        ],
    )
    tx.bounds.extend(struct.unpack_from("<4d", r["geom"], 8) for r in rows)


def _recheck_claims(
    tx: Transaction,
    claims: dict[int, Claim],
    prepared: list[Annotation],
    rows: list[dict[str, Any]],
    snapshots: list[str],
) -> None:
    """Under the write lock: the claims still exist; follow a claim moved to another report.

    ``prepared``, ``rows`` and ``snapshots`` are corrected in place.
    """
    moved: dict[int, int] = {}
    for claim_id, claim in claims.items():
        now = tx.execute("SELECT report_id FROM claims WHERE id = ?", (claim_id,)).fetchone()
        if now is None:
            raise NotFoundError(
                f"claim {claim_id} was deleted while the annotations were prepared; "
                "`satdelta claim list` shows the claims left"
            )
        if now[0] != claim.report_id:
            moved[claim_id] = now[0]
    for i, ann in enumerate(prepared):
        if ann.claim_id in moved:
            prepared[i] = ann.replace(report_id=moved[ann.claim_id])
            rows[i]["report_id"] = moved[ann.claim_id]
            snap = json.loads(snapshots[i])
            snap["report_id"] = moved[ann.claim_id]
            snapshots[i] = snapshot_json(snap)


def _supersedable(tx: Transaction, uids: list[str]) -> list[Annotation]:
    """Current states of the annotations to supersede, or a one-line error why not."""
    found: dict[str, Annotation] = {}
    for part, marks in _chunks(uids):
        rows = tx.execute(
            f"SELECT {ANN_COLUMNS} FROM annotations WHERE uuid IN ({marks})", part
        ).fetchall()
        found.update((a.id, a) for a in rows_to_annotations(rows) if rows)
    missing = [u for u in uids if u not in found]
    if missing:
        known = tx.execute(
            "SELECT 1 FROM annotation_revisions WHERE annotation_uuid = ? LIMIT 1", (missing[0],)
        ).fetchone()
        raise NotFoundError(
            f"cannot supersede annotation {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + (": it is deleted" if known else ": no such annotation")
            + "; supersede only current candidates"
        )
    decided = [found[u] for u in uids if found[u].status != "candidate"]
    if decided:
        raise AnnotationValueError(
            f"cannot supersede annotation {decided[0].id}: expected status candidate, got "
            f"{decided[0].status}"
            + (f" ({len(decided) - 1} more are decided)" if len(decided) > 1 else "")
            + "; accepted and rejected annotations are kept, leave them out of supersede"
        )
    return [found[u] for u in uids]


# ------------------------------------------------------------- editing one
def check_revision(tx: Transaction, old: Annotation, expected: int | None) -> None:
    """Refuse an edit based on revision ``expected`` when ``old`` is a later one.

    The message names who wrote the current revision and when, so the analyst can look
    before redoing the edit (no silent last-writer-wins between analysts).
    """
    if expected is None or int(expected) == old.revision:
        return
    who, when = tx.execute(
        "SELECT analyst, created FROM annotation_revisions WHERE annotation_uuid = ? AND "
        "revision = ?",
        (old.id, old.revision),
    ).fetchone()
    raise StaleRevisionError(
        f"annotation {old.id} was changed by {who or 'an unnamed analyst'} at {when} (now "
        f"revision {old.revision}, your edit was based on revision {expected}); nothing was "
        "written: reload it, check their change and redo yours"
    )


def update_annotation(
    db: Database,
    annotation_id: str,
    changes: dict[str, Any],
    *,
    expected_revision: int | None = None,
) -> Annotation:
    """See :meth:`Store.update_annotation`."""
    unknown = set(changes) - set(UPDATABLE) - {"geometry", "crs"}
    if unknown:
        raise AnnotationValueError(
            f"cannot update {', '.join(sorted(unknown))}; allowed fields are "
            f"{', '.join(UPDATABLE)}, geometry"
        )
    full = resolve(db, annotation_id)
    geom_fields: dict[str, Any] = {}
    if "geometry" in changes:
        cleaned = clean_polygon(changes.pop("geometry"), crs=changes.pop("crs", None))
        geom_fields = dict(
            geometry=cleaned.geometry,
            repairs=cleaned.repairs,
            source_crs=cleaned.source_crs,
            area_m2=geodesic_area_m2(cleaned.geometry),
        )
    changes.pop("crs", None)
    what = ", ".join(sorted(set(changes) | ({"geometry"} if geom_fields else set())))
    analyst = changes.pop("analyst", None)
    if "claim_id" in changes:
        changes["claim_id"] = int(changes["claim_id"])
    with db.write() as tx:
        if "claim_id" in changes:  # read under the lock: the claim may move or go meanwhile
            claim = require_row(tx.conn, db.path, "claim", changes["claim_id"])
            changes["report_id"] = claim["report_id"]
        old = current(tx, full)
        check_revision(tx, old, expected_revision)
        new = old.replace(
            **changes,
            **geom_fields,
            updated=gpkg_now(),
            revision=next_revision(tx, full),
            analyst=analyst or db.analyst or old.analyst,
        )
        if "label" in changes:
            check_label(tx, new.label)
        change = tx.new_change("update", f"update {what} of {full}")
        put(tx, new, insert=False)
        write_revision(tx, new, change, "update", deleted=False)
        touch_annotations(tx)
    return new


def delete_annotation(
    db: Database, annotation_id: str, *, expected_revision: int | None = None
) -> Revision:
    full = resolve(db, annotation_id)
    with db.write() as tx:
        old = current(tx, full)
        check_revision(tx, old, expected_revision)
        change = tx.new_change("delete", f"delete {full}")
        rev = tombstone(tx, old, change, "delete")
        touch_annotations(tx)
    return rev


# ------------------------------------------------------------------- import
class ImportResult(list[Annotation]):
    """The annotations an import added (a list), and what it noticed on the way.

    Attributes
    ----------
    skipped : int
        Features already in the store (same annotation id, or same geometry and provenance
        in the claim) that were not imported again.
    far_from_claim : int
        Added polygons that lie far outside the claim's box (more than the box's own size
        away): often a wrong claim or a wrong CRS.
    """

    def __init__(self, added: Iterable[Annotation], *, skipped: int, far_from_claim: int):
        super().__init__(added)
        self.skipped = skipped
        self.far_from_claim = far_from_claim


def import_geojson(
    db: Database,
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    report_id: int,
    claim_id: int,
    label: str | None,
    allow_duplicates: bool = False,
) -> ImportResult:
    """See :meth:`Store.import_geojson`."""
    from satdelta.annotations.geojson import plan_import

    claim = get_claim(db, claim_id)
    if claim.report_id != int(report_id):
        raise AnnotationValueError(
            f"claim {claim_id} belongs to report {claim.report_id}, not report {report_id}; "
            "check the ids with `satdelta claim list`"
        )
    items, name = plan_import(source, claim_id=claim.id, label=label, labels=labels(db))
    planned = len(items)
    if not allow_duplicates:
        items = _new_items(db, items, claim.id)
    existing = {r[0] for r in db.read("SELECT DISTINCT annotation_uuid FROM annotation_revisions")}
    for item in items:
        if item.get("id") in existing:
            item["provenance"] = {**item.get("provenance", {}), "imported_from_id": item["id"]}
            item["id"] = None
    added = add_annotations(
        db,
        items,
        action="import",
        description=f"import {len(items)} polygons from {name}",
        supersede=(),
    )
    far = _far_from_box([a.geometry for a in added], claim.bbox)
    return ImportResult(added, skipped=planned - len(items), far_from_claim=far)


def _new_items(db: Database, items: list[dict[str, Any]], claim_id: int) -> list[dict[str, Any]]:
    """``items`` less those already in the store: a current annotation with the item's id,
    or one of the claim with the same geometry (to 1e-9 degree) and provenance."""
    from satdelta.annotations.reads import list_annotations

    ids = {r[0] for r in db.read("SELECT uuid FROM annotations")}
    in_claim: dict[str, list[Any]] = {}
    for a in list_annotations(db, bbox=None, claim_id=claim_id):
        in_claim.setdefault(_provenance_key(a.provenance), []).append(a.geometry)
    fresh = []
    for item in items:
        if item.get("id") in ids:
            continue
        same = in_claim.get(_provenance_key(item.get("provenance")), [])
        geom = shapely.set_precision(item["geometry"], 1e-9)
        if any(shapely.equals(geom, shapely.set_precision(g, 1e-9)) for g in same):
            continue
        fresh.append(item)
    return fresh


def _provenance_key(provenance: Mapping[str, Any] | None) -> str:
    return json.dumps(provenance or {}, sort_keys=True, default=str)


def _far_from_box(geometries: list[Any], bbox: tuple[float, float, float, float] | None) -> int:
    """How many ``geometries`` (WGS84) lie more than the box's own size away from ``bbox``."""
    if bbox is None or not geometries:
        return 0
    west, south, east, north = bbox
    margin = max(east - west, north - south, 1e-3)
    grown = shapely.box(west - margin, south - margin, east + margin, north + margin)
    return int(np.count_nonzero(~shapely.intersects(np.asarray(geometries, dtype=object), grown)))
