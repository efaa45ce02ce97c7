"""satdelta.errors: the root error class shared by satdelta's core packages.

:mod:`satdelta.imagery` and :mod:`satdelta.annotations` both derive their
errors from :class:`SatdeltaError` and re-export it, without importing each other.
"""

from __future__ import annotations

__all__ = ["SatdeltaError"]


class SatdeltaError(Exception):
    """Root of every error satdelta raises on purpose."""
