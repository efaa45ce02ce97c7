"""The annotation store: one GeoPackage file holding reports, claims and evidence polygons.

:class:`Store` is the public API the napari plugin, the batch job and the CLI call.
It delegates to one module per responsibility: :mod:`~satdelta.annotations.connection`
(opening, transactions), :mod:`~satdelta.annotations.reads`,
:mod:`~satdelta.annotations.writes` (annotations, labels),
:mod:`~satdelta.annotations.reports` (reports, claims) and
:mod:`~satdelta.annotations.history` (revisions, restore, undo).  The storage layout and
the durability guarantees are described in ``docs/design-store.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Literal

from satdelta.annotations import history, reads, reports, writes
from satdelta.annotations.connection import Database
from satdelta.annotations.errors import AnnotationValueError, StoreError
from satdelta.annotations.gpkg import gpkg_now
from satdelta.annotations.model import (
    Annotation,
    Change,
    ChangeKind,
    Claim,
    Origin,
    Report,
    Revision,
    Status,
    Verdict,
)
from satdelta.annotations.postgres import is_postgres_url
from satdelta.annotations.writes import ImportResult

__all__ = ["Store"]


class Store:
    """A satdelta annotation store (GeoPackage file).  Use :meth:`Store.open`.

    Examples
    --------
    ::

        with Store.open("project.gpkg", analyst="jane") as store:   # created if missing
            report = store.add_report(title="Putin may visit Pyongyang", outlet="NK News")
            claim = store.add_claim(report_id=report.id, text="Civil aircraft cleared")
            ann = store.add_annotation(polygon_utm, crs="EPSG:32651", claim_id=claim.id,
                                       label="aircraft", verdict="supports", confidence=0.8)
            store.delete_annotation(ann.id)           # a tombstone revision
            store.undo()                              # the annotation is back
            store.export("evidence.geojson", report_id=report.id)   # or .gpkg / .csv

    ``docs/design-store.md`` has a longer tour.
    """

    def __init__(self, db: Database):
        self._db = db

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

        A store on a read-only filesystem or a full disk opens for reading only: reads and
        exports work, every write raises :class:`StoreError` saying which of the two it is.

        Parameters
        ----------
        path : path-like or str
            The GeoPackage file (``.gpkg``), or a PostgreSQL/PostGIS database as
            ``postgresql://USER@HOST:PORT/DATABASE`` (password from PGPASSWORD or ~/.pgpass;
            see ``docs/team-store.md``).
        create : bool
            Create a new store when ``path`` does not exist.
        analyst : str, optional
            Name written in the ``analyst`` field of new revisions (default: $USER; for
            PostgreSQL the database user).
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
        if is_postgres_url(path):
            from satdelta.annotations.postgres import PgDatabase

            return cls(PgDatabase.open(path, create=create, analyst=analyst, timeout=timeout))
        analyst = analyst if analyst is not None else os.environ.get("USER") or None
        return cls(Database.open(Path(path), create=create, analyst=analyst, timeout=timeout))

    @property
    def path(self) -> Path | str:
        """The store file, or the PostgreSQL store's address without its password."""
        return self._db.path

    @property
    def location(self) -> Path | str:
        """What :meth:`open` takes to open this store again (a URL may hold a password)."""
        return self._db.location

    @property
    def backend(self) -> Literal["geopackage", "postgresql"]:
        """Which kind of store this is."""
        return self._db.dialect

    @property
    def analyst(self) -> str | None:
        """Name written in the ``analyst`` field of new revisions and changes."""
        return self._db.analyst

    @property
    def timeout(self) -> float:
        """Seconds a write keeps retrying while other processes hold the lock."""
        return self._db.timeout

    @property
    def schema_version(self) -> int:
        """Schema version of the open store (always current after :meth:`open`)."""
        return self._db.schema_version() or 0

    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """A consistent view for several reads: inside, every read sees one state of the file.

        One read transaction (WAL keeps its snapshot stable while other processes write), so
        an export or a listing never mixes states with a concurrent edit or delete. Other
        threads using this store object wait until the block ends; write from outside the
        block (a write inside it would try to start a second transaction). Nested use is a
        no-op.
        """
        with self._db.snapshot():
            yield self

    def grant(self, role: str, access: Literal["read", "review", "edit"]) -> str:
        """Give database user ``role`` read, review or edit access (PostgreSQL stores only).

        ``review`` may change only an annotation's status and verdict.  Returns the group role
        granted; ``docs/team-store.md`` describes the three.
        """
        if self.backend != "postgresql":
            raise StoreError(
                f"roles are for a PostgreSQL store; {self.path} is a GeoPackage file (its access "
                "is the file's permissions): copy it to PostgreSQL with `satdelta store copy`"
            )
        from satdelta.annotations.pg_schema import grant

        return grant(self._db, role, access)

    def copy_to(self, target: Store) -> dict[str, int]:
        """Copy everything, with full history, into the new empty store ``target``.

        Works between GeoPackage and PostgreSQL stores either way; returns rows per table.
        """
        from satdelta.annotations.store_copy import copy_store

        return copy_store(self, target)

    # ------------------------------------------------------------------- labels
    def labels(self, *, include_inactive: bool = False) -> tuple[str, ...]:
        """Label names of the store's (editable) schema."""
        return reads.labels(self._db, include_inactive=include_inactive)

    def add_label(self, name: str, *, description: str = "") -> None:
        """Add a label to the schema (or re-activate it)."""
        writes.add_label(self._db, name, description=description)

    def retire_label(self, name: str) -> None:
        """Stop offering a label for new annotations (existing ones keep it)."""
        writes.retire_label(self._db, name)

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
        report = Report(0, title, outlet, url, published, language, notes, gpkg_now())
        return reports.add_report(self._db, report)

    def get_report(self, report_id: int) -> Report:
        """Return one report; :class:`NotFoundError` if there is none with that id."""
        return reads.get_report(self._db, report_id)

    def list_reports(self) -> list[Report]:
        """All reports, by id."""
        return reads.list_reports(self._db)

    def load_report(self, data: Mapping[str, Any]) -> tuple[Report, list[Claim]]:
        """Add a report and its claims from ``{"report": {...}, "claims": [{...}, ...]}``.

        Claim entries take ``text``, ``place``, ``point`` ([lon, lat]) or
        ``location`` ({"lon", "lat"} or {"bbox"}), ``bbox`` ([W, S, E, N]) and
        ``time_start``/``time_end`` (or ``time_window`` [start, end]).  The whole
        file is added in one transaction.
        """
        return reports.load_report(self._db, data)

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
        return reports.update_report(self._db, report_id, changes)

    def delete_report(self, report_id: int, *, force: bool = False) -> Change:
        """Delete a report and its claims (one undoable change); returns the change.

        The claims go with the report (each logged in ``record_revisions``, so
        :meth:`undo` puts them back under their ids).  When current annotations
        point at any of those claims the deletion is refused with
        :class:`InUseError` unless ``force``: then they are deleted too
        (tombstones) in the same change.
        """
        return reports.delete_report(self._db, report_id, force=force)

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
        claim = Claim(0, int(report_id), text, place, point, bbox, time_start, time_end, gpkg_now())
        return reports.add_claim(self._db, claim)

    def get_claim(self, claim_id: int) -> Claim:
        """Return one claim; :class:`NotFoundError` if there is none with that id."""
        return reads.get_claim(self._db, claim_id)

    def list_claims(self, report_id: int | None = None) -> list[Claim]:
        """Claims, optionally of one report, by id."""
        return reads.list_claims(self._db, report_id)

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
        return reports.update_claim(self._db, claim_id, changes)

    def delete_claim(self, claim_id: int, *, force: bool = False) -> Change:
        """Delete a claim (one undoable change); returns the change.

        A claim that current annotations still point at is refused with
        :class:`InUseError` unless ``force``: then those annotations are
        deleted too (tombstone revisions, as :meth:`delete_annotation`) in the
        same change, so one :meth:`undo` brings the claim and all of them back.
        The claim's row is kept in ``record_revisions``; nothing is lost.
        """
        return reports.delete_claim(self._db, claim_id, force=force)

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
        item = dict(
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
        return self.add_annotations([item], action="add")[0]

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
        return writes.add_annotations(
            self._db, items, action=action, description=description, supersede=supersede
        )

    def get_annotation(self, annotation_id: str, *, include_deleted: bool = False) -> Annotation:
        """Current state of an annotation (a unique id prefix of ≥ 4 characters is accepted).

        With ``include_deleted`` a deleted annotation's last state is returned.
        """
        return reads.get_annotation(self._db, annotation_id, include_deleted=include_deleted)

    def list_annotations(
        self,
        *,
        report_id: int | None = None,
        claim_id: int | None = None,
        status: Status | None = None,
        label: str | None = None,
        change: ChangeKind | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        sort: Literal["added", "rank"] = "added",
        objects: bool = False,
    ) -> list[Annotation]:
        """Current (non-deleted) annotations matching every given filter, oldest first.

        Parameters
        ----------
        report_id, claim_id, status, label, change : optional
            Keep annotations with this value (``change``: what a detected candidate shows).
        bbox : (west, south, east, north), optional
            WGS84 box; keeps annotations whose bounding box intersects it (looked
            up in the GeoPackage R-tree index, so a map view of a big store is fast).
        sort : {"added", "rank"}, default "added"
            Oldest first, or by detection rank (1 = strongest evidence first; annotations
            without a rank after the ranked ones, oldest first).
        objects : bool, default False
            Only object candidates (a ``provenance["object"]`` entry, see
            :mod:`satdelta.annotations.object_counts`); read without decoding the others,
            so counting objects stays fast in a store of thousands of candidates.
        """
        equal = dict(
            report_id=report_id, claim_id=claim_id, status=status, label=label, change=change
        )
        return reads.list_annotations(self._db, bbox=bbox, sort=sort, objects=objects, **equal)

    def update_annotation(
        self, annotation_id: str, *, expected_revision: int | None = None, **changes: Any
    ) -> Annotation:
        """Change fields of an annotation (a new revision); returns the new state.

        Allowed: ``label, verdict, confidence, status, notes, analyst, claim_id,
        provenance, origin`` and ``geometry`` (with optional ``crs``).  With
        ``expected_revision`` (the revision the edit was based on) an annotation someone
        else changed since is refused with :class:`StaleRevisionError` naming who and when.
        """
        return writes.update_annotation(
            self._db, annotation_id, changes, expected_revision=expected_revision
        )

    def delete_annotation(
        self, annotation_id: str, *, expected_revision: int | None = None
    ) -> Revision:
        """Delete an annotation: removes it from the layer and writes a tombstone revision.

        ``expected_revision`` as in :meth:`update_annotation`.
        """
        return writes.delete_annotation(
            self._db, annotation_id, expected_revision=expected_revision
        )

    def history(self, annotation_id: str) -> list[Revision]:
        """Every revision of an annotation, oldest first (tombstones included)."""
        return reads.history(self._db, annotation_id)

    def restore(self, annotation_id: str, revision: int) -> Annotation | None:
        """Make revision ``revision`` the current state again (as a NEW revision).

        Restoring a tombstone deletes the annotation again; returns the new
        state, or None when the restored state is "deleted".
        """
        return history.restore(self._db, annotation_id, revision)

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
        return history.undo(self._db)

    def changes(self) -> list[Change]:
        """The change log, oldest first."""
        return reads.changes(self._db)

    def import_geojson(
        self,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        report_id: int,
        claim_id: int,
        label: str | None = None,
        allow_duplicates: bool = False,
    ) -> ImportResult:
        """Import a GeoJSON file or mapping whole (one transaction) or not at all.

        Recognised: a ``satdelta detect`` ``changes.geojson`` (candidates with
        the run's provenance), a satdelta annotation export (fields and ids kept),
        and any RFC 7946 Polygon/MultiPolygon FeatureCollection, Feature or
        geometry (origin "imported", the original properties kept in provenance).
        ``label`` overrides the label of every imported polygon.  What is already in the
        store (a current annotation with the feature's id, or one of the claim with the same
        geometry and provenance) is skipped unless ``allow_duplicates``; the result is the
        list of added annotations, with ``skipped`` and ``far_from_claim`` counts.
        """
        return writes.import_geojson(
            self._db,
            source,
            report_id=report_id,
            claim_id=claim_id,
            label=label,
            allow_duplicates=allow_duplicates,
        )

    def to_feature_collection(
        self, *, sort: Literal["added", "rank"] = "added", **filters: Any
    ) -> dict[str, Any]:
        """The (filtered, sorted) annotations as an RFC 7946 FeatureCollection mapping."""
        from satdelta.annotations.geojson import to_feature_collection

        with self.snapshot():  # the three reads see one state, whatever other writers do
            anns = self.list_annotations(sort=sort, **filters)
            by_id = {r.id: r for r in self.list_reports()}
            claims = {c.id: c for c in self.list_claims()}
        return to_feature_collection(anns, by_id, claims, filters=filters)

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: Literal["auto", "geojson", "gpkg", "csv"] = "auto",
        report_id: int | None = None,
        claim_id: int | None = None,
        status: str | None = None,
        label: str | None = None,
        change: str | None = None,
        sort: Literal["added", "rank"] = "added",
    ) -> int:
        """Write the (filtered) annotations to GeoJSON, a GeoPackage layer or CSV+WKT.

        ``format="auto"`` picks from the suffix (.geojson/.json, .gpkg, .csv); filters and
        ``sort`` as in :meth:`list_annotations`.
        The file is written beside the target and moved into place, so a failed
        export never leaves half a file.  Returns the number of features.
        """
        from satdelta.annotations.export import export_collection

        target = Path(path)
        if (
            isinstance(self.path, Path)
            and target.exists()
            and target.resolve() == self.path.resolve()
        ):
            raise AnnotationValueError(
                f"export target {target} is the store itself; choose another file name"
            )
        fc = self.to_feature_collection(
            report_id=report_id,
            claim_id=claim_id,
            status=status,
            label=label,
            change=change,
            sort=sort,
        )
        return export_collection(fc, target, format=format)
