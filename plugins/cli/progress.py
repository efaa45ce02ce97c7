"""Progress bars on a terminal (tqdm), silent when stderr is piped.

:func:`progress_bars` turns the library's ``progress(stage, done, total)`` calls
(:data:`satdelta.imagery.block_run.Progress`) into one bar per stage with a count and an ETA.
:class:`BatchBars` shows a batch: one bar for the pairs, and one line per pair in flight with
its stage and, on the block runner, its blocks.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["BatchBars", "progress_bars"]

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


class BatchBars:
    """A batch on a terminal: the pairs bar, and one bar per pair in flight (tqdm, stderr).

    :meth:`pair` is the batch's ``progress(pair_name, stage, done, total)``
    (:data:`satdelta.imagery.batch_progress.PairProgress`; it may be called from another
    thread); :meth:`finished` closes a pair's bar and moves the pairs bar. With ``enabled``
    False every method does nothing but :meth:`echo`, which then prints plainly.
    """

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self._lock = threading.Lock()
        self._bars: dict[str, Any] = {}
        self._stages: dict[str, tuple[str, int]] = {}
        self._pairs: Any = None
        if enabled:
            from tqdm import tqdm

            self._pairs = tqdm(
                total=total, desc=f"{'pairs':<10}", unit="pair", file=sys.stderr,
                leave=True, dynamic_ncols=True, position=0,
            )  # fmt: skip

    def pair(self, name: str, stage: str, done: int, total: int) -> None:
        """Show a pair's stage, and its progress through the stage's blocks."""
        if not self.enabled:
            return
        from tqdm import tqdm

        with self._lock:
            bar = self._bars.get(name)
            if bar is None:
                bar = self._bars[name] = tqdm(
                    total=total or None, desc=f"{name} {stage}", unit=_UNITS.get(stage, ""),
                    file=sys.stderr, leave=False, dynamic_ncols=True,
                )  # fmt: skip
            elif self._stages.get(name) != (stage, total):  # a new stage: the bar restarts
                bar.unit = _UNITS.get(stage, "")
                bar.set_description_str(f"{name} {stage}", refresh=False)
                bar.reset(total=total or None)
            self._stages[name] = (stage, total)
            bar.update(done - bar.n)
            if total and done >= total:
                bar.refresh()  # drawn even within tqdm's minimum interval

    def finished(self, name: str, done: int) -> None:
        """The pair ``name`` ended; ``done`` pairs of the batch have."""
        if not self.enabled:
            return
        with self._lock:
            bar = self._bars.pop(name, None)
            self._stages.pop(name, None)
            if bar is not None:
                bar.close()
            self._pairs.update(done - self._pairs.n)

    def echo(self, line: str) -> None:
        """Print a line on stdout without breaking the bars."""
        if not self.enabled:
            print(line, file=sys.stdout, flush=True)
            return
        from tqdm import tqdm

        with self._lock:
            tqdm.write(line, file=sys.stdout)
            sys.stdout.flush()

    def close(self) -> None:
        """Close every bar (the pairs bar is left on the screen)."""
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._pairs is not None:
                self._pairs.close()
