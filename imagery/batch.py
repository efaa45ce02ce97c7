"""Change detection over many before/after pairs: one task per pair, on a pool or a cluster.

:func:`run_batch` runs :func:`run_pair` once per pair, each pair into ``OUTDIR/<name>/``
exactly as ``satdelta detect`` writes it, on a local
:class:`concurrent.futures.ProcessPoolExecutor` or on a Dask cluster
(:mod:`dask.distributed`); both use the same task function, so there is no scheduler of our
own. A pair that fails is recorded with its one-line error and the others go on; a pair whose
outputs are up to date (same inputs, same :class:`~satdelta.imagery.options.DetectionOptions`)
is skipped unless ``force`` is given. ``OUTDIR/batch.json`` says what happened to every pair.
The pairs list is read by :mod:`satdelta.imagery.pairs`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from satdelta.imagery.batch_progress import PairProgress, dask_progress, pool_progress
from satdelta.imagery.errors import InvalidParameterError, OutputError, SatdeltaError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.outputs import chmod_as_created
from satdelta.imagery.pair_task import PairResult, format_result, one_line_error, run_pair
from satdelta.imagery.pairs import BATCH_FILE, Pair, PairsFileError, read_pairs
from satdelta.imagery.parallel import MAX_DEFAULT_THREADS, available_cpus, thread_count
from satdelta.imagery.worker_setup import init_worker, limit_worker_resources

__all__ = [
    "BATCH_FILE",
    "BatchError",
    "BatchResult",
    "Pair",
    "PairResult",
    "PairsFileError",
    "format_result",
    "limit_worker_resources",
    "read_pairs",
    "run_batch",
    "run_pair",
    "worker_threads",
]

log = logging.getLogger(__name__)


class BatchError(SatdeltaError, RuntimeError):
    """The batch could not be run at all (e.g. the Dask scheduler cannot be reached)."""


@dataclass(frozen=True)
class BatchResult:
    """Every pair's result and how the batch ran.

    Attributes
    ----------
    results : tuple of PairResult
        In the order of the pairs list.
    report : pathlib.Path
        The batch.json written.
    seconds : float
        Wall time of the whole batch.
    """

    results: tuple[PairResult, ...]
    report: Path
    seconds: float

    @property
    def failed(self) -> tuple[PairResult, ...]:
        """The pairs that failed."""
        return tuple(r for r in self.results if r.status == "failed")


def worker_threads(workers: int) -> int:
    """Threads each of ``workers`` local worker processes gives the detection.

    The usable CPUs shared out, at least 1 and at most
    :data:`~satdelta.imagery.parallel.MAX_DEFAULT_THREADS` (what one process would use),
    so the workers' threads do not oversubscribe the machine. A ``SATDELTA_THREADS`` set
    by the operator is kept instead (see :func:`~satdelta.imagery.worker_setup.init_worker`).

    Examples
    --------
    >>> from satdelta.imagery.parallel import available_cpus
    >>> worker_threads(available_cpus()) == 1 and worker_threads(4 * available_cpus()) == 1
    True
    """
    return max(1, min(available_cpus() // max(1, int(workers)), MAX_DEFAULT_THREADS))


def _write_report(path: Path, report: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, allow_nan=False)
        chmod_as_created(tmp, 0o666)  # mkstemp makes it 0600; match the other outputs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_batch(
    pairs: Sequence[Pair],
    outdir: str | os.PathLike[str],
    *,
    options: DetectionOptions = DetectionOptions(),
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    pairs_source: str | None = None,
    on_result: Callable[[PairResult], None] | None = None,
    runner: str = "auto",
    progress: PairProgress | None = None,
) -> BatchResult:
    """Run every pair on a local process pool, or on a Dask cluster, and write batch.json.

    Parameters
    ----------
    pairs : sequence of Pair
        From :func:`read_pairs`; names must be unique.
    outdir : str or os.PathLike
        Each pair writes ``outdir/<name>/``; ``outdir/batch.json`` is the report.
    options : DetectionOptions, optional
        The same for every pair (the defaults: ``"auto"`` everywhere).
    workers : int, optional
        Processes of the local pool (default: CPU count, at most one per pair). Ignored with
        ``scheduler``. Each process gives the detection :func:`worker_threads` threads (the
        CPUs shared out); a task on a Dask worker uses one thread. ``SATDELTA_THREADS``, when
        set, is used instead in both cases.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers must have
        satdelta installed and see the same paths.
    force : bool, default False
        Recompute pairs whose outputs are up to date.
    pairs_source : str, optional
        The pairs list's path, recorded in batch.json.
    on_result : callable, optional
        Called in this process with each :class:`PairResult` as it arrives.
    runner : {"auto", "whole", "blocks"}, default "auto"
        Whole grids in memory, block by block, or blocks for large grids
        (:func:`~satdelta.imagery.block_run.uses_blocks`).
    progress : callable, optional
        ``progress(pair_name, stage, done, total)`` called in this process as the pairs in
        flight go on: their stages (``open``, ``align``, ... ``write``) and, for pairs run
        block by block, their blocks (:mod:`satdelta.imagery.batch_progress`). Reports are
        throttled; a pair's last report comes before its ``on_result``.

    Returns
    -------
    BatchResult

    Notes
    -----
    The local pool starts its processes with ``spawn``: a script calling this must keep its
    top-level code under ``if __name__ == "__main__":`` (see :mod:`multiprocessing`).

    Raises
    ------
    OutputError
        OUTDIR cannot be written (checked before any work).
    BatchError
        The Dask scheduler cannot be reached or dask.distributed is not installed.
    InvalidParameterError
        ``workers`` < 1, repeated pair names or a malformed ``SATDELTA_THREADS``; raised
        before OUTDIR is made or any pair starts.
    """
    from satdelta.imagery.block_run import check_runner
    from satdelta.imagery.outputs import check_outdir

    thread_count()  # a malformed SATDELTA_THREADS fails here, before any work
    # a bad runner, or "blocks" with an option it cannot honour, fails here (no pair opened)
    check_runner(options, runner)
    if workers is not None and workers < 1:
        raise InvalidParameterError(f"workers must be >= 1; got {workers}.")
    names = [p.name.lower() for p in pairs]
    if len(set(names)) != len(names):
        raise InvalidParameterError("pair names must be unique (they are output folder names).")
    out = check_outdir(outdir)
    client = _connect(scheduler) if scheduler else None  # fails before OUTDIR is made
    try:
        return _run_batch(
            pairs,
            out,
            options,
            workers,
            scheduler,
            client,
            _TaskArgs(force, runner, progress),
            pairs_source,
            on_result,
        )
    finally:
        if client is not None:
            client.close()


def _run_batch(
    pairs: Sequence[Pair],
    out: Path,
    options: DetectionOptions,
    workers: int | None,
    scheduler: str | None,
    client: Any,
    task: _TaskArgs,
    pairs_source: str | None,
    on_result: Callable[[PairResult], None] | None,
) -> BatchResult:
    out.mkdir(parents=True, exist_ok=True)
    started = _utc_now()
    t0 = time.perf_counter()
    by_name: dict[str, PairResult] = {}
    path = out / BATCH_FILE
    if client is not None:
        nworkers = len(client.scheduler_info().get("workers", {}))
        executor: dict[str, Any] = {"kind": "dask", "scheduler": scheduler, "workers": nworkers}
    else:
        n = max(1, min(workers or os.cpu_count() or 1, len(pairs)))
        executor = {"kind": "process-pool", "workers": n}

    def report(finished: bool) -> None:
        # rewritten (atomically) after every pair, so a killed batch still says how far it got
        entries = []
        for p in pairs:
            r = by_name.get(p.name)
            entry = r.to_dict() if r else {"name": p.name, "status": "pending"}
            entries.append({**entry, "before": p.before, "after": p.after})
        counts = {
            s: sum(e["status"] == s for e in entries)
            for s in ("done", "skipped", "failed", "pending")
        }
        doc = {
            "satdelta": {
                "kind": "batch-change-detection",
                "started": started,
                "finished": _utc_now() if finished else None,
            },
            "pairs_file": pairs_source,
            "outdir": str(out),
            "options": options.to_dict(),
            "force": task.force,
            "runner": task.runner,
            "executor": executor,
            "client": {"host": socket.gethostname(), "pid": os.getpid()},
            "counts": counts,
            "seconds": round(time.perf_counter() - t0, 3),
            "pairs": entries,
        }
        try:
            _write_report(path, doc)
        except OSError as exc:
            raise OutputError(
                f"cannot write {path}: {exc}. Check free space and permissions."
            ) from exc

    def collect(r: PairResult) -> None:
        by_name[r.name] = r
        report(finished=False)
        if on_result is not None:
            on_result(r)

    report(finished=False)
    if client is not None:
        _run_on_dask(pairs, out, options, task, client, collect)
    else:
        _run_on_pool(pairs, out, options, task, executor["workers"], collect)
    report(finished=True)
    seconds = round(time.perf_counter() - t0, 3)
    results = tuple(by_name[p.name] for p in pairs)
    return BatchResult(results, path, seconds)


def _run_on_pool(
    pairs: Sequence[Pair],
    out: Path,
    options: DetectionOptions,
    task: _TaskArgs,
    n: int,
    collect: Callable[[PairResult], None],
) -> None:
    """Run the pairs on ``n`` spawned processes, at most ``n`` in flight.

    Keeping no more pairs in flight than workers tells which pairs a dead worker (kill -9,
    out of memory) took down with the pool: those are run again, each alone, in a new pool;
    a pair whose lone worker dies too is recorded as failed. Pairs not yet started are
    unaffected.
    """
    import multiprocessing

    # spawn: a fresh interpreter whose initializer runs before numpy/GDAL load (fork would
    # inherit this process's BLAS threads and GDAL cache)
    ctx = multiprocessing.get_context("spawn")
    # a spawned worker starts without logging config: give it this process's level when the
    # application configured logging (e.g. `satdelta -v`), else leave it quiet
    log_level = log.getEffectiveLevel() if logging.getLogger().handlers else None
    with pool_progress(ctx, task.progress) as reporter:
        todo: deque[Pair] = deque(pairs)
        attempts: dict[str, int] = {}
        suspects: set[str] = set()  # in flight when a worker died: rerun one at a time
        idle_pools = 0
        while todo:
            if idle_pools >= 3:
                raise BatchError(
                    f"local worker processes die before running any pair ({len(todo)} left); "
                    "check that `python -c 'import satdelta.imagery.pipeline'` works."
                )
            lost: list[Pair] = []
            started = sum(attempts.values())
            with ProcessPoolExecutor(
                max_workers=n,
                mp_context=ctx,
                initializer=init_worker,
                initargs=(log_level, worker_threads(n)),
            ) as pool:
                inflight: dict[Future[PairResult], Pair] = {}
                while todo or inflight:
                    limit = 1 if suspects else n
                    while todo and len(inflight) < limit and not lost:
                        pair = todo.popleft()
                        try:
                            fut = pool.submit(
                                run_pair, pair, str(out), options, **task.of(pair, reporter)
                            )
                        except BrokenProcessPool:  # died between tasks: nobody to blame
                            todo.appendleft(pair)
                            break
                        attempts[pair.name] = attempts.get(pair.name, 0) + 1
                        inflight[fut] = pair
                    if not inflight:
                        break
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        pair = inflight.pop(fut)
                        try:
                            res = fut.result()
                        except BrokenProcessPool:
                            lost.append(pair)
                            continue
                        suspects.discard(pair.name)
                        collect(replace(res, attempts=attempts[pair.name]))
                    if lost:  # the pool is unusable; its other in-flight pairs are lost too
                        wait(inflight)
                        for fut, pair in inflight.items():
                            try:
                                collect(replace(fut.result(), attempts=attempts[pair.name]))
                            except BrokenProcessPool:
                                lost.append(pair)
                        inflight.clear()
                        break
            idle_pools = idle_pools + 1 if sum(attempts.values()) == started else 0
            for pair in reversed(lost):
                if pair.name in suspects:  # died again, alone: this pair kills its worker
                    suspects.discard(pair.name)
                    error = (
                        "its worker process died twice while running it (out of memory or "
                        "killed?); try it alone with `satdelta detect`"
                    )
                    collect(_lost(pair, out, error, attempts=attempts[pair.name]))
                else:
                    log.warning("a worker process died; %s will be run again", pair.name)
                    suspects.add(pair.name)
                    todo.appendleft(pair)


@dataclass(frozen=True)
class _TaskArgs:
    """What every pair's task is given besides the pair: rerun, runner, progress."""

    force: bool
    runner: str
    progress: PairProgress | None

    def of(self, pair: Pair, reporter: Callable[[str], Any] | None) -> dict[str, Any]:
        """:func:`run_pair`'s keyword arguments for ``pair`` (its progress reporter, if any)."""
        return {
            "force": self.force,
            "runner": self.runner,
            "progress": reporter(pair.name) if reporter is not None else None,
        }


