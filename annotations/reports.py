"""Reports and claims of the annotation store: add, read, edit, delete (mixed into ``Store``).

:class:`ReportsAndClaims` holds the report and claim methods of
:class:`~satdelta.annotations.store.Store` (one class, two modules: this one
and ``store.py``, which holds opening, transactions and annotations).

Edits and deletions are changes of the ``changes`` log, like annotation
changes: the row before and after goes to ``record_revisions``
(:mod:`satdelta.annotations.records`), so :meth:`Store.undo` restores it
exactly.  Additions are not logged (``undo`` does not remove a report or claim
just added; ``delete_report`` / ``delete_claim`` do, undoably).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satdelta.annotations.errors import AnnotationValueError, InUseError, NotFoundError
from satdelta.annotations.gpkg import gpkg_now, touch_contents
from satdelta.annotations.model import Annotation, Change, Claim, Report, Revision
from satdelta.annotations.records import (
    CLAIM_FIELDS,
    REPORT_FIELDS,
    Kind,
    claim_from_row,
    claim_row,
    log_revision,
    read_row,
    report_from_row,
    report_row,
    write_row,
)
from satdelta.annotations.rows import ANN_COLUMNS, iso, rows_to_annotations

__all__ = ["ReportsAndClaims"]

log = logging.getLogger(__name__)

#: claims columns that store one field of :class:`Claim` (point, bbox) -> that field
_CLAIM_FIELD = dict.fromkeys(("lon", "lat"), "point") | dict.fromkeys(
    ("west", "south", "east", "north"), "bbox"
)


def count(n: int, noun: str) -> str:
    """``"1 claim"``, ``"2 claims"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


