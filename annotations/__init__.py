"""satdelta.annotations: reports, claims and the analyst's evidence polygons, losing nothing.

The store is one OGC GeoPackage file (:class:`Store`; design and guarantees in
``docs/design-store.md``)::

    from satdelta.annotations import Store
    with Store.open("project.gpkg") as store:
        report = store.add_report(title="...")
        claim = store.add_claim(report_id=report.id, text="...")
        store.add_annotation(polygon, crs=scene.crs, claim_id=claim.id, label="aircraft")
        store.export("evidence.geojson")
"""

from satdelta.annotations.errors import (
    AnnotationValueError,
    ExportError,
    GeoJSONImportError,
    GeometryError,
    InUseError,
    NotAStoreError,
    NotFoundError,
    StaleRevisionError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StorePermissionError,
    StoreVersionError,
)
from satdelta.annotations.geojson import geometry_to_geojson, to_feature_collection
from satdelta.annotations.geometry import CleanGeometry, clean_polygon
from satdelta.annotations.model import (
    CHANGES,
    DEFAULT_LABELS,
    ORIGINS,
    SORTS,
    STATUSES,
    VERDICTS,
    Annotation,
    Change,
    Claim,
    Report,
    Revision,
)
from satdelta.annotations.schema import SCHEMA_VERSION
from satdelta.annotations.store import Store

__all__ = [
    "DEFAULT_LABELS",
    "ORIGINS",
    "SCHEMA_VERSION",
    "CHANGES",
    "SORTS",
    "STATUSES",
    "VERDICTS",
    "Annotation",
    "AnnotationValueError",
    "Change",
    "Claim",
    "CleanGeometry",
    "ExportError",
    "GeoJSONImportError",
    "GeometryError",
    "InUseError",
    "NotAStoreError",
    "NotFoundError",
    "Report",
    "Revision",
    "Store",
    "StaleRevisionError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StorePermissionError",
    "StoreVersionError",
    "clean_polygon",
    "geometry_to_geojson",
    "to_feature_collection",
]
