"""Object counts per claim: how many objects stood before, stand after, left and arrived.

Annotations imported from a ``satdelta detect`` ``objects.geojson`` carry their object's
attributes in ``provenance["object"]`` (change, size class, length...). An analyst accepts or
rejects them; :func:`object_counts` counts the accepted and undecided ones (never the rejected)
into the table a claim about "six aircraft left the apron" is answered with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from satdelta.annotations.model import Annotation

__all__ = ["ObjectCounts", "object_change", "object_counts", "object_counts_by_claim"]


def object_change(annotation: Annotation) -> str | None:
    """The object change kind of an annotation (disappeared, appeared, unchanged) or None."""
    obj = (annotation.provenance or {}).get("object")
    if not isinstance(obj, dict):
        return None
    change = obj.get("change")
    return change if change in ("disappeared", "appeared", "unchanged") else None


@dataclass(frozen=True)
class ObjectCounts:
    """Objects that left, arrived and stayed; ``before`` and ``after`` follow from them.

    Examples
    --------
    >>> c = ObjectCounts(disappeared=5, appeared=0, unchanged=1)
    >>> c.before, c.after
    (6, 1)
    >>> str(c)
    'before 6 · after 1 · disappeared 5 · appeared 0 · unchanged 1'
    """

    disappeared: int = 0
    appeared: int = 0
    unchanged: int = 0

    @property
    def before(self) -> int:
        """Objects on the before date: those that left and those that stayed."""
        return self.disappeared + self.unchanged

    @property
    def after(self) -> int:
        """Objects on the after date: those that arrived and those that stayed."""
        return self.appeared + self.unchanged

    def to_dict(self) -> dict[str, int]:
        return {
            "before": self.before,
            "after": self.after,
            "disappeared": self.disappeared,
            "appeared": self.appeared,
            "unchanged": self.unchanged,
        }

    def __str__(self) -> str:
        return " · ".join(f"{k} {v}" for k, v in self.to_dict().items())


def object_counts(annotations: Iterable[Annotation], *, label: str | None = None) -> ObjectCounts:
    """Count object annotations by change kind, accepted and undecided ones, not rejected.

    Parameters
    ----------
    annotations : iterable of Annotation
        Any annotations; those without an object change are ignored.
    label : str, optional
        Count only annotations with this label (``"aircraft"``, ``"vehicles"``).
    """
    n = {"disappeared": 0, "appeared": 0, "unchanged": 0}
    for a in annotations:
        change = object_change(a)
        if change is None or a.status == "rejected" or a.deleted:
            continue
        if label is not None and a.label != label:
            continue
        n[change] += 1
    return ObjectCounts(**n)


def object_counts_by_claim(
    annotations: Iterable[Annotation], *, label: str | None = None
) -> dict[int, ObjectCounts]:
    """:func:`object_counts` per claim id (claims with object annotations only)."""
    by_claim: dict[int, list[Annotation]] = {}
    for a in annotations:
        if object_change(a) is not None:
            by_claim.setdefault(a.claim_id, []).append(a)
    return {c: object_counts(anns, label=label) for c, anns in sorted(by_claim.items())}
