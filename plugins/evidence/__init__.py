"""satdelta.plugins.evidence: the evidence package of a report, for an editor and a reviewer.

For each claim of a report: the verdict summary of its accepted annotations and, for each,
before/after/change-score chips cut from the scenes in its provenance; one HTML page, its PDF,
the GeoJSON of the accepted annotations and a manifest of sha256 sums that
:func:`verify_package` checks.  Needs both the store and the scenes, so it lives here rather
than in either core package.  Qt-free::

    from satdelta.annotations import Store
    from satdelta.plugins.evidence import make_package, verify_package
    with Store.open("project.gpkg") as store:
        package = make_package(store, report_id=1, output="evidence/")
    verify_package("evidence/").ok
"""

from satdelta.plugins.evidence.errors import EvidenceError
from satdelta.plugins.evidence.gather import ClaimEvidence, ReportEvidence, gather_report
from satdelta.plugins.evidence.manifest import Verification, verify_package
from satdelta.plugins.evidence.package import Package, make_package

__all__ = [
    "ClaimEvidence",
    "EvidenceError",
    "Package",
    "ReportEvidence",
    "Verification",
    "gather_report",
    "make_package",
    "verify_package",
]
