"""The annotation store: one GeoPackage file that loses nothing.

Public API (what the napari plugin, the batch job and the CLI call)::

    from satdelta.annotations import Store

    with Store.open("project.gpkg", analyst="jane") as store:   # created if missing
        report = store.add_report(title="Putin may visit Pyongyang", outlet="NK News",
                                  url="https://...", published="2024-06-14")
        claim = store.add_claim(report_id=report.id, text="Civil aircraft cleared from Sunan",
                                place="Sunan airport", bbox=(125.65, 39.19, 125.69, 39.23))
        ann = store.add_annotation(polygon_utm, crs="EPSG:32651", claim_id=claim.id,
                                   label="aircraft", verdict="supports", confidence=0.8)
        store.update_annotation(ann.id, status="accepted")
        store.delete_annotation(ann.id)           # a tombstone revision
        store.history(ann.id)                     # [Revision(1, add), (2, update), (3, delete)]
        store.restore(ann.id, 2)                  # brings revision 2 back as revision 4
        store.undo()                              # reverses the restore (revision 5)
        store.update_claim(claim.id, text="Civil aircraft gone from Sunan")  # undoable too
        store.delete_claim(claim.id, force=True)  # + its annotations, as ONE change
        store.undo()                              # claim and annotations back, same ids
        store.add_annotations(new_candidates, supersede=[c.id for c in old_candidates])
        store.import_geojson("out/changes.geojson", report_id=report.id, claim_id=claim.id)
        store.list_annotations(claim_id=claim.id, status="candidate")
        store.list_annotations(bbox=(125.66, 39.22, 125.68, 39.23))  # R-tree lookup
        store.export("evidence.geojson", report_id=report.id)   # or .gpkg / .csv

Storage
-------
An OGC GeoPackage 1.2 (see :mod:`satdelta.annotations.gpkg`): the feature table
``annotations`` (MULTIPOLYGON, EPSG:4326, the current state of every
annotation that is not deleted; ``source_crs`` records the CRS it was drawn
in; R-tree spatial index ``rtree_annotations_geom``) and attribute tables
``reports``, ``claims``, ``labels``, ``changes``,
``annotation_revisions`` (every state of every annotation as a JSON snapshot,
including tombstones) and ``record_revisions`` (each edit or deletion of a
report or claim, the row before and after).  ``update``, ``delete``,
``restore`` and ``undo`` all *append* revisions; nothing is ever overwritten in
the history.  Reports and claims are edited in place (their tables show the
current state) and logged, so :meth:`Store.undo` puts the old row back under
the same id.  A claim or report that current annotations point at is only
deleted with ``force=True``, which tombstones those annotations in the same
change: deleting never loses evidence, and one undo brings all of it back.

Durability and concurrency
--------------------------
* Journal mode WAL, so readers never block the writer and a killed process
  leaves the last committed transaction intact (SQLite rolls back the
  uncommitted tail of the WAL on the next open).
* ``synchronous=FULL``: each commit is fsync'ed before the call returns, so a
  commit also survives power loss, not just a killed process (``NORMAL`` in WAL
  mode only protects against process death).  The cost is one fsync per
  commit, negligible for an analyst's edits; bulk writes
  (:meth:`Store.add_annotations`, imports) are one transaction.
* Every write is ``BEGIN IMMEDIATE`` (the write lock is taken up front, so no
  transaction fails half-way with SQLITE_BUSY), retried on SQLITE_BUSY every
  1-10 ms (growing, with jitter) for up to ``timeout`` seconds; only then does
  :class:`StoreBusyError` reach the caller.  SQLite's own busy handler is off:
  its sleeps grow to 100 ms, so a process waiting behind a busy writer kept
  missing the short gaps between that writer's commits (seen in the
  two-writer test).
* Opening an existing file first inspects it read-only (SQLite header,
  ``PRAGMA quick_check``, GeoPackage application_id, ``satdelta_meta``): a file
  that is not a satdelta store, is corrupt, or comes from a newer schema is
  refused and left byte-for-byte untouched.  An older schema is migrated in one
  transaction.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sqlite3
import struct
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from satdelta.annotations.errors import (
    AnnotationValueError,
    GeometryError,
    NotAStoreError,
    NotFoundError,
    StoreBusyError,
    StoreError,
)
from satdelta.annotations.geometry import (
    CleanGeometry,
    clean_polygon,
    clean_polygons,
    geodesic_area_m2,
    geodesic_areas_perimeters_m,
)
from satdelta.annotations.gpkg import (
    encode_multipolygons,
    gpkg_now,
    register_functions,
    touch_contents,
)
from satdelta.annotations.model import (
    Annotation,
    Change,
    Claim,
    Origin,
    Revision,
    Status,
    Verdict,
    _geojson_many,
)
from satdelta.annotations.opening import inspect_existing
from satdelta.annotations.records import (
    read_row,
    revisions_of_change,
)
from satdelta.annotations.reports import ReportsAndClaims, count
from satdelta.annotations.rows import (
    ANN_COLUMNS,
    annotation_values,
    check_uuid,
    keep_measured_area,
    row_to_annotation,
    rows_to_annotations,
)
from satdelta.annotations.schema import SCHEMA_VERSION, create_schema, migrate

__all__ = ["Store"]

log = logging.getLogger(__name__)

_UPDATABLE = (
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


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class Store(ReportsAndClaims):
    """A satdelta annotation store (GeoPackage file).  Use :meth:`Store.open`.

    Reports and claims: the methods of :class:`~satdelta.annotations.reports.ReportsAndClaims`.
    """

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, analyst: str | None, timeout: float
    ):
        self._conn = conn
        self.path = path
        self.analyst = analyst
        self.timeout = timeout
        self._lock = threading.RLock()
        self._closed = False
        self._pending_bounds: list[tuple[float, float, float, float]] = []

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        analyst: str | None = None,
        timeout: float = 60.0,
    ) -> Store:
        """Open a store, creating it when missing (and ``create`` is True).

        Parameters
        ----------
        path : path-like
            The GeoPackage file (``.gpkg``).
        create : bool
            Create a new store when ``path`` does not exist.
        analyst : str, optional
            Name written in the ``analyst`` field of new revisions (default: $USER).
        timeout : float
            Seconds to keep retrying when other processes hold the write lock.

        Raises
        ------
        NotAStoreError
            The file exists but is not a satdelta store (it is not modified).
        StoreCorruptError
            The file is damaged (it is not modified).
        StoreVersionError
            The file comes from a newer satdelta.
        StoreError
            The file cannot be created or opened.
        """
        path = Path(path)
        analyst = analyst if analyst is not None else os.environ.get("USER") or None
        exists = path.exists() and path.stat().st_size > 0 if path.exists() else False
        if path.is_dir():
            raise NotAStoreError(
                f"expected a GeoPackage file for the store, got a directory {path}; "
                "give a file name"
            )
        if not exists:
            if not create:
                raise StoreError(
                    f"no store at {path}; create one by writing to it (e.g. `report add`)"
                )
            if not path.parent.exists():
                raise StoreError(
                    f"cannot create the store {path}: folder {path.parent} does not exist; "
                    "create it first"
                )
        else:
            inspect_existing(path)
        try:
            # No SQLite busy handler (timeout=0): its sleeps grow to 100 ms, so a waiting
            # process keeps missing the short gaps between another writer's commits and
            # starves.  _retry polls every 1-10 ms with jitter instead.
            conn = sqlite3.connect(
                str(path), timeout=0.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the store {path}: {exc}; check the path and permissions"
            ) from None
        store = cls(conn, path, analyst=analyst, timeout=timeout)
        try:
            store._setup()
        except BaseException:
            conn.close()
            raise
        return store

    def _setup(self) -> None:
        conn = self._conn
        register_functions(conn)  # ST_* used by the GeoPackage R-tree triggers
        conn.execute("PRAGMA foreign_keys = ON")
        self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        conn.execute("PRAGMA synchronous = FULL")
        version = self._schema_version()
        if version == SCHEMA_VERSION:
            return
        with self._write() as c:
            version = self._schema_version()  # another process may have done it meanwhile
            if version is None:
                if c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise NotAStoreError(
                        f"{self.path} is an SQLite database but not a satdelta store; choose "
                        "another file name"
                    )
                create_schema(c)
                log.info("created store %s", self.path)
            elif version < SCHEMA_VERSION:
                migrate(c, version)
        # Header fields (application_id, user_version) live on page 1; copy the WAL into
        # the main file now so that tools reading the raw header (GDAL's validator, `file`)
        # see a GeoPackage even while this connection stays open.
        self._retry(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    def _schema_version(self) -> int | None:
        try:
            row = self._conn.execute(
                "SELECT value FROM satdelta_meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    @property
    def schema_version(self) -> int:
        """Schema version of the open store (always current after :meth:`open`)."""
        return self._schema_version() or 0

    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        if not self._closed:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ------------------------------------------------------------ transactions
    def _retry(self, fn: Any) -> Any:
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StoreError(f"store {self.path}: {exc}") from None
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        f"store {self.path} stayed locked by another process for more than "
                        f"{self.timeout:g} s; close the other program or retry later"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.5, 0.01)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path} is closed; open it again with Store.open")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._check_open()
        with self._lock:
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            self._pending_bounds.clear()
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._retry(lambda: self._conn.execute("COMMIT"))
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """A consistent view for several reads: inside, every read sees one state of the file.

        One read transaction (WAL keeps its snapshot stable while other processes write), so
        an export or a listing never mixes states with a concurrent edit or delete. Other
        threads using this store object wait until the block ends; write from outside the
        block (a write inside it would try to start a second transaction). Nested use is a
        no-op.
        """
        self._check_open()
        with self._lock:
            if self._conn.in_transaction:
                yield self
                return
            self._conn.execute("BEGIN")  # deferred: the snapshot is taken by the first read
            try:
                yield self
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        self._check_open()
        with self._lock:
            return self._retry(lambda: self._conn.execute(sql, tuple(params)).fetchall())

    # ------------------------------------------------------------------- labels
    def labels(self, *, include_inactive: bool = False) -> tuple[str, ...]:
        """Label names of the store's (editable) schema."""
        sql = "SELECT name FROM labels" + ("" if include_inactive else " WHERE active = 1")
        return tuple(r[0] for r in self._read(sql + " ORDER BY id"))

    def add_label(self, name: str, *, description: str = "") -> None:
        """Add a label to the schema (or re-activate it)."""
        if not isinstance(name, str) or not name.strip():
            raise AnnotationValueError(f"label: expected non-empty text, got {name!r}")
        with self._write() as c:
            c.execute(
                "INSERT INTO labels (name, description, active) VALUES (?, ?, 1) "
                "ON CONFLICT(name) DO UPDATE SET active = 1",
                (name.strip(), description),
            )

    def retire_label(self, name: str) -> None:
        """Stop offering a label for new annotations (existing ones keep it)."""
        with self._write() as c:
            if c.execute("UPDATE labels SET active = 0 WHERE name = ?", (name,)).rowcount == 0:
                raise NotFoundError(f"no label {name!r}; labels are {', '.join(self.labels())}")

    def _check_label(self, c: sqlite3.Connection, label: str) -> None:
        row = c.execute("SELECT active FROM labels WHERE name = ?", (label,)).fetchone()
        if not row or not row[0]:
            names = [
                r[0] for r in c.execute("SELECT name FROM labels WHERE active = 1 ORDER BY id")
            ]
            raise AnnotationValueError(
                f"label: expected one of {', '.join(names)}, got {label!r}; add it to the "
                "schema first (Store.add_label)"
            )

    # -------------------------------------------------------------- annotations
    def add_annotation(
        self,
        geometry: Any,
        *,
        claim_id: int,
        label: str,
        crs: Any = None,
        verdict: Verdict = "inconclusive",
        confidence: float | None = None,
        status: Status = "candidate",
        origin: Origin = "drawn",
        notes: str | None = None,
        analyst: str | None = None,
        provenance: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Annotation:
        """Add one annotation polygon and return it.

        Parameters
        ----------
        geometry : shapely geometry, GeoJSON mapping or WKT
            Polygon or MultiPolygon (holes allowed).  Invalid ones are repaired
            and flagged (``Annotation.repairs``) or refused with
            :class:`GeometryError`; see :func:`clean_polygon`.
        claim_id : int
            The claim this polygon is evidence for (or against).
        label : str
            One of :meth:`labels`.
        crs : optional
            CRS of ``geometry`` (e.g. the scene's); None = WGS84 lon/lat.
        verdict, confidence, status, origin, notes, analyst, provenance
            See :class:`Annotation`.
        id : str, optional
            UUID to use (imports keep the file's id when it is free).
        """
        return self.add_annotations(
            [
                dict(
                    geometry=geometry,
                    claim_id=claim_id,
                    label=label,
                    crs=crs,
                    verdict=verdict,
                    confidence=confidence,
                    status=status,
                    origin=origin,
                    notes=notes,
                    analyst=analyst,
                    provenance=provenance,
                    id=id,
                )
            ],
            action="add",
        )[0]

    def add_annotations(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        action: str = "add",
        description: str = "",
        supersede: Iterable[str] = (),
    ) -> list[Annotation]:
        """Add many annotations in ONE transaction (all or none), as one undoable change.

        Parameters
        ----------
        items : iterable of mapping
            Each holds the keyword arguments of :meth:`add_annotation` plus
            ``geometry``.  Optional ``created``/``updated`` keep times from a file.
        action : str
            Name of the change in the log (``"add"``, ``"import"``, ...).
        description : str
            Text of the change in the log (default: what was added).
        supersede : iterable of str
            Ids (or unique prefixes) of current annotations that the new ones
            replace, e.g. the candidates of an earlier detection run: they are
            deleted (tombstone revisions, action ``"supersede"``) in the same
            transaction and the same change, so one :meth:`undo` brings the
            earlier set back and removes the new one.  Only undecided
            annotations (status ``"candidate"``) can be superseded.  ``items``
            may be empty (a re-run that found nothing).

        Returns
        -------
        list of Annotation
            The added annotations, in item order.

        Raises
        ------
        AnnotationValueError
            A bad item, or a superseded annotation that is accepted or rejected.
        NotFoundError
            A claim or a superseded annotation that does not exist (or is deleted).
        """
        now = gpkg_now()
        prepared: list[Annotation] = []
        claims: dict[int, Claim] = {}
        items = [dict(item) for item in items]
        # Geometry work in array calls (shapely / one pass over the rings for the geodesic
        # areas); a refused geometry's error is raised below in item order, as one by one.
        cleaned_all = clean_polygons(
            [item.pop("geometry") for item in items], crs=[item.pop("crs", None) for item in items]
        )
        good = [c for c in cleaned_all if isinstance(c, CleanGeometry)]
        areas, perimeters = (
            (a.tolist() for a in geodesic_areas_perimeters_m([c.geometry for c in good]))
            if good
            else ([], [])
        )
        measured = iter(zip(areas, perimeters, strict=True))
        for i, (item, cleaned) in enumerate(zip(items, cleaned_all, strict=True)):
            if isinstance(cleaned, GeometryError):
                raise cleaned
            area, perimeter = next(measured)
            claim_id = int(item.pop("claim_id"))
            if claim_id not in claims:
                claims[claim_id] = self.get_claim(claim_id)
            repairs = tuple(item.pop("repairs", ()) or ()) + cleaned.repairs
            ann_id = item.pop("id", None)
            if ann_id:
                check_uuid(ann_id)
            else:
                ann_id = str(uuidlib.uuid4())
            analyst = item.pop("analyst", None) or self.analyst
            provenance = dict(item.pop("provenance", None) or {})
            created = item.pop("created", None) or now
            updated = item.pop("updated", None) or created
            source_crs = item.pop("source_crs", None) or cleaned.source_crs
            area_m2 = keep_measured_area(area, perimeter, item.pop("area_m2", None))
            try:
                ann = Annotation(
                    id=ann_id,
                    geometry=cleaned.geometry,
                    claim_id=claim_id,
                    report_id=claims[claim_id].report_id,
                    analyst=analyst,
                    created=created,
                    updated=updated,
                    revision=1,
                    area_m2=area_m2,
                    source_crs=source_crs,
                    repairs=repairs,
                    provenance=provenance,
                    **item,
                )
            except TypeError as exc:
                raise AnnotationValueError(f"annotation {i}: {exc}") from None
            prepared.append(ann)
        superseded = list(dict.fromkeys(self._resolve_many(supersede)))
        if not prepared and not superseded:
            return []
        if len(prepared) == 1:
            desc = f"add {prepared[0].label} annotation {prepared[0].id}"
        else:
            desc = f"add {len(prepared)} annotations"
        if superseded:
            replaced = count(len(superseded), "candidate")
            desc = f"{desc}, superseding {replaced}" if prepared else f"supersede {replaced}"
        desc = description or desc
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
            json.dumps(a._to_dict(g), ensure_ascii=False, allow_nan=False)
            for a, g in zip(prepared, _geojson_many(geometries), strict=True)
        ]
        cols = list(rows[0]) if rows else []
        with self._write() as c:
            for label in {a.label for a in prepared}:
                self._check_label(c, label)
            self._recheck_claims(c, claims, prepared, rows, snapshots)
            old = self._supersedable(c, superseded)
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                taken = c.execute(
                    "SELECT annotation_uuid FROM annotation_revisions WHERE annotation_uuid IN "
                    f"({', '.join('?' * len(part))}) LIMIT 1",
                    part,
                ).fetchone()
                if taken:
                    raise AnnotationValueError(
                        f"annotation id {taken[0]} is already in the store; "
                        "leave id unset for a new one"
                    )
            change = self._new_change(c, action, desc)
            if old:
                self._tombstone_many(c, old, change, "supersede")
            if rows:
                c.executemany(
                    f"INSERT INTO annotations ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))})",
                    [tuple(r.values()) for r in rows],
                )
            c.executemany(
                "INSERT INTO annotation_revisions (annotation_uuid, revision, action, deleted, "
                "created, analyst, snapshot, change_id) VALUES (?, ?, ?, 0, ?, ?, ?, ?)",
                [
                    (a.id, a.revision, action, a.updated, self.analyst, snap, change)
                    for a, snap in zip(prepared, snapshots, strict=True)
                ],
            )
            self._pending_bounds.extend(struct.unpack_from("<4d", r["geom"], 8) for r in rows)
            self._touch_annotations(c)
        return prepared

    def _recheck_claims(
        self,
        c: sqlite3.Connection,
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
            now = c.execute("SELECT report_id FROM claims WHERE id = ?", (claim_id,)).fetchone()
            if now is None:
                raise NotFoundError(
                    f"claim {claim_id} was deleted while the annotations were prepared; "
                    "`satdelta claim list` shows the claims left"
                )
            if now[0] != claim.report_id:
                moved[claim_id] = now[0]
        if not moved:
            return
        for i, ann in enumerate(prepared):
            if ann.claim_id in moved:
                prepared[i] = ann.replace(report_id=moved[ann.claim_id])
                rows[i]["report_id"] = moved[ann.claim_id]
                snap = json.loads(snapshots[i])
                snap["report_id"] = moved[ann.claim_id]
                snapshots[i] = json.dumps(snap, ensure_ascii=False, allow_nan=False)

    def _resolve_many(self, annotation_ids: Iterable[str]) -> list[str]:
        """Full ids of many annotations (full UUIDs without a look-up each; prefixes resolved)."""
        out = []
        for ann_id in annotation_ids:
            text = str(ann_id).strip().lower()
            if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text):
                out.append(text)
            else:
                out.append(self._resolve(text))
        return out

    def _supersedable(self, c: sqlite3.Connection, uids: list[str]) -> list[Annotation]:
        """Current states of the annotations to supersede, or a one-line error why not."""
        found: dict[str, Annotation] = {}
        for start in range(0, len(uids), 500):
            part = uids[start : start + 500]
            rows = c.execute(
                f"SELECT {ANN_COLUMNS} FROM annotations WHERE uuid IN "
                f"({', '.join('?' * len(part))})",
                part,
            ).fetchall()
            found.update((a.id, a) for a in rows_to_annotations(rows) if rows)
        missing = [u for u in uids if u not in found]
        if missing:
            known = c.execute(
                "SELECT 1 FROM annotation_revisions WHERE annotation_uuid = ? LIMIT 1",
                (missing[0],),
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

    def _tombstone_many(
        self, c: sqlite3.Connection, anns: list[Annotation], change: int, action: str
    ) -> None:
        """:meth:`_tombstone` of many annotations with a few statements per 500."""
        now = gpkg_now()
        geojson = _geojson_many([a.geometry for a in anns])
        for start in range(0, len(anns), 500):
            part = anns[start : start + 500]
            marks = ", ".join("?" * len(part))
            uids = [a.id for a in part]
            last = dict(
                c.execute(
                    "SELECT annotation_uuid, max(revision) FROM annotation_revisions WHERE "
                    f"annotation_uuid IN ({marks}) GROUP BY annotation_uuid",
                    uids,
                ).fetchall()
            )
            revisions = []
            for a, g in zip(part, geojson[start : start + 500], strict=True):
                snap = a._to_dict(g)
                snap.update(revision=last[a.id] + 1, updated=now)
                revisions.append(
                    (
                        a.id,
                        snap["revision"],
                        action,
                        now,
                        self.analyst,
                        json.dumps(snap, ensure_ascii=False, allow_nan=False),
                        change,
                    )
                )
            c.execute(f"DELETE FROM annotations WHERE uuid IN ({marks})", uids)
            c.executemany(
                "INSERT INTO annotation_revisions (annotation_uuid, revision, action, deleted, "
                "created, analyst, snapshot, change_id) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                revisions,
            )

    def get_annotation(self, annotation_id: str, *, include_deleted: bool = False) -> Annotation:
        """Current state of an annotation (a unique id prefix of ≥ 4 characters is accepted).

        With ``include_deleted`` a deleted annotation's last state is returned.
        """
        full = self._resolve(annotation_id)
        rows = self._read(f"SELECT {ANN_COLUMNS} FROM annotations WHERE uuid = ?", (full,))
        if rows:
            return row_to_annotation(rows[0])
        if include_deleted:
            return self.history(full)[-1].annotation
        raise NotFoundError(
            f"annotation {full} is deleted; `satdelta annotation history {full}` lists its "
            "revisions and `restore` brings one back"
        )

    def list_annotations(
        self,
        *,
        report_id: int | None = None,
        claim_id: int | None = None,
        status: Status | None = None,
        label: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> list[Annotation]:
        """Current (non-deleted) annotations matching every given filter, oldest first.

        Parameters
        ----------
        report_id, claim_id, status, label : optional
            Keep annotations with this value.
        bbox : (west, south, east, north), optional
            WGS84 box; keeps annotations whose bounding box intersects it (looked
            up in the GeoPackage R-tree index, so a map view of a big store is fast).
        """
        where, params = [], []
        for col, val in (
            ("report_id", report_id),
            ("claim_id", claim_id),
            ("status", status),
            ("label", label),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        if bbox is not None:
            west, south, east, north = (float(v) for v in bbox)
            if not (west <= east and south <= north):
                raise AnnotationValueError(
                    f"bbox: expected (west, south, east, north) with west <= east and "
                    f"south <= north, got {tuple(bbox)}"
                )
            where.append(
                "fid IN (SELECT id FROM rtree_annotations_geom WHERE minx <= ? AND maxx >= ? "
                "AND miny <= ? AND maxy >= ?)"
            )
            params += [east, west, north, south]
        sql = f"SELECT {ANN_COLUMNS} FROM annotations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return rows_to_annotations(self._read(sql + " ORDER BY fid", params))

    def update_annotation(self, annotation_id: str, **changes: Any) -> Annotation:
        """Change fields of an annotation (a new revision); returns the new state.

        Allowed: ``label, verdict, confidence, status, notes, analyst, claim_id,
        provenance, origin`` and ``geometry`` (with optional ``crs``).
        """
        unknown = set(changes) - set(_UPDATABLE) - {"geometry", "crs"}
        if unknown:
            raise AnnotationValueError(
                f"cannot update {', '.join(sorted(unknown))}; allowed fields are "
                f"{', '.join(_UPDATABLE)}, geometry"
            )
        full = self._resolve(annotation_id)
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
        with self._write() as c:
            if "claim_id" in changes:  # read under the lock: the claim may move or go meanwhile
                changes["report_id"] = self._record(c, "claim", changes["claim_id"])["report_id"]
            current = self._current(c, full)
            new = current.replace(
                **changes,
                **geom_fields,
                updated=gpkg_now(),
                revision=self._next_revision(c, full),
                analyst=analyst or self.analyst or current.analyst,
            )
            if "label" in changes:
                self._check_label(c, new.label)
            change = self._new_change(c, "update", f"update {what} of {full}")
            self._put(c, new, insert=False)
            self._revision(c, new, change, "update", deleted=False)
            self._touch_annotations(c)
        return new

    def delete_annotation(self, annotation_id: str) -> Revision:
        """Delete an annotation: removes it from the layer and writes a tombstone revision."""
        full = self._resolve(annotation_id)
        with self._write() as c:
            current = self._current(c, full)
            change = self._new_change(c, "delete", f"delete {full}")
            rev = self._tombstone(c, current, change, "delete")
            self._touch_annotations(c)
        return rev

    def history(self, annotation_id: str) -> list[Revision]:
        """Every revision of an annotation, oldest first (tombstones included)."""
        full = self._resolve(annotation_id)
        rows = self._read(
            "SELECT annotation_uuid, revision, action, deleted, created, analyst, change_id, "
            "snapshot FROM annotation_revisions WHERE annotation_uuid = ? ORDER BY revision",
            (full,),
        )
        return [
            Revision(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], json.loads(r[7])) for r in rows
        ]

    def restore(self, annotation_id: str, revision: int) -> Annotation | None:
        """Make revision ``revision`` the current state again (as a NEW revision).

        Restoring a tombstone deletes the annotation again; returns the new
        state, or None when the restored state is "deleted".
        """
        full = self._resolve(annotation_id)
        with self._write() as c:
            row = c.execute(
                "SELECT deleted, snapshot FROM annotation_revisions WHERE annotation_uuid = ? "
                "AND revision = ?",
                (full, int(revision)),
            ).fetchone()
            if row is None:
                last = c.execute(
                    "SELECT max(revision) FROM annotation_revisions WHERE annotation_uuid = ?",
                    (full,),
                ).fetchone()[0]
                raise NotFoundError(
                    f"annotation {full} has no revision {revision}; it has revisions 1..{last}"
                )
            change = self._new_change(c, "restore", f"restore {full} to revision {revision}")
            result = self._apply_state(c, full, bool(row[0]), json.loads(row[1]), change, "restore")
            self._touch_annotations(c)
        return result

    def undo(self) -> Change:
        """Reverse the latest change not yet undone (undo itself is not undone; use restore).

        Covers annotation changes and edits/deletions of reports and claims:
        their rows come back exactly as they were, under the same ids, before
        the annotations of the change are reverted.  The reversal writes new
        revisions, so it can itself be inspected in :meth:`history` and
        reverted with :meth:`restore`.

        Raises
        ------
        NotFoundError
            When there is nothing left to undo.
        StoreError
            When the reversal would break a reference (e.g. a claim of a report
            that is gone); nothing is changed then.
        """
        with self._write() as c:
            row = c.execute(
                "SELECT id, action, description FROM changes AS ch WHERE action != 'undo' AND NOT "
                "EXISTS (SELECT 1 FROM changes AS u WHERE u.undoes = ch.id) "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise NotFoundError(f"nothing to undo in {self.path}: no change is left")
            target, action, description = row
            change = self._new_change(c, "undo", f"undo #{target}: {description}", undoes=target)
            try:
                ids, records = self._revert(c, target, change)
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"cannot undo #{target} ({description}): {exc} in {self.path}; a later change "
                    "removed what it refers to, so restore that first"
                ) from None
            created = self._created(c, change)
        return Change(
            change,
            "undo",
            f"undo #{target}: {description}",
            created,
            self.analyst,
            target,
            tuple(ids),
            tuple(records),
        )

    def _revert(
        self, c: sqlite3.Connection, target: int, change: int
    ) -> tuple[list[str], list[str]]:
        """Write change ``change`` that puts back the state from before change ``target``.

        Report/claim rows that existed before are put back first (a restored
        annotation needs its claim), then the annotations, then rows the
        target created are removed.
        """
        records = revisions_of_change(c, target)  # newest first: a report before its claims
        for rec in records:
            if rec.before is not None:
                now = read_row(c, rec.kind, rec.record_id)
                self._write_record(c, change, rec.kind, rec.record_id, "undo", now, rec.before)
        touched = c.execute(
            "SELECT annotation_uuid, revision FROM annotation_revisions WHERE change_id = ? "
            "ORDER BY id DESC",
            (target,),
        ).fetchall()
        ids = []
        for uid, rev in touched:
            prev = c.execute(
                "SELECT deleted, snapshot FROM annotation_revisions WHERE annotation_uuid = ? "
                "AND revision < ? ORDER BY revision DESC LIMIT 1",
                (uid, rev),
            ).fetchone()
            if prev is None:  # the change created it: undo = delete
                current = self._current(c, uid, missing_ok=True)
                if current is not None:
                    self._tombstone(c, current, change, "undo")
            else:
                self._apply_state(c, uid, bool(prev[0]), json.loads(prev[1]), change, "undo")
            ids.append(uid)
        self._touch_annotations(c)
        for rec in records:
            if rec.before is None:
                now = read_row(c, rec.kind, rec.record_id)
                self._write_record(c, change, rec.kind, rec.record_id, "undo", now, None)
        return ids, [f"{r.kind} {r.record_id}" for r in records]

    def changes(self) -> list[Change]:
        """The change log, oldest first."""
        rows = self._read(
            "SELECT id, action, description, created, analyst, undoes FROM changes ORDER BY id"
        )
        return [Change(*r) for r in rows]

    # ------------------------------------------------------- import and export
    def import_geojson(
        self,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        report_id: int,
        claim_id: int,
        label: str | None = None,
    ) -> list[Annotation]:
        """Import a GeoJSON file or mapping whole (one transaction) or not at all.

        Recognised: a ``satdelta detect`` ``changes.geojson`` (candidates with
        the run's provenance), a satdelta annotation export (fields and ids kept),
        and any RFC 7946 Polygon/MultiPolygon FeatureCollection, Feature or
        geometry (origin "imported", the original properties kept in provenance).
        ``label`` overrides the label of every imported polygon.
        """
        from satdelta.annotations.geojson import plan_import

        claim = self.get_claim(claim_id)
        if claim.report_id != int(report_id):
            raise AnnotationValueError(
                f"claim {claim_id} belongs to report {claim.report_id}, not report {report_id}; "
                "check the ids with `satdelta claim list`"
            )
        items, name = plan_import(source, claim_id=claim.id, label=label, labels=self.labels())
        existing = {
            r[0] for r in self._read("SELECT DISTINCT annotation_uuid FROM annotation_revisions")
        }
        for item in items:
            if item.get("id") in existing:
                item["provenance"] = {**item.get("provenance", {}), "imported_from_id": item["id"]}
                item["id"] = None
        return self.add_annotations(
            items, action="import", description=f"import {len(items)} polygons from {name}"
        )

    def to_feature_collection(self, **filters: Any) -> dict[str, Any]:
        """The (filtered) annotations as an RFC 7946 FeatureCollection mapping."""
        from satdelta.annotations.geojson import to_feature_collection

        with self.snapshot():  # the three reads see one state, whatever other writers do
            anns = self.list_annotations(**filters)
            reports = {r.id: r for r in self.list_reports()}
            claims = {c.id: c for c in self.list_claims()}
        return to_feature_collection(anns, reports, claims, filters=filters)

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: Literal["auto", "geojson", "gpkg", "csv"] = "auto",
        report_id: int | None = None,
        claim_id: int | None = None,
        status: str | None = None,
        label: str | None = None,
    ) -> int:
        """Write the (filtered) annotations to GeoJSON, a GeoPackage layer or CSV+WKT.

        ``format="auto"`` picks from the suffix (.geojson/.json, .gpkg, .csv).
        The file is written beside the target and moved into place, so a failed
        export never leaves half a file.  Returns the number of features.
        """
        from satdelta.annotations.export import export_collection

        target = Path(path)
        if target.exists() and target.resolve() == self.path.resolve():
            raise AnnotationValueError(
                f"export target {target} is the store itself; choose another file name"
            )
        fc = self.to_feature_collection(
            report_id=report_id, claim_id=claim_id, status=status, label=label
        )
        return export_collection(fc, target, format=format)

    # ----------------------------------------------------------------- helpers
    def _resolve(self, annotation_id: str) -> str:
        text = str(annotation_id).strip().lower()
        if not re.fullmatch(r"[0-9a-f-]{4,36}", text):
            raise NotFoundError(
                f"expected an annotation id (UUID or a unique prefix of at least 4 characters), "
                f"got {annotation_id!r}"
            )
        rows = self._read(
            "SELECT DISTINCT annotation_uuid FROM annotation_revisions WHERE annotation_uuid "
            "LIKE ? LIMIT 2",
            (text + "%",),
        )
        if not rows:
            raise NotFoundError(
                f"no annotation {annotation_id} in {self.path}; "
                "`satdelta annotation list` shows the ids"
            )
        if len(rows) > 1:
            raise NotFoundError(
                f"annotation id prefix {annotation_id!r} is ambiguous "
                f"({rows[0][0]}, {rows[1][0]}, ...); "
                "give more characters"
            )
        return rows[0][0]

    def _current(self, c: sqlite3.Connection, uid: str, *, missing_ok: bool = False) -> Any:
        row = c.execute(f"SELECT {ANN_COLUMNS} FROM annotations WHERE uuid = ?", (uid,)).fetchone()
        if row is None:
            if missing_ok:
                return None
            raise NotFoundError(
                f"annotation {uid} is deleted; `satdelta annotation history {uid}` lists its "
                "revisions and `restore` brings one back"
            )
        return row_to_annotation(row)

    def _next_revision(self, c: sqlite3.Connection, uid: str) -> int:
        return c.execute(
            "SELECT coalesce(max(revision), 0) + 1 FROM annotation_revisions "
            "WHERE annotation_uuid = ?",
            (uid,),
        ).fetchone()[0]

    def _new_change(
        self, c: sqlite3.Connection, action: str, description: str, *, undoes: int | None = None
    ) -> int:
        return c.execute(
            "INSERT INTO changes (action, description, created, analyst, undoes) "
            "VALUES (?, ?, ?, ?, ?)",
            (action, description, gpkg_now(), self.analyst, undoes),
        ).lastrowid

    def _put(self, c: sqlite3.Connection, ann: Annotation, *, insert: bool) -> None:
        values = annotation_values(ann)
        self._pending_bounds.append(struct.unpack_from("<4d", values["geom"], 8))
        if not insert:
            c.execute("DELETE FROM annotations WHERE uuid = ?", (ann.id,))
        cols = list(values)
        c.execute(
            f"INSERT INTO annotations ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            tuple(values.values()),
        )

    def _revision(
        self, c: sqlite3.Connection, ann: Annotation, change: int, action: str, *, deleted: bool
    ) -> Revision:
        snap = ann.to_dict()
        c.execute(
            "INSERT INTO annotation_revisions (annotation_uuid, revision, action, deleted, created,"
            " analyst, snapshot, change_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ann.id,
                ann.revision,
                action,
                int(deleted),
                ann.updated,
                self.analyst,
                json.dumps(snap, ensure_ascii=False, allow_nan=False),
                change,
            ),
        )
        return Revision(
            ann.id, ann.revision, action, deleted, ann.updated, self.analyst, change, snap
        )

    def _tombstone(
        self, c: sqlite3.Connection, current: Annotation, change: int, action: str
    ) -> Revision:
        last = current.replace(revision=self._next_revision(c, current.id), updated=gpkg_now())
        c.execute("DELETE FROM annotations WHERE uuid = ?", (current.id,))
        return self._revision(c, last, change, action, deleted=True)

    def _apply_state(
        self,
        c: sqlite3.Connection,
        uid: str,
        deleted: bool,
        snapshot: dict[str, Any],
        change: int,
        action: str,
    ) -> Annotation | None:
        current = self._current(c, uid, missing_ok=True)
        if deleted:
            if current is not None:
                self._tombstone(c, current, change, action)
            return None
        state = Annotation.from_dict(snapshot)
        claim = c.execute("SELECT report_id FROM claims WHERE id = ?", (state.claim_id,)).fetchone()
        if claim is None:
            raise NotFoundError(
                f"annotation {uid} is evidence for claim {state.claim_id}, which is deleted; "
                "bring the claim back first (`satdelta undo` of its deletion)"
            )
        # the claim says which report the annotation belongs to (it may have moved since)
        state = state.replace(
            report_id=claim[0], revision=self._next_revision(c, uid), updated=gpkg_now()
        )
        self._put(c, state, insert=current is None)
        self._revision(c, state, change, action, deleted=False)
        return state

    def _touch_annotations(self, c: sqlite3.Connection) -> None:
        """Update last_change and grow the layer's extent in gpkg_contents.

        The extent only grows (a deletion does not shrink it): recomputing it
        would read every geometry on every write.  Extents in gpkg_contents are
        informative, and GDAL/QGIS recompute them on demand.
        """
        row = c.execute(
            "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'annotations'"
        ).fetchone()
        bounds = list(row) if row and row[0] is not None else None
        for x0, x1, y0, y1 in self._pending_bounds:
            if bounds is None:
                bounds = [x0, y0, x1, y1]
            else:
                bounds = [
                    min(bounds[0], x0),
                    min(bounds[1], y0),
                    max(bounds[2], x1),
                    max(bounds[3], y1),
                ]
        self._pending_bounds.clear()
        touch_contents(c, "annotations", bounds)
        touch_contents(c, "annotation_revisions")
