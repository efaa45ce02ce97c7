"""Checks of option values shared by the imagery modules."""

from __future__ import annotations

import math

from satdelta.imagery.errors import InvalidParameterError

__all__ = ["positive_number"]


def positive_number(value: object, message: str) -> float:
    """Return ``value`` as a float after checking it is a finite number > 0.

    Raises
    ------
    InvalidParameterError
        With ``message`` when it is not (a string, None, NaN, inf, 0 or a negative number).

    Examples
    --------
    >>> positive_number("2.5", "expected a positive number")
    2.5
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InvalidParameterError(message)
    return number
