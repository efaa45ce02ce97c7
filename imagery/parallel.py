"""Threads for the core computations: how many, and two ways to use them.

The heavy steps of alignment and change detection are scipy.ndimage filters, FFTs, sorts
and large numpy ufuncs, all of which release the GIL: two threads working on two halves of
an array take about half the time of one. This module holds the one setting (how many
threads) and two helpers that keep results **bit-identical** to a single thread:

* :func:`run_jobs` runs independent jobs (one per window, one per image) in threads and
  returns their results in the order of the jobs, so whatever combines them (a
  concatenation, a median) sees exactly what a loop would have produced.
* :func:`map_row_blocks` splits a ``(row, col)`` computation into row blocks, each grown by a
  halo of rows on both sides (the reach of the computation's spatial filters, e.g.
  :attr:`~satdelta.imagery.scores.ScoreModel.halo_px`), and stitches back only each block's
  own rows. A pixel's value then depends only on the same input pixels, combined in the same
  order, as on the whole array.

How many threads: :func:`set_threads` (process-wide) or :func:`threads` (a ``with`` block in
the calling thread) override the environment variable ``SATDELTA_THREADS``, which overrides
the default ``min(usable CPUs, 4)``. Jobs started from inside a job run one after another in
that job's thread (no nested pools), so the count is never multiplied. The pool of worker
threads is created on first use and kept (starting threads costs milliseconds on a busy
machine), one per thread count in use; a forked child process starts without any.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.worker_setup import SATDELTA_THREADS_ENV

__all__ = [
    "ENV_VAR",
    "MAX_DEFAULT_THREADS",
    "RowBlock",
    "available_cpus",
    "default_threads",
    "map_row_blocks",
    "parse_threads",
    "row_blocks",
    "run_jobs",
    "set_threads",
    "thread_count",
    "threads",
]

#: Environment variable that sets the thread count (a whole number >= 1).
ENV_VAR = SATDELTA_THREADS_ENV
#: Cap of the default thread count (row blocks and windows gain little beyond it).
MAX_DEFAULT_THREADS = 4

T = TypeVar("T")
R = TypeVar("R")

_process_threads: int | None = None  # set_threads()
_local = threading.local()  # .threads: threads() override; .in_job: inside a run_jobs job
_pools: dict[int, ThreadPoolExecutor] = {}  # shared pools by number of worker threads
_pools_lock = threading.Lock()


def _forget_pools() -> None:
    """In a forked child: the parent's pool threads do not exist there."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _shared_pool(n: int) -> ThreadPoolExecutor:
    """The shared pool with exactly ``n`` worker threads, created on first use."""
    with _pools_lock:
        pool = _pools.get(n)
        if pool is None:
            pool = _pools[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="satdelta")
        return pool


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """``min(available_cpus(), MAX_DEFAULT_THREADS)``: the count when nothing sets one."""
    return min(available_cpus(), MAX_DEFAULT_THREADS)


def parse_threads(value: object, *, source: str = ENV_VAR) -> int:
    """A thread count from user input: a whole number >= 1.

    Parameters
    ----------
    value : object
        The text (or number) given.
    source : str
        Where it came from, for the error message.

    Raises
    ------
    InvalidParameterError
        Anything but a whole number >= 1.

    Examples
    --------
    >>> parse_threads(" 3 ")
    3
    """
    text = str(value).strip()
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise InvalidParameterError(
            f"{source} must be a whole number of threads >= 1, got {str(value)!r}; set it to "
            f"e.g. 1 or 2, or unset it to use the default ({default_threads()} here)."
        )
    return n


def thread_count() -> int:
    """Threads the core computations use now.

    The first that is set: :func:`threads` in this thread, :func:`set_threads`,
    ``SATDELTA_THREADS`` (read on every call; empty = unset), :func:`default_threads`.

    Raises
    ------
    InvalidParameterError
        ``SATDELTA_THREADS`` is set to something that is not a whole number >= 1.
    """
    local = getattr(_local, "threads", None)
    if local is not None:
        return int(local)
    if _process_threads is not None:
        return _process_threads
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return parse_threads(env)
    return default_threads()


def set_threads(n: int | None) -> None:
    """Set the thread count for the whole process; ``None`` goes back to the environment.

    Raises
    ------
    InvalidParameterError
        ``n`` is not a whole number >= 1.
    """
    global _process_threads
    _process_threads = None if n is None else parse_threads(n, source="the thread count")


@contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Use ``n`` threads inside the ``with`` block, in the calling thread only.

    ``None`` leaves the count as it is. Yields the count in force.

    Examples
    --------
    >>> with threads(1):
    ...     thread_count()
    1
    """
    previous = getattr(_local, "threads", None)
    if n is not None:
        _local.threads = parse_threads(n, source="the thread count")
    try:
        yield thread_count()
    finally:
        _local.threads = previous


def _in_job(fn: Callable[[T], R], item: T) -> R:
    """Run one job, marked so that the jobs it starts run in its own thread."""
    _local.in_job = True
    try:
        return fn(item)
    finally:
        _local.in_job = False


def run_jobs(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]``, with the calls spread over :func:`thread_count` threads.

    ``items`` is read in this thread, one item at a time while earlier jobs already run, so a
    generator may do ordered work (e.g. draw random numbers) as it yields. Results come back
    in the order of ``items``; the first job (in that order) that raised re-raises here, after
    every job has finished. With one thread, or inside a job, the calls run in a plain loop.

    Examples
    --------
    >>> run_jobs(lambda x: x * x, range(5))
    [0, 1, 4, 9, 16]
    """
    n = thread_count()
    single = isinstance(items, Sequence) and len(items) <= 1
    if n <= 1 or single or getattr(_local, "in_job", False):
        return [fn(item) for item in items]
    pool = _shared_pool(n)
    futures: list[Future[R]] = [pool.submit(_in_job, fn, item) for item in items]
    wait(futures)
    return [f.result() for f in futures]


@dataclass(frozen=True)
class RowBlock:
    """One block of rows with its halo.

    Attributes
    ----------
    rows : slice
        The block's own rows, in the whole array.
    outer : slice
        ``rows`` grown by the halo on both sides and clipped to the array.
    inner : slice
        ``rows`` inside an array cut with ``outer``.
    """

    rows: slice
    outer: slice
    inner: slice


def row_blocks(nrows: int, count: int, halo: int) -> list[RowBlock]:
    """Split ``nrows`` rows into ``count`` blocks of near-equal height, each with its halo.

    Never more blocks than rows; blocks are in order, disjoint, and cover every row.

    Examples
    --------
    >>> [(b.rows.start, b.rows.stop, b.outer.start, b.outer.stop) for b in row_blocks(10, 2, 3)]
    [(0, 5, 0, 8), (5, 10, 2, 10)]
    """
    if nrows < 0 or count < 1 or halo < 0:
        raise InvalidParameterError(
            f"row blocks need nrows >= 0, count >= 1 and halo >= 0, got {nrows}, {count}, {halo}."
        )
    count = max(1, min(count, nrows))
    bounds = [i * nrows // count for i in range(count + 1)]
    out = []
    for r0, r1 in zip(bounds[:-1], bounds[1:], strict=True):
        o0, o1 = max(r0 - halo, 0), min(r1 + halo, nrows)
        out.append(RowBlock(slice(r0, r1), slice(o0, o1), slice(r0 - o0, r1 - o0)))
    return out


def map_row_blocks(
    fn: Callable[[slice], Sequence[NDArray]], nrows: int, halo: int
) -> list[NDArray]:
    """Compute ``fn`` on row blocks in threads and stitch each block's own rows.

    Parameters
    ----------
    fn : callable
        ``fn(rows)`` computes the result for the rows ``rows`` (a slice of the whole array's
        rows, halo included) and returns a sequence of arrays whose first axis is those rows.
        Its value on a row must depend only on input rows within ``halo`` of it.
    nrows : int
        Rows of the whole array.
    halo : int
        Rows of context each block needs on each side.

    Returns
    -------
    list of ndarray
        The arrays ``fn(slice(0, nrows))`` would return (fresh arrays, one per output).

    Examples
    --------
    >>> x = np.arange(12.0)
    >>> (y,) = map_row_blocks(lambda r: [np.convolve(x[r], [1, 1, 1], "same")], 12, 1)
    >>> bool((y == np.convolve(x, [1, 1, 1], "same")).all())
    True
    """
    blocks = row_blocks(nrows, thread_count(), halo)
    if len(blocks) == 1 or getattr(_local, "in_job", False):
        return list(fn(slice(0, nrows)))
    parts = run_jobs(lambda b: fn(b.outer), blocks)
    out = [np.empty((nrows, *p.shape[1:]), dtype=p.dtype) for p in parts[0]]
    for block, part in zip(blocks, parts, strict=True):
        for whole, piece in zip(out, part, strict=True):
            whole[block.rows] = piece[block.inner]
    return out
