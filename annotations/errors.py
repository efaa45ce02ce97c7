"""Errors raised by :mod:`satdelta.annotations`.

Each is a :class:`~satdelta.errors.SatdeltaError` and also the builtin
it narrows, so callers can catch either.  Messages say what was expected, what
came, and what to do; the CLI prints them as one line.
"""

from __future__ import annotations

from satdelta.errors import SatdeltaError

__all__ = [
    "SatdeltaError",
    "StoreError",
    "NotAStoreError",
    "StoreCorruptError",
    "StoreVersionError",
    "StoreBusyError",
    "StorePermissionError",
    "StaleRevisionError",
    "NotFoundError",
    "AnnotationValueError",
    "InUseError",
    "GeometryError",
    "GeoJSONImportError",
    "ExportError",
]


class StoreError(SatdeltaError, OSError):
    """The annotation store could not be opened, read or written."""


class NotAStoreError(StoreError):
    """The file exists but is not a satdelta annotation store (it is left untouched)."""


class StoreCorruptError(StoreError):
    """The store file is damaged (it is left untouched)."""


class StoreVersionError(StoreError):
    """The store was written by a newer satdelta whose schema this version does not know."""


class StoreBusyError(StoreError):
    """Another process held the store's write lock for longer than the timeout."""


class StorePermissionError(StoreError, PermissionError):
    """The database user's role does not allow this change (a PostgreSQL store's grants)."""


class StaleRevisionError(StoreError):
    """An edit was based on a revision of an annotation that someone else has since changed."""


class NotFoundError(SatdeltaError, LookupError):
    """No report, claim, annotation or revision has the given id."""


class AnnotationValueError(SatdeltaError, ValueError):
    """A field value (label, verdict, status, confidence, date, ...) is not allowed."""


class GeometryError(AnnotationValueError):
    """A geometry cannot be used as an annotation polygon, even after repair."""


class GeoJSONImportError(SatdeltaError, ValueError):
    """A GeoJSON file cannot be imported; nothing from it was written."""


class ExportError(SatdeltaError, OSError):
    """An export file could not be written."""


class InUseError(AnnotationValueError):
    """A report or claim still has evidence pointing at it, so it is not deleted without force."""