class ReportsAndClaims:
    """Report and claim methods of :class:`~satdelta.annotations.store.Store`."""

    path: Path
    analyst: str | None

    if TYPE_CHECKING:  # provided by Store

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]: ...
        def _new_change(
            self, c: sqlite3.Connection, action: str, description: str, *, undoes: int | None = None
        ) -> int: ...
        def _next_revision(self, c: sqlite3.Connection, uid: str) -> int: ...
        def _revision(
            self, c: sqlite3.Connection, ann: Annotation, change: int, action: str, *, deleted: bool
        ) -> Revision: ...
        def _tombstone(
            self, c: sqlite3.Connection, current: Annotation, change: int, action: str
        ) -> Revision: ...
        def _touch_annotations(self, c: sqlite3.Connection) -> None: ...

    # ------------------------------------------------------------------ reports
    def add_report(
        self,
        *,
        title: str,
        outlet: str | None = None,
        url: str | None = None,
        published: date | str | None = None,
        language: str | None = None,
        notes: str | None = None,
    ) -> Report:
        """Add a news report and return it (with its new integer id)."""
        now = gpkg_now()
        report = Report(0, title, outlet, url, published, language, notes, now)  # validates
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO reports (title, outlet, url, published, language, notes, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, outlet, url, iso(report.published), language, notes, now),
            )
            touch_contents(c, "reports")
        return Report(cur.lastrowid, title, outlet, url, report.published, language, notes, now)

    def get_report(self, report_id: int) -> Report:
        """Return one report; :class:`NotFoundError` if there is none with that id."""
        rows = self._read(
            "SELECT id, title, outlet, url, published, language, notes, created FROM reports "
            "WHERE id = ?",
            (int(report_id),),
        )
        if not rows:
            raise NotFoundError(
                f"no report with id {report_id} in {self.path}; "
                "`satdelta report list` shows the ids"
            )
        return Report(*rows[0])

    def list_reports(self) -> list[Report]:
        """All reports, by id."""
        rows = self._read(
            "SELECT id, title, outlet, url, published, language, notes, created FROM reports "
            "ORDER BY id"
        )
        return [Report(*r) for r in rows]

    # ------------------------------------------------------------------- claims
    def add_claim(
        self,
        *,
        report_id: int,
        text: str,
        place: str | None = None,
        point: tuple[float, float] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        time_start: date | str | None = None,
        time_end: date | str | None = None,
    ) -> Claim:
        """Add a claim to a report; ``point`` = (lon, lat), ``bbox`` = (W, S, E, N) in WGS84."""
        self.get_report(report_id)
        now = gpkg_now()
        claim = Claim(0, int(report_id), text, place, point, bbox, time_start, time_end, now)
        p = claim.point or (None, None)
        b = claim.bbox or (None, None, None, None)
        with self._write() as c:
            # again under the write lock: another process may have deleted the report since
            self._record(c, "report", report_id)
            cur = c.execute(
                "INSERT INTO claims (report_id, text, place, lon, lat, west, south, east, north, "
                "time_start, time_end, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    claim.report_id,
                    text,
                    place,
                    *p,
                    *b,
                    iso(claim.time_start),
                    iso(claim.time_end),
                    now,
                ),
            )
            touch_contents(c, "claims")
        return Claim(
            cur.lastrowid,
            claim.report_id,
            text,
            place,
            claim.point,
            claim.bbox,
            claim.time_start,
            claim.time_end,
            now,
        )

    _CLAIM_SQL = (
        "SELECT id, report_id, text, place, lon, lat, west, south, east, north, time_start, "
        "time_end, created FROM claims"
    )

    @staticmethod
    def _claim(row: tuple[Any, ...]) -> Claim:
        cid, rid, text, place, lon, lat, w, s, e, n, t0, t1, created = row
        point = (lon, lat) if lon is not None and lat is not None else None
        bbox = (w, s, e, n) if w is not None else None
        return Claim(cid, rid, text, place, point, bbox, t0, t1, created)

    def get_claim(self, claim_id: int) -> Claim:
        """Return one claim; :class:`NotFoundError` if there is none with that id."""
        rows = self._read(self._CLAIM_SQL + " WHERE id = ?", (int(claim_id),))
        if not rows:
            raise NotFoundError(
                f"no claim with id {claim_id} in {self.path}; `satdelta claim list` shows the ids"
            )
        return self._claim(rows[0])

    def list_claims(self, report_id: int | None = None) -> list[Claim]:
        """Claims, optionally of one report, by id."""
        if report_id is None:
            rows = self._read(self._CLAIM_SQL + " ORDER BY id")
        else:
            rows = self._read(
                self._CLAIM_SQL + " WHERE report_id = ? ORDER BY id", (int(report_id),)
            )
        return [self._claim(r) for r in rows]

    def load_report(self, data: Mapping[str, Any]) -> tuple[Report, list[Claim]]:
        """Add a report and its claims from ``{"report": {...}, "claims": [{...}, ...]}``.

        Claim entries take ``text``, ``place``, ``point`` ([lon, lat]) or
        ``location`` ({"lon", "lat"} or {"bbox"}), ``bbox`` ([W, S, E, N]) and
        ``time_start``/``time_end`` (or ``time_window`` [start, end]).  The whole
        file is added in one transaction.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("report"), Mapping):
            raise AnnotationValueError(
                'expected a report file {"report": {...}, "claims": [...]}, got '
                f"{type(data).__name__}"
                + (f" with keys {sorted(data)[:5]}" if isinstance(data, Mapping) else "")
            )
        r = data["report"]
        claims_in = data.get("claims") or []
        now = gpkg_now()
        report = Report(
            0,
            r.get("title", ""),
            r.get("outlet"),
            r.get("url"),
            r.get("published"),
            r.get("language"),
            r.get("notes"),
            now,
        )
        parsed: list[Claim] = []
        for i, cl in enumerate(claims_in):
            if not isinstance(cl, Mapping):
                raise AnnotationValueError(f"claim {i}: expected an object, got {cl!r}")
            loc = cl.get("location") or {}
            point = cl.get("point") or (
                (loc["lon"], loc["lat"]) if "lon" in loc and "lat" in loc else None
            )
            bbox = cl.get("bbox") or loc.get("bbox")
            window = cl.get("time_window") or [None, None]
            try:
                parsed.append(
                    Claim(
                        0,
                        0,
                        cl.get("text", ""),
                        cl.get("place"),
                        point,
                        bbox,
                        cl.get("time_start", window[0]),
                        cl.get("time_end", window[1]),
                        now,
                    )
                )
            except AnnotationValueError as exc:
                raise AnnotationValueError(f"claim {i}: {exc}") from None
        with self._write() as c:
            rid = c.execute(
                "INSERT INTO reports (title, outlet, url, published, language, notes, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    report.title,
                    report.outlet,
                    report.url,
                    iso(report.published),
                    report.language,
                    report.notes,
                    now,
                ),
            ).lastrowid
            out = []
            for cl in parsed:
                p = cl.point or (None, None)
                b = cl.bbox or (None, None, None, None)
                cid = c.execute(
                    "INSERT INTO claims (report_id, text, place, lon, lat, west, south, east, "
                    "north, time_start, time_end, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rid, cl.text, cl.place, *p, *b, iso(cl.time_start), iso(cl.time_end), now),
                ).lastrowid
                out.append(
                    Claim(
                        cid,
                        rid,
                        cl.text,
                        cl.place,
                        cl.point,
                        cl.bbox,
                        cl.time_start,
                        cl.time_end,
                        now,
                    )
                )
            touch_contents(c, "reports")
            touch_contents(c, "claims")
        return Report(
            rid,
            report.title,
            report.outlet,
            report.url,
            report.published,
            report.language,
            report.notes,
            now,
        ), out

    # ---------------------------------------------- editing reports and claims
    def update_report(self, report_id: int, **changes: Any) -> Report:
        """Change fields of a report in place (one undoable change); returns the new state.

        Parameters
        ----------
        report_id : int
            The report to edit.
        **changes
            Any of ``title, outlet, url, published, language, notes``; None
            clears an optional field.  Fields equal to the stored value are
            ignored; when nothing differs no change is logged.

        Raises
        ------
        NotFoundError
            No report with that id.
        AnnotationValueError
            An unknown field, an empty title or a malformed date.
        """
        self._check_fields("report", changes, REPORT_FIELDS)
        with self._write() as c:
            before = self._record(c, "report", report_id)
            new = replace(report_from_row(before), **changes)  # validates
            after = report_row(new)
            changed = [k for k in after if after[k] != before[k]]
            if changed:
                change = self._new_change(
                    c, "edit", f"edit {', '.join(changed)} of report {new.id}"
                )
                self._write_record(c, change, "report", new.id, "update", before, after)
        return new

    def update_claim(self, claim_id: int, **changes: Any) -> Claim:
        """Change fields of a claim in place (one undoable change); returns the new state.

        Parameters
        ----------
        claim_id : int
            The claim to edit.
        **changes
            Any of ``text, report_id, place, point, bbox, time_start,
            time_end``; None clears an optional field.  Moving a claim to
            another report (``report_id``) also moves its annotations (each
            gets a new revision with the new ``report_id``, in the same
            change, so exports by report stay consistent and one undo moves
            everything back).

        Raises
        ------
        NotFoundError
            No claim with that id, or no report with the new ``report_id``.
        AnnotationValueError
            An unknown field or a value the claim does not accept.
        """
        self._check_fields("claim", changes, CLAIM_FIELDS)
        if changes.get("report_id") is not None:
            changes["report_id"] = int(changes["report_id"])
        elif "report_id" in changes:
            raise AnnotationValueError(
                "claim report_id: expected the id of a report, got None; every claim belongs to "
                "a report"
            )
        with self._write() as c:
            before = self._record(c, "claim", claim_id)
            new = replace(claim_from_row(before), **changes)  # validates
            after = claim_row(new)
            changed = list(
                dict.fromkeys(_CLAIM_FIELD.get(k, k) for k in after if after[k] != before[k])
            )
            moved: list[str] = []
            if changed:
                desc = f"edit {', '.join(changed)} of claim {new.id}"
                if after["report_id"] != before["report_id"]:
                    self._record(c, "report", new.report_id)
                    others = [k for k in changed if k != "report_id"]
                    desc = (
                        f"move claim {new.id} from report {before['report_id']} to report "
                        f"{new.report_id}" + (f" and edit {', '.join(others)}" if others else "")
                    )
                change = self._new_change(c, "edit", desc)
                self._write_record(c, change, "claim", new.id, "update", before, after)
                if after["report_id"] != before["report_id"]:
                    moved = self._move_annotations(c, new.id, new.report_id, change)
        if moved:
            log.info(
                "claim %d: moved %d annotations to report %d", new.id, len(moved), new.report_id
            )
        return new

    def delete_claim(self, claim_id: int, *, force: bool = False) -> Change:
        """Delete a claim (one undoable change); returns the change.

        A claim that current annotations still point at is refused with
        :class:`InUseError` unless ``force``: then those annotations are
        deleted too (tombstone revisions, as :meth:`delete_annotation`) in the
        same change, so one :meth:`undo` brings the claim and all of them back.
        The claim's row is kept in ``record_revisions``; nothing is lost.
        """
        with self._write() as c:
            before = self._record(c, "claim", claim_id)
            live = self._live_annotations(c, "claim_id = ?", (before["id"],))
            desc = f"delete claim {before['id']}" + (
                f" and its {count(len(live), 'annotation')}" if live else ""
            )
            change = self._delete_change(c, f"claim {before['id']}", live, force, desc)
            self._write_record(c, change, "claim", before["id"], "delete", before, None)
            created = self._created(c, change)
        return Change(
            change,
            "delete",
            desc,
            created,
            self.analyst,
            None,
            tuple(a.id for a in live),
            (f"claim {before['id']}",),
        )

    def _delete_change(
        self, c: sqlite3.Connection, what: str, live: list[Any], force: bool, desc: str
    ) -> int:
        """Open the change deleting ``what``; its current annotations ``live`` are refused
        (:class:`InUseError`) unless ``force``, then tombstoned in the same change."""
        if live and not force:
            raise InUseError(self._in_use(what, live))
        change = self._new_change(c, "delete", desc)
        for ann in live:
            self._tombstone(c, ann, change, "delete")
        if live:
            self._touch_annotations(c)
        return change

    def delete_report(self, report_id: int, *, force: bool = False) -> Change:
        """Delete a report and its claims (one undoable change); returns the change.

        The claims go with the report (each logged in ``record_revisions``, so
        :meth:`undo` puts them back under their ids).  When current annotations
        point at any of those claims the deletion is refused with
        :class:`InUseError` unless ``force``: then they are deleted too
        (tombstones) in the same change.
        """
        with self._write() as c:
            before = self._record(c, "report", report_id)
            rid = before["id"]
            claim_ids = [
                r[0]
                for r in c.execute("SELECT id FROM claims WHERE report_id = ? ORDER BY id", (rid,))
            ]
            live = self._live_annotations(
                c, "claim_id IN (SELECT id FROM claims WHERE report_id = ?)", (rid,)
            )
            desc = f"delete report {rid} with {count(len(claim_ids), 'claim')}" + (
                f" and {count(len(live), 'annotation')}" if live else ""
            )
            change = self._delete_change(c, f"report {rid}", live, force, desc)
            for cid in claim_ids:
                row = read_row(c, "claim", cid)
                self._write_record(c, change, "claim", cid, "delete", row, None)
            self._write_record(c, change, "report", rid, "delete", before, None)
            created = self._created(c, change)
        return Change(
            change,
            "delete",
            desc,
            created,
            self.analyst,
            None,
            tuple(a.id for a in live),
            (f"report {rid}", *(f"claim {cid}" for cid in claim_ids)),
        )

    def _check_fields(
        self, kind: str, changes: Mapping[str, Any], allowed: tuple[str, ...]
    ) -> None:
        unknown = set(changes) - set(allowed)
        if unknown:
            raise AnnotationValueError(
                f"cannot edit {', '.join(sorted(unknown))} of a {kind}; editable fields are "
                f"{', '.join(allowed)}"
            )
        if not changes:
            raise AnnotationValueError(
                f"nothing to edit: give at least one of {', '.join(allowed)}"
            )

    def _record(self, c: sqlite3.Connection, kind: Kind, record_id: int) -> dict[str, Any]:
        row = read_row(c, kind, int(record_id))
        if row is None:
            raise NotFoundError(
                f"no {kind} with id {record_id} in {self.path}; "
                f"`satdelta {kind} list` shows the ids"
            )
        return row

    def _write_record(
        self,
        c: sqlite3.Connection,
        change: int,
        kind: Kind,
        record_id: int,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        write_row(c, kind, record_id, after)
        log_revision(
            c,
            change=change,
            kind=kind,
            record_id=record_id,
            action=action,
            before=before,
            after=after,
            created=gpkg_now(),
            analyst=self.analyst,
        )
        touch_contents(c, "reports" if kind == "report" else "claims")
        touch_contents(c, "record_revisions")

    def _live_annotations(
        self, c: sqlite3.Connection, where: str, params: tuple[Any, ...]
    ) -> list[Annotation]:
        rows = c.execute(
            f"SELECT {ANN_COLUMNS} FROM annotations WHERE {where} ORDER BY fid", params
        ).fetchall()
        return rows_to_annotations(rows) if rows else []

    @staticmethod
    def _in_use(what: str, live: list[Annotation]) -> str:
        counts: dict[str, int] = {}
        for ann in live:
            counts[ann.status] = counts.get(ann.status, 0) + 1
        by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return (
            f"{what} still has {count(len(live), 'annotation')} pointing at it ({by_status}); "
            "delete again with --force (force=True) to delete them with it as one change that "
            "one undo reverses, or move them to another claim first"
        )

    def _move_annotations(
        self, c: sqlite3.Connection, claim_id: int, report_id: int, change: int
    ) -> list[str]:
        """Give the current annotations of a claim a new revision with ``report_id``."""
        now = gpkg_now()
        moved = []
        for ann in self._live_annotations(c, "claim_id = ?", (claim_id,)):
            new = ann.replace(
                report_id=report_id, revision=self._next_revision(c, ann.id), updated=now
            )
            c.execute(
                "UPDATE annotations SET report_id = ?, revision = ?, updated = ? WHERE uuid = ?",
                (report_id, new.revision, now, ann.id),
            )
            self._revision(c, new, change, "update", deleted=False)
            moved.append(ann.id)
        if moved:
            self._touch_annotations(c)
        return moved

    @staticmethod
    def _created(c: sqlite3.Connection, change: int) -> str:
        return c.execute("SELECT created FROM changes WHERE id = ?", (change,)).fetchone()[0]
