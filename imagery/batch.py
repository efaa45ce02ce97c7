"""Change detection over many before/after pairs: a pairs list, one task per pair, a pool.

The batch job runs :func:`satdelta.imagery.pipeline.run_detection` and
:func:`~satdelta.imagery.pipeline.write_outputs` once per pair, each pair into
``OUTDIR/<name>/`` exactly as ``satdelta detect`` writes it. Tasks run on a local
:class:`concurrent.futures.ProcessPoolExecutor` by default, or on a Dask cluster
(:mod:`dask.distributed`) when a scheduler address is given; both use the same task function,
:func:`run_pair`, so there is no scheduler of our own.

A pair that fails is recorded with its one-line error and the others go on. A pair whose
outputs are complete and whose recorded ``run.json`` has the same inputs (sha256, or a URL's
ETag/Last-Modified/length) and the same options (every option of ``run_detection``, defaults
included) is skipped unless ``force`` is given. Options that are wrong whatever the scenes are
rejected once, before any work (:func:`check_options`).
``OUTDIR/batch.json`` says what happened to every pair.

A process-pool worker sets its thread and cache limits before numpy and GDAL load: its
initializer lives in the standard-library-only :mod:`satdelta.imagery.worker_setup`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from satdelta.imagery.errors import InvalidParameterError, OutputError, SatdeltaError, one_line
from satdelta.imagery.parallel import (
    MAX_DEFAULT_THREADS,
    available_cpus,
    thread_count,
    threads,
)
from satdelta.imagery.pipeline import check_detection_options as check_options
from satdelta.imagery.pipeline import chmod_as_created
from satdelta.imagery.pipeline import full_detection_options as _full_options
from satdelta.imagery.worker_setup import init_worker, limit_worker_resources, operator_threads

__all__ = [
    "Pair",
    "PairResult",
    "BatchResult",
    "PairsFileError",
    "BatchError",
    "read_pairs",
    "run_pair",
    "run_batch",
    "check_options",
    "limit_worker_resources",
    "worker_threads",
    "BATCH_FILE",
]

log = logging.getLogger(__name__)

#: Name of the batch report written in OUTDIR.
BATCH_FILE = "batch.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_URL_PREFIXES = ("http://", "https://", "/vsi")

Status = Literal["done", "skipped", "failed"]


class PairsFileError(SatdeltaError, ValueError):
    """The pairs list (CSV or JSON) is missing, malformed, or names pairs unsafely."""


class BatchError(SatdeltaError, RuntimeError):
    """The batch could not be run at all (e.g. the Dask scheduler cannot be reached)."""


@dataclass(frozen=True)
class Pair:
    """One before/after pair of the batch.

    Attributes
    ----------
    name : str
        Folder name of the pair's outputs under OUTDIR (letters, digits, ``.``, ``_``, ``-``;
        not starting with ``.``).
    before, after : str
        Absolute local paths, or http(s) URLs / GDAL ``/vsi`` names as given.
    """

    name: str
    before: str
    after: str

    def __post_init__(self) -> None:
        if not _SAFE_NAME.match(self.name) or self.name.lower() == BATCH_FILE:
            raise PairsFileError(
                f"pair name {self.name!r} cannot be a folder name under OUTDIR; expected 1-100 "
                "letters, digits, '.', '_' or '-', not starting with '.' or '-' (and not "
                f"{BATCH_FILE!r}). Rename the pair."
            )
        for what, src in (("before", self.before), ("after", self.after)):
            if not isinstance(src, str) or not src.strip():
                raise PairsFileError(
                    f"pair {self.name!r} has an empty {what}; expected a path or URL."
                )


@dataclass(frozen=True)
class PairResult:
    """What happened to one pair (one entry of batch.json's ``pairs``).

    Attributes
    ----------
    name : str
    status : {"done", "skipped", "failed"}
        ``skipped``: outputs were complete for the same inputs and options.
    outdir : str
        The pair's output folder.
    seconds : float
        Wall time of the task on its worker (check, detection and writing).
    polygons : int or None
        Changed regions found (None when failed).
    changed_area_m2 : float or None
        Changed area in m² (None when failed or the imagery has no pixel size).
    error : str or None
        One-line error of a failed pair.
    worker : dict
        Where the task ran: ``host``, ``pid``, on Dask the worker ``address``, and
        ``threads``, the threads the detection used (:func:`worker_threads`).
    attempts : int
        Times the pair was started: 2 when its local worker process died (killed, out of
        memory) and it was run again on its own.
    """

    name: str
    status: Status
    outdir: str
    seconds: float
    polygons: int | None = None
    changed_area_m2: float | None = None
    error: str | None = None
    worker: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


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


# ---------------------------------------------------------------------------- pairs list


def _resolve_source(text: str, base: Path) -> str:
    s = text.strip()
    if s.startswith(_URL_PREFIXES):
        return s
    p = Path(s).expanduser()
    if not p.is_absolute():
        p = base / p
    return str(p.absolute())


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Read a pairs list: a CSV with header ``name,before,after`` or a JSON list.

    Relative paths are relative to the list's folder; http(s) URLs and GDAL ``/vsi`` names are
    kept as given. Extra CSV columns (notes...) are ignored. The JSON form is a list of objects
    with the same three keys.

    Parameters
    ----------
    path : str or os.PathLike
        ``.json`` files (or content starting with ``[``) are read as JSON, others as CSV.

    Returns
    -------
    list of Pair
        In file order.

    Raises
    ------
    PairsFileError
        Missing or unreadable file, wrong header or keys, empty fields, no pairs, duplicate
        names (case-insensitive, since some filesystems are), or names that are not plain
        folder names (``../x``, ``a/b``, ``.hidden``).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "pairs.csv"), "w") as fh:
    ...     _ = fh.write("name,before,after\\nsunan,b.tif,https://example.org/a.tif\\n")
    >>> p = read_pairs(os.path.join(d, "pairs.csv"))[0]
    >>> p.name, p.before == os.path.join(d, "b.tif"), p.after
    ('sunan', True, 'https://example.org/a.tif')
    """
    src = Path(path).expanduser()
    if not src.is_file():
        what = "a folder" if src.is_dir() else "missing"
        raise PairsFileError(
            f"pairs list {src} is {what}; expected a CSV (name,before,after) or JSON list file."
        )
    try:
        text = src.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsFileError(
            f"cannot read pairs list {src}: {exc}. Expected a UTF-8 CSV or JSON file."
        ) from exc
    base = src.absolute().parent
    if src.suffix.lower() == ".json" or text.lstrip().startswith("["):
        rows = _json_rows(text, src)
    else:
        rows = _csv_rows(text, src)
    pairs: list[Pair] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        name = row["name"].strip()
        if not row["before"].strip() or not row["after"].strip() or not name:
            raise PairsFileError(
                f"{src} {where}: name, before and after must all be given; got {row!r}."
            )
        try:
            pair = Pair(
                name, _resolve_source(row["before"], base), _resolve_source(row["after"], base)
            )
        except PairsFileError as exc:
            raise PairsFileError(f"{src} {where}: {exc}") from None
        key = name.lower()
        if key in seen:
            raise PairsFileError(
                f"{src} {where}: pair name {name!r} repeats {seen[key]}; each pair needs its "
                "own name (it is its output folder)."
            )
        seen[key] = where
        pairs.append(pair)
    if not pairs:
        raise PairsFileError(f"pairs list {src} lists no pairs; expected at least one row.")
    return pairs


def _csv_rows(text: str, src: Path) -> list[tuple[str, dict[str, str]]]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise PairsFileError(
            f"pairs list {src} is empty; expected a header name,before,after and one row per pair."
        ) from None
    missing = [k for k in ("name", "before", "after") if k not in header]
    if missing or len(set(header)) != len(header):
        raise PairsFileError(
            f"pairs list {src} has header {','.join(header)!r}; expected the columns "
            "name,before,after (extra columns are ignored)."
        )
    rows = []
    for i, values in enumerate(reader, start=2):
        if len(values) < len(header):
            raise PairsFileError(
                f"{src} row {i}: {len(values)} values for {len(header)} columns; expected "
                "name,before,after."
            )
        rows.append((f"row {i}", dict(zip(header, values, strict=False))))
    return rows


def _json_rows(text: str, src: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PairsFileError(
            f"pairs list {src} is not valid JSON ({exc}); expected a list of "
            '{"name": ..., "before": ..., "after": ...} objects.'
        ) from None
    if not isinstance(data, list):
        raise PairsFileError(
            f"pairs list {src} holds a JSON {type(data).__name__}; expected a list of "
            '{"name": ..., "before": ..., "after": ...} objects.'
        )
    rows = []
    for i, item in enumerate(data):
        ok = isinstance(item, dict) and all(
            isinstance(item.get(k), str) for k in ("name", "before", "after")
        )
        if not ok:
            raise PairsFileError(
                f"{src} item {i}: got {item!r}; expected an object with string members name, "
                "before and after."
            )
        rows.append((f"item {i}", {k: item[k] for k in ("name", "before", "after")}))
    return rows


# ---------------------------------------------------------------------------- one task


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


def _worker_info() -> dict[str, Any]:
    info: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        from distributed import get_worker

        info["address"] = get_worker().address
    except (ImportError, ValueError):  # not on a Dask worker
        pass
    return info


def _one_line(exc: BaseException) -> str:
    return one_line(exc) or type(exc).__name__


def _recorded(outdir: Path) -> dict[str, Any] | None:
    """The pair's run.json when all the outputs it lists are present, else None."""
    try:
        rec = json.loads((outdir / "run.json").read_text(encoding="utf-8"))
        outputs = rec["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(outputs, list) or not {"mask.tif", "score.tif"} <= set(outputs):
        return None
    inputs = rec.get("inputs")
    if not isinstance(inputs, dict) or not all(
        isinstance(inputs.get(k), dict) for k in ("before", "after")
    ):
        return None  # an edited or foreign run.json: recompute
    if not all((outdir / n).is_file() for n in outputs):
        return None
    return rec


def _same_inputs(rec: dict[str, Any], before: Any, after: Any) -> bool:
    from satdelta.imagery.pipeline import _scene_ref

    for key, scene in (("before", before), ("after", after)):
        ref = _scene_ref(scene)
        got = rec.get("inputs", {}).get(key, {})
        remote = ref.get("remote") or {}
        if ref["sha256"] is None and not (remote.get("etag") or remote.get("last_modified")):
            return False  # nothing that would change with the content: recompute
        if any(got.get(k) != ref.get(k) for k in ("source", "sha256", "remote")):
            return False
    return True


def _summary_numbers(rec: dict[str, Any]) -> tuple[int | None, float | None]:
    polys = rec.get("polygons", {}).get("count")
    area = rec.get("detection", {}).get("changed_area_m2")
    return polys, (None if area is None else float(area))


def run_pair(
    pair: Pair,
    outdir: str | os.PathLike[str],
    options: dict[str, Any],
    *,
    force: bool = False,
) -> PairResult:
    """Run (or skip) one pair into ``outdir/<pair.name>/``; never raises for a bad pair.

    The task function of :func:`run_batch`, on a process pool or a Dask worker.

    Parameters
    ----------
    pair : Pair
    outdir : str or os.PathLike
        The batch's output folder.
    options : dict
        Keyword options of :func:`~satdelta.imagery.pipeline.run_detection`; the missing ones
        are its defaults.
    force : bool, default False
        Recompute even when the recorded run has the same inputs and options (all of them,
        defaults included: run.json's ``options`` must equal them exactly).

    Returns
    -------
    PairResult
        ``failed`` with a one-line error for any exception of the pair (missing file, no
        overlap, unwritable output, or a bug, named by its type).
    """
    t0 = time.perf_counter()
    target = Path(outdir) / pair.name
    worker = _worker_info()
    # a Dask worker runs several tasks at once in its threads: one thread each, unless the
    # operator set SATDELTA_THREADS (local pool workers got theirs from worker_setup.init_worker)
    task_threads = 1 if "address" in worker and not operator_threads() else None

    def result(status: Status, **kw: Any) -> PairResult:
        secs = round(time.perf_counter() - t0, 3)
        return PairResult(pair.name, status, str(target), secs, worker=worker, **kw)

    try:
        from satdelta.imagery.pipeline import run_detection, write_outputs
        from satdelta.imagery.scene import open_scene

        with threads(task_threads):
            worker["threads"] = thread_count()
            opts = _full_options(options)
            before = open_scene(pair.before)
            after = open_scene(pair.after)
            rec = None if force else _recorded(target)
            if rec is not None and _same_options(rec.get("options"), opts):
                if _same_inputs(rec, before, after):
                    polys, area = _summary_numbers(rec)
                    log.info("%s: outputs are up to date, skipped", pair.name)
                    return result("skipped", polygons=polys, changed_area_m2=area)
            run = run_detection(before, after, **opts)
            write_outputs(run, target)
            polys, area = _summary_numbers(run.summary())
            return result("done", polygons=polys, changed_area_m2=area)
    except SatdeltaError as exc:
        log.info("%s failed: %s", pair.name, exc)
        return result("failed", error=_one_line(exc))
    except Exception as exc:  # a bug or an unexpected library error: still only this pair
        # the one-line error goes into batch.json; the traceback only with debug logging (a
        # spawned worker without logging config would print it via logging's last resort)
        err = f"internal error: {type(exc).__name__}: {_one_line(exc)}"
        log.info("%s failed: %s", pair.name, err, exc_info=log.isEnabledFor(logging.DEBUG))
        return result("failed", error=err)


def _same_options(recorded: Any, full: dict[str, Any]) -> bool:
    """True when run.json's options are exactly ``full`` (every option, defaults included)."""
    return isinstance(recorded, dict) and recorded == full


# ---------------------------------------------------------------------------- the batch


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
    options: dict[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    pairs_source: str | None = None,
    on_result: Callable[[PairResult], None] | None = None,
) -> BatchResult:
    """Run every pair on a local process pool, or on a Dask cluster, and write batch.json.

    Parameters
    ----------
    pairs : sequence of Pair
        From :func:`read_pairs`; names must be unique.
    outdir : str or os.PathLike
        Each pair writes ``outdir/<name>/``; ``outdir/batch.json`` is the report.
    options : dict, optional
        Keyword options of :func:`~satdelta.imagery.pipeline.run_detection`, the same for
        every pair.
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
        Options that are wrong whatever the scenes (see :func:`check_options`), or
        ``workers`` < 1; raised before OUTDIR is made or any pair starts.
    """
    from satdelta.imagery.pipeline import check_outdir

    opts = check_options(options or {})  # fails before OUTDIR is made or any work
    if workers is not None and workers < 1:
        raise InvalidParameterError(f"workers must be >= 1; got {workers}.")
    names = [p.name.lower() for p in pairs]
    if len(set(names)) != len(names):
        raise InvalidParameterError("pair names must be unique (they are output folder names).")
    out = check_outdir(outdir)
    client = _connect(scheduler) if scheduler else None  # fails before OUTDIR is made
    try:
        return _run_batch(
            pairs, out, opts, workers, scheduler, client, force, pairs_source, on_result
        )
    finally:
        if client is not None:
            client.close()


def _run_batch(
    pairs: Sequence[Pair],
    out: Path,
    opts: dict[str, Any],
    workers: int | None,
    scheduler: str | None,
    client: Any,
    force: bool,
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
            "options": opts,
            "force": force,
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
        _run_on_dask(pairs, out, opts, force, client, collect)
    else:
        _run_on_pool(pairs, out, opts, force, executor["workers"], collect)
    report(finished=True)
    seconds = round(time.perf_counter() - t0, 3)
    results = tuple(by_name[p.name] for p in pairs)
    return BatchResult(results, path, seconds)


def _run_on_pool(
    pairs: Sequence[Pair],
    out: Path,
    opts: dict[str, Any],
    force: bool,
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
                        fut = pool.submit(run_pair, pair, str(out), opts, force=force)
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
                collect(
                    PairResult(
                        pair.name,
                        "failed",
                        str(out / pair.name),
                        0.0,
                        error="its worker process died twice while running it (out of "
                        "memory or killed?); try it alone with `satdelta detect`",
                        attempts=attempts[pair.name],
                    )
                )
            else:
                log.warning("a worker process died; %s will be run again", pair.name)
                suspects.add(pair.name)
                todo.appendleft(pair)


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
            f"cannot reach the Dask scheduler at {address}: {_one_line(exc)}. Expected a running "
            "scheduler address such as tcp://127.0.0.1:8786."
        ) from exc
    return client


def _run_on_dask(
    pairs: Sequence[Pair],
    out: Path,
    opts: dict[str, Any],
    force: bool,
    client: Any,
    collect: Callable[[PairResult], None],
) -> None:
    import uuid

    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # task keys unique on a shared cluster
    # the client is closed by run_batch
    if not client.scheduler_info().get("workers"):
        log.warning("the Dask scheduler has no workers yet: the pairs wait for one")
    futures = {
        client.submit(
            run_pair,
            p,
            str(out),
            opts,
            force=force,
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
            collect(
                PairResult(
                    pair.name,
                    "failed",
                    str(out / pair.name),
                    0.0,
                    error=f"Dask task failed: {type(exc).__name__}: {_one_line(exc)}",
                )
            )


def _utc_now() -> str:
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def format_result(r: PairResult) -> str:
    """One tab-separated summary line: name, status, polygons, changed m², seconds, error."""
    polys = "-" if r.polygons is None else str(r.polygons)
    area = (
        "-"
        if r.changed_area_m2 is None or not math.isfinite(r.changed_area_m2)
        else (f"{r.changed_area_m2:.1f}")
    )
    return "\t".join([r.name, r.status, polys, area, f"{r.seconds:.2f}", r.error or ""]).rstrip()
