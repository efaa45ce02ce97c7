"""What an evidence package says about a report, read from the annotation store in one state.

:func:`gather_report` gives, for each claim of the report, how many accepted annotations
support it, contradict it or leave it inconclusive, the accepted annotations themselves, how
many are still undecided or rejected, and object counts before/after where reviewed objects
exist (annotations whose provenance has an ``"object"`` member with a ``"change"`` of
``appeared``, ``disappeared`` or ``unchanged``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from satdelta.annotations import VERDICTS, Annotation, Claim, Report, Store

__all__ = ["ClaimEvidence", "ObjectCounts", "ReportEvidence", "gather_report"]

_OBJECT_CHANGES = ("appeared", "disappeared", "unchanged")


@dataclass(frozen=True)
class ObjectCounts:
    """Reviewed (accepted) objects of one claim: present before, present after."""

    before: int
    after: int

    def __post_init__(self) -> None:
        if self.before < 0 or self.after < 0:
            raise ValueError(f"object counts must be >= 0, got {self.before}, {self.after}")


@dataclass(frozen=True)
class ClaimEvidence:
    """One claim, its accepted annotations and the verdict summary they give.

    Attributes
    ----------
    claim : Claim
    accepted : tuple of Annotation
        Status ``accepted``, oldest first.
    verdicts : dict
        ``{"supports": n, "contradicts": n, "inconclusive": n}`` over ``accepted``.
    undecided, rejected : int
        Annotations of the claim still ``candidate``, or ``rejected``.
    objects : ObjectCounts or None
        None when no accepted annotation of the claim is a reviewed object.
    """

    claim: Claim
    accepted: tuple[Annotation, ...]
    verdicts: dict[str, int]
    undecided: int
    rejected: int
    objects: ObjectCounts | None = None

    def __post_init__(self) -> None:
        if set(self.verdicts) != set(VERDICTS):
            raise ValueError(f"verdicts: expected the keys {VERDICTS}, got {tuple(self.verdicts)}")


@dataclass(frozen=True)
class ReportEvidence:
    """A report and the evidence of each of its claims (in claim order)."""

    report: Report
    claims: tuple[ClaimEvidence, ...]

    @property
    def accepted(self) -> tuple[Annotation, ...]:
        """Every accepted annotation of the report, claim by claim."""
        return tuple(a for c in self.claims for a in c.accepted)


def object_counts(annotations: tuple[Annotation, ...]) -> ObjectCounts | None:
    """Objects present before and after among ``annotations`` (None when none is an object)."""
    changes = [
        obj.get("change")
        for a in annotations
        if isinstance(obj := a.provenance.get("object"), dict)
        and obj.get("change") in _OBJECT_CHANGES
    ]
    if not changes:
        return None
    n = Counter(changes)
    return ObjectCounts(
        before=n["disappeared"] + n["unchanged"], after=n["appeared"] + n["unchanged"]
    )


def _claim_evidence(claim: Claim, annotations: list[Annotation]) -> ClaimEvidence:
    status = Counter(a.status for a in annotations)
    accepted = tuple(a for a in annotations if a.status == "accepted")
    verdicts = Counter(a.verdict for a in accepted)
    return ClaimEvidence(
        claim=claim,
        accepted=accepted,
        verdicts={v: verdicts[v] for v in VERDICTS},
        undecided=status["candidate"],
        rejected=status["rejected"],
        objects=object_counts(accepted),
    )


def gather_report(store: Store, report_id: int) -> ReportEvidence:
    """The report ``report_id``, its claims and their annotations, read in one snapshot.

    Raises
    ------
    satdelta.annotations.NotFoundError
        No such report.
    """
    with store.snapshot():
        report = store.get_report(report_id)
        claims = store.list_claims(report_id)
        annotations = store.list_annotations(report_id=report_id)
    by_claim: dict[int, list[Annotation]] = {c.id: [] for c in claims}
    for a in annotations:
        by_claim.setdefault(a.claim_id, []).append(a)
    return ReportEvidence(
        report=report, claims=tuple(_claim_evidence(c, by_claim[c.id]) for c in claims)
    )
