"""The evidence package's one error type (the CLI prints it as one line, exit status 1)."""

from __future__ import annotations

from satdelta.imagery.errors import SatdeltaError

__all__ = ["EvidenceError"]


class EvidenceError(SatdeltaError, ValueError):
    """An evidence package cannot be made or read as asked (the message says what to do)."""
