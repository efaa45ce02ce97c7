"""Progress bars on a terminal (tqdm), silent when stderr is piped.

:func:`progress_bars` turns the library's ``progress(stage, done, total)`` calls
(:data:`satdelta.imagery.block_run.Progress`) into one bar per stage with a count and an ETA.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress_bars"]

_UNITS = {"blocks": "block", "candidates": "block", "pairs": "pair"}


@contextmanager
def progress_bars(*, enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """Yield a ``progress(stage, done, total)`` callback that draws tqdm bars on stderr.

    With ``enabled`` False (stderr is not a terminal) the callback does nothing.
    """
    bars: dict[str, Any] = {}

    def show(stage: str, done: int, total: int) -> None:
        if not enabled:
            return
        from tqdm import tqdm

        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(
                total=total or None, desc=f"{stage:<10}", unit=_UNITS.get(stage, ""),
                file=sys.stderr, leave=True, dynamic_ncols=True,
            )  # fmt: skip
        bar.update(done - bar.n)

    try:
        yield show
    finally:
        for bar in bars.values():
            bar.close()
