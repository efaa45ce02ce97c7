"""Run (or skip) one pair of a batch: :func:`run_pair`, the task every batch worker runs.

A pair whose outputs are complete and whose recorded ``run.json`` has the same inputs (sha256,
or a URL's ETag/Last-Modified/length) and the same
:class:`~satdelta.imagery.options.DetectionOptions` is skipped unless ``force`` is given. The
task never raises for a bad pair: its one-line error goes into the :class:`PairResult`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from satdelta.imagery.errors import SatdeltaError, one_line
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.pairs import Pair
from satdelta.imagery.parallel import thread_count, threads
from satdelta.imagery.worker_setup import operator_threads

__all__ = ["PairResult", "Status", "format_result", "one_line_error", "run_pair"]

# the batch job's logger: a pair's messages go where the rest of the batch's go
log = logging.getLogger("satdelta.imagery.batch")

Status = Literal["done", "skipped", "failed"]


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
        ``threads``, the threads the detection used
        (:func:`~satdelta.imagery.batch.worker_threads`).
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


def _worker_info() -> dict[str, Any]:
    info: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        from distributed import get_worker

        info["address"] = get_worker().address
    except (ImportError, ValueError):  # not on a Dask worker
        pass
    return info


def one_line_error(exc: BaseException) -> str:
    """``exc`` on one line, or its type's name when it has no message."""
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
    """True when run.json's inputs are ``before`` and ``after`` with the same content."""
    from satdelta.imagery.pipeline import scene_ref

    for key, scene in (("before", before), ("after", after)):
        ref = scene_ref(scene)
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
    options: DetectionOptions = DetectionOptions(),
    *,
    force: bool = False,
    runner: str = "auto",
    progress: Callable[[str, int, int], None] | None = None,
) -> PairResult:
    """Run (or skip) one pair into ``outdir/<pair.name>/``; never raises for a bad pair.

    The task function of :func:`run_batch`, on a process pool or a Dask worker.

    Parameters
    ----------
    pair : Pair
    outdir : str or os.PathLike
        The batch's output folder.
    options : DetectionOptions, optional
        What to run (the defaults: ``"auto"`` everywhere).
    force : bool, default False
        Recompute even when the recorded run has the same inputs and the same options.
    runner : {"auto", "whole", "blocks"}, default "auto"
        As :func:`~satdelta.imagery.block_run.uses_blocks` takes it.
    progress : callable, optional
        ``progress(stage, done, total)`` (:data:`~satdelta.imagery.block_run.Progress`): the
        block runner's stages and blocks, or the whole-array stages (``total`` 0), then
        ``write``.

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
    report = progress if progress is not None else _quiet

    def result(status: Status, **kw: Any) -> PairResult:
        secs = round(time.perf_counter() - t0, 3)
        return PairResult(pair.name, status, str(target), secs, worker=worker, **kw)

    try:
        from satdelta.imagery.block_run import detect_in_files, uses_blocks
        from satdelta.imagery.outputs import write_outputs
        from satdelta.imagery.pipeline import detection_stages
        from satdelta.imagery.scene import open_scene

        with threads(task_threads):
            worker["threads"] = thread_count()
            before = open_scene(pair.before)
            after = open_scene(pair.after)
            rec = None if force else _recorded(target)
            if rec is not None and _same_options(rec.get("options"), options):
                if _same_inputs(rec, before, after):
                    polys, area = _summary_numbers(rec)
                    log.info("%s: outputs are up to date, skipped", pair.name)
                    return result("skipped", polygons=polys, changed_area_m2=area)
            if uses_blocks(before, options, runner):  # large: block by block, bounded memory
                summary = detect_in_files(before, after, target, options, progress=report)
            else:
                stages = detection_stages(before, after, options)
                while True:
                    try:
                        report(next(stages).name, 0, 0)
                    except StopIteration as finished:
                        run = finished.value
                        break
                report("write", 0, 0)
                write_outputs(run, target)
                summary = run.summary()
            polys, area = _summary_numbers(summary)
            return result("done", polygons=polys, changed_area_m2=area)
    except SatdeltaError as exc:
        log.info("%s failed: %s", pair.name, exc)
        return result("failed", error=one_line_error(exc))
    except Exception as exc:  # a bug or an unexpected library error: still only this pair
        # the one-line error goes into batch.json; the traceback only with debug logging (a
        # spawned worker without logging config would print it via logging's last resort)
        err = f"internal error: {type(exc).__name__}: {one_line_error(exc)}"
        log.info("%s failed: %s", pair.name, err, exc_info=log.isEnabledFor(logging.DEBUG))
        return result("failed", error=err)


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def _same_options(recorded: Any, options: DetectionOptions) -> bool:
    """True when run.json's options are ``options`` (an option it does not record: the default).

    Options this version does not know, or no longer accepts, are not the same run.
    """
    if not isinstance(recorded, dict):
        return False
    try:
        return DetectionOptions.from_dict(recorded) == options
    except SatdeltaError:
        return False


def format_result(r: PairResult) -> str:
    """One tab-separated summary line: name, status, polygons, changed m², seconds, error."""
    polys = "-" if r.polygons is None else str(r.polygons)
    area = (
        "-"
        if r.changed_area_m2 is None or not math.isfinite(r.changed_area_m2)
        else (f"{r.changed_area_m2:.1f}")
    )
    return "\t".join([r.name, r.status, polys, area, f"{r.seconds:.2f}", r.error or ""]).rstrip()