def _lost(pair: Pair, out: Path, error: str, *, attempts: int = 1) -> PairResult:
    """The result of a pair whose worker gave none (it died, or the cluster lost it)."""
    return PairResult(
        pair.name, "failed", str(out / pair.name), 0.0, error=error, attempts=attempts
    )


def _connect(address: str) -> Any:
    """A dask.distributed Client of the scheduler at ``address`` (BatchError when unreachable)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise BatchError(
            "--scheduler needs dask.distributed, which is not installed; install satdelta[batch]."
        ) from exc
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(
            f"cannot reach the Dask scheduler at {address}: {one_line_error(exc)}. Expected a "
            "running scheduler address such as tcp://127.0.0.1:8786."
        ) from exc
    return client


def _run_on_dask(
    pairs: Sequence[Pair],
    out: Path,
    options: DetectionOptions,
    task: _TaskArgs,
    client: Any,
    collect: Callable[[PairResult], None],
) -> None:
    import uuid

    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # task keys unique on a shared cluster
    # the client is closed by run_batch
    if not client.scheduler_info().get("workers"):
        log.warning("the Dask scheduler has no workers yet: the pairs wait for one")
    with dask_progress(client, task.progress, token) as reporter:
        futures = {
            client.submit(
                run_pair,
                p,
                str(out),
                options,
                **task.of(p, reporter),
                key=f"satdelta-pair-{token}-{i}-{p.name}",
                pure=False,
            ): p
            for i, p in enumerate(pairs)
        }
        for fut in as_completed(list(futures)):
            pair = futures[fut]
            try:
                collect(fut.result())
            except Exception as exc:  # the task itself never raises: the worker was lost
                error = f"Dask task failed: {type(exc).__name__}: {one_line_error(exc)}"
                collect(_lost(pair, out, error))


def _utc_now() -> str:
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")
