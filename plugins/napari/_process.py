"""Detection in a long-lived child process (no napari, no Qt).

The Change annotator runs alignment, detection, the candidate save and the evidence-row
read in a separate Python process, started ("spawn", never fork: the parent is a Qt
process) when the dock opens, so that

* the parent's main thread (napari creating and repainting layers) no longer shares one
  interpreter lock with the detection's Python-heavy stages (vectorise, store save);
* Cancel stops the run at once, at any stage: the child is killed (a killed sqlite
  transaction rolls back, so either all candidates were saved or none) and a fresh child
  is started;
* a crash in GDAL or pyproj kills the child, not napari: the run ends with one
  :class:`DetectionProcessDied` error and the next Run starts a new child.

Protocol (one :class:`multiprocessing.connection.Connection`, pickles): the child sends
``("ready", pid)`` once its imports are done; per job (:class:`DetectionJob`) it sends
``("step", step)`` tuples, once ``("maps", step, meta)`` with the score, changed and valid
maps in a shared-memory block the parent named (or, for a pair run block by block,
``("layers", step, layers)`` naming the run folder's files, see :mod:`._block_detection`),
``("saving", change_id)`` (the store's
latest change before its save, so a cancel can tell whether the save committed), then
``("result", fields)`` or ``("error", exc)`` / ``("bug", traceback)``.  The parent copies
the maps out and unlinks the block always (also after an error, a cancel or a crash).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import types
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import TYPE_CHECKING, Any

import numpy as np
from satdelta.imagery.block_run import BLOCK_PX, BLOCKS_FROM_PX
from satdelta.imagery.errors import SatdeltaError

if TYPE_CHECKING:
    from satdelta.imagery.options import DetectionOptions

__all__ = [
    "Cancelled",
    "DetectionJob",
    "DetectionProcess",
    "DetectionProcessDied",
    "SHM_PREFIX",
]

log = logging.getLogger(__name__)

#: Prefix of the shared-memory blocks (``/dev/shm/<name>`` on Linux) the maps travel in.
SHM_PREFIX = "satdelta-maps-"

#: Seconds the child may wait for the store's write lock (it does not block the window).
CHILD_LOCK_TIMEOUT = 10.0

#: How much lower the detection child's scheduling priority is than the window's (``nice``
#: steps; 10 gives the window about nine tenths of a core both want on Linux).
CHILD_NICENESS = 10

_PR_SET_PDEATHSIG = 1
_jobs = itertools.count(1)


class DetectionProcessDied(SatdeltaError, RuntimeError):
    """The detection child process ended in the middle of a run (crash, kill, out of memory)."""


class _ChildError(SatdeltaError, ValueError):
    """A SatdeltaError raised in the child that could not travel as itself (pickling)."""


@dataclass(frozen=True)
class DetectionJob:
    """One Run, as sent to the child.

    Attributes
    ----------
    before, after : str
        Paths or URLs of the two scenes.
    options : DetectionOptions
        What the analyst chose in the form.
    store : str or None
        The evidence store the candidates are saved to (None: save nothing).
    report_id, claim_id : int or None
        Report whose rows are read back and claim the candidates go to.
    frame : dict or None
        :meth:`MapFrame.to_dict` of the viewer's frame, to read the rows back in it.
    run_folder : str or None
        Where a pair run block by block writes its outputs (None: such pairs run whole).
    blocks_from_px : int
        Grids of at least this many pixels run block by block
        (:func:`~._block_detection.runs_in_blocks`; default the CLI's).
    block_px : int
        Side of a block (the block runner's default).
    """

    before: str
    after: str
    options: DetectionOptions
    store: str | None = None
    report_id: int | None = None
    claim_id: int | None = None
    frame: dict[str, Any] | None = None
    run_folder: str | None = None
    blocks_from_px: int = BLOCKS_FROM_PX
    block_px: int = BLOCK_PX


@dataclass(frozen=True)
class Cancelled:
    """What a run returns when it was cancelled (the child was killed).

    Attributes
    ----------
    saved : bool or None
        True when the candidates' save had committed before the kill (all were saved),
        False when nothing was saved, None when the store could not be read to tell (the
        save is still all or nothing).
    """

    saved: bool | None

    @property
    def message(self) -> str:
        """The status line after the cancel."""
        if self.saved is None:
            return "cancelled during the save: all candidates or none were saved (reloaded)"
        return (
            "cancelled after the candidates were saved (all of them)"
            if self.saved
            else "cancelled: nothing saved"
        )


class DetectionProcess:
    """A warm child process that runs detection jobs one at a time.

    Call :meth:`start` from a thread that lives as long as the process should (the GUI's
    main thread): Linux ends the child when the *thread* that started it exits
    (``PR_SET_PDEATHSIG``), which is what makes the child never outlive napari.
    """

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._ready = False
        self._lock = threading.Lock()  # one reader of the pipe at a time
        self._cancelled = False
        self._finalizer: Any = None
        self.started_at: float | None = None
        self.ready_at: float | None = None

    # -- life cycle -------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """Process id of the child (None before :meth:`start`)."""
        return self._proc.pid if self._proc is not None else None

    def is_alive(self) -> bool:
        """True while the child runs."""
        return self._proc is not None and self._proc.is_alive()

    @property
    def ready(self) -> bool:
        """True once the child said its imports are done."""
        return self._ready

    def start(self) -> None:
        """Start the child in the background unless it is running (returns at once)."""
        if self._cancelled and self._proc is not None:
            # killed by cancel(): its thread group may still be exiting (the leader shows as
            # a zombie before the other threads are gone, and waitpid waits for them all)
            self._proc.join(5.0)
        if self.is_alive():
            return
        self.stop()
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_child_main,
            args=(child_conn, os.getpid()),
            name="satdelta-detection",
            daemon=True,  # multiprocessing's exit handler ends it with the parent
        )
        self.started_at = time.perf_counter()
        self.ready_at = None
        with _bare_main():
            proc.start()
        child_conn.close()  # else the parent never sees EOF when the child dies
        self._proc, self._conn, self._ready = proc, parent_conn, False
        self._cancelled = False
        self._finalizer = weakref.finalize(self, _kill, proc, parent_conn)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the child finished its imports; False on timeout.

        Raises
        ------
        DetectionProcessDied
            The child ended before it was ready.
        """
        if self._ready:
            return True
        if self._proc is None:
            self.start()
        with self._lock:
            if self._ready:
                return True
            if timeout is not None and not self._conn.poll(timeout):
                return False
            try:
                kind, _pid = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise self._died("while starting") from exc
            assert kind == "ready", kind
            self._ready = True
            self.ready_at = time.perf_counter()
            return True

    def stop(self, timeout: float = 2.0) -> None:
        """End the child: EOF on its pipe, then a kill if it does not exit in ``timeout``."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._ready = False
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            conn.close()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout)
        proc.close()

    def cancel(self) -> None:
        """Kill the child now (any stage); the running :meth:`steps` returns :class:`Cancelled`.

        Safe to call from another thread than the one iterating :meth:`steps`.  Call
        :meth:`start` afterwards for a fresh warm child.
        """
        self._cancelled = True
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.kill()

    # -- one run ----------------------------------------------------------------
    def steps(
        self,
        job: DetectionJob,
        mark: Any = None,
        changes: Callable[[], Sequence[Any]] | None = None,
    ) -> Generator[tuple[Any, ...], None, Any]:
        """Run ``job`` in the child, yielding the widget's progress steps.

        Call this on the thread that started the child (it restarts a dead one, and a
        child's life is tied to the thread that started it); iterate the returned
        generator anywhere (the widget's worker thread), and :meth:`cancel` from anywhere,
        also before the iteration began.

        Yields ``(step, total, message)`` tuples, one with a
        :class:`~._detection.ChangeLayers` fourth once the maps exist, then
        ``(5, 6, "saving N candidates")`` when the job has a store; returns a
        :class:`~._detection.DetectionResult` (its ``evidence`` holds the rows the child
        read back, marked with ``mark``) or :class:`Cancelled`.

        ``changes`` returns the store's change log read through a connection this process
        already has (the widget passes its session's ``store.changes``); a cancel during
        the save uses it to tell whether the save committed (default: opens the store).

        Raises
        ------
        SatdeltaError
            The library's error in the child (bad input), with its message.
        DetectionProcessDied
            The child ended during the run; the next :meth:`steps` starts a new one.
        RuntimeError
            A bug in the child, with the child's traceback.
        """
        if self._cancelled or not self.is_alive():
            self.start()  # a cancelled child was killed, though it may not be reaped yet
        self._cancelled = False
        return self._steps(job, mark, changes)

    def _steps(
        self, job: DetectionJob, mark: Any, changes: Callable[[], Sequence[Any]] | None
    ) -> Generator[tuple[Any, ...], None, Any]:
        from satdelta.imagery.detect import ChangeMaps
        from satdelta.plugins.napari._detection import ChangeLayers, DetectionResult
        from satdelta.plugins.napari._session import EvidenceRows

        if self._cancelled:  # cancelled before the worker began
            return Cancelled(saved=False)
        shm_name = f"{SHM_PREFIX}{os.getpid()}-{next(_jobs)}"
        conn = self._conn
        layers: Any = None
        saving: int | None = None  # the store's latest change id when the save began
        # no lock is held across a yield: a consumer that stops iterating must not block
        # the next run (the pipe has one reader at a time: the widget runs one job at a time)
        try:
            try:
                self.wait_ready()
            except DetectionProcessDied:
                if self._cancelled:
                    return Cancelled(saved=False)
                raise
            conn.send((job, shm_name))
            while True:
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError) as exc:
                    if self._cancelled:
                        if saving is None:  # killed before its save began
                            return Cancelled(saved=False)
                        return Cancelled(saved=_child_saved(job, saving, changes))
                    raise self._died("during the run") from exc
                if kind == "step":
                    yield payload
                elif kind == "saving":
                    saving = payload
                elif kind == "maps":
                    step, meta = payload
                    maps = ChangeMaps(*_take_maps(shm_name, meta["shape"]), **meta["maps"])
                    layers = ChangeLayers(maps, meta["transform"], meta["crs"])
                    yield (*step, layers)
                elif kind == "layers":  # a block run: its maps are files, shown lazily
                    layers = payload[3]
                    yield payload
                elif kind == "result":
                    rows = payload.pop("rows")
                    evidence = EvidenceRows(rows, mark) if rows is not None else None
                    return DetectionResult(
                        layers.maps, layers.transform, layers.crs, evidence=evidence, **payload
                    )
                elif kind == "error":
                    raise payload
                else:  # "bug"
                    raise RuntimeError(f"detection process failed:\n{payload}")
        finally:
            _unlink(shm_name)

    def _died(self, when: str) -> DetectionProcessDied:
        proc = self._proc
        code = None
        if proc is not None:
            proc.join(1.0)
            code = proc.exitcode
        how = (
            f"killed by signal {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exit code {code}"
        )
        self._ready = False
        return DetectionProcessDied(
            f"the detection process stopped {when} ({how}; a crash in GDAL/PROJ, a kill or "
            "running out of memory); napari and the store are unharmed: press Run again "
            "to restart it."
        )


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Let a spawned child skip the parent's ``__main__`` script.

    "spawn" re-runs the parent's main script in the child (as ``__mp_main__``) so that
    pickled functions defined there resolve.  The child's target lives in this module, so
    that would only cost time and memory (the ``napari`` launcher imports napari) or fail
    (a script that opens the widget without an ``if __name__ == "__main__"`` guard).  While
    the child is launched (a few milliseconds), ``sys.modules["__main__"]`` is a module
    without a file; the real one is put back untouched.
    """
    real = sys.modules["__main__"]
    with _MAIN_LOCK:
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


_MAIN_LOCK = threading.Lock()


def _child_saved(
    job: DetectionJob, last_change: int, changes: Callable[[], Sequence[Any]] | None
) -> bool | None:
    """Whether the killed child's save committed: a detection change after ``last_change``.

    None when the store cannot be read now (locked, or refused by ``Store.open``).
    """
    if job.store is None:
        return False
    try:
        if changes is not None:
            log_ = changes()
        else:
            from satdelta.annotations import Store

            with Store.open(job.store, create=False, timeout=CHILD_LOCK_TIMEOUT) as store:
                log_ = store.changes()
    except SatdeltaError:
        return None
    return any(
        c.id > last_change and c.action == "import" and c.description.startswith("detected ")
        for c in log_
    )


def _take_maps(name: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copy score, changed and valid out of the shared block ``name`` and unlink it."""
    n = shape[0] * shape[1]
    shm = shared_memory.SharedMemory(name=name)
    try:
        buf = np.frombuffer(shm.buf, dtype=np.uint8, count=6 * n)
        score = buf[: 4 * n].view(np.float32).reshape(shape).copy()
        changed = buf[4 * n : 5 * n].view(np.bool_).reshape(shape).copy()
        valid = buf[5 * n :].view(np.bool_).reshape(shape).copy()
        del buf
    finally:
        shm.close()
        shm.unlink()
    return score, changed, valid


def _unlink(name: str) -> None:
    """Remove the shared block ``name`` if it exists (after errors, cancels and crashes)."""
    try:
        shm = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    shm.close()
    shm.unlink()


def _kill(proc: Any, conn: Any) -> None:
    """Finaliser: the DetectionProcess was dropped without :meth:`stop`."""
    with contextlib.suppress(Exception):
        conn.close()
    with contextlib.suppress(Exception):
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)


# --------------------------------------------------------------------------- child
def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent ends (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child_main(conn: Any, parent_pid: int) -> None:
    """The child's loop: warm up, then one job per message until EOF."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is the parent's
    _yield_to_the_window()
    # warm-up: the imports a run needs (about a second or two)
    import rasterio  # noqa: F401
    import satdelta.imagery.pipeline  # noqa: F401
    import scipy.ndimage  # noqa: F401
    from satdelta.annotations import Store  # noqa: F401
    from satdelta.plugins.napari import _detection, _session  # noqa: F401

    try:
        conn.send(("ready", os.getpid()))
    except OSError:  # the window closed during the warm-up (a broken pipe)
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job, shm_name = message
        try:
            _child_job(conn, job, shm_name)
        except SatdeltaError as exc:
            conn.send(("error", _portable(exc)))
        except Exception:  # a bug: the parent shows the traceback
            conn.send(("bug", traceback.format_exc()))
        _trim()  # after the answer: the idle child hands the run's freed memory back


def _yield_to_the_window() -> None:
    """Lower this process's scheduling priority by :data:`CHILD_NICENESS`.

    The child's threads and napari's main thread share the machine's cores: at equal
    priority a slice of outlines or a layer's first upload waits behind the detection's
    time slices (the event loop stalled 2-3x its own CPU time on two cores). With a lower
    priority the kernel runs the window first and gives the child every idle cycle, so
    the run is no slower when the window is idle.
    """
    try:
        os.nice(CHILD_NICENESS)
    except (OSError, AttributeError):  # pragma: no cover - not permitted, or not POSIX
        pass


def _trim() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``; no-op elsewhere)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _portable(exc: SatdeltaError) -> SatdeltaError:
    """``exc`` if it survives pickling, else a plain SatdeltaError with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return _ChildError(str(exc))
    return exc


def _child_job(conn: Any, job: DetectionJob, shm_name: str) -> None:
    from satdelta.imagery.scene import open_scene
    from satdelta.plugins.napari._block_detection import (
        BLOCK_STEPS,
        SAVE_AT,
        run_in_blocks,
        runs_in_blocks,
    )
    from satdelta.plugins.napari._detection import detection_steps

    before = open_scene(job.before, checksum=False)  # the header: which path to take
    if job.run_folder is not None and runs_in_blocks(before, job.options, job.blocks_from_px):
        after = open_scene(job.after, checksum=False)

        def send(step: tuple[Any, ...]) -> None:
            conn.send(("layers", step) if len(step) > 3 else ("step", step))

        result = run_in_blocks(
            before, after, job.options, job.run_folder, send=send, block_px=job.block_px
        )
        save_step = (SAVE_AT, BLOCK_STEPS)
    else:
        gen = detection_steps(job.before, job.after, job.options)
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            if len(step) > 3:
                conn.send(("maps", (step[:3], _put_maps(shm_name, step[3]))))
            else:
                conn.send(("step", step))
        save_step = (5, 6)
    rows = None
    if job.store is not None:
        rows = _save_and_read(conn, job, result, save_step)
    fields = {
        "polygons": result.polygons,
        "provenance": result.provenance,
        "shift_px": result.shift_px,
        "rows": rows,
    }
    conn.send(("result", fields))


def _put_maps(name: str, layers: Any) -> dict[str, Any]:
    """Write score, changed and valid into a new shared block ``name``; their metadata."""
    maps = layers.maps
    shape = maps.score.shape
    n = shape[0] * shape[1]
    shm = shared_memory.SharedMemory(name=name, create=True, size=max(6 * n, 1))
    try:
        buf = np.frombuffer(shm.buf, dtype=np.uint8, count=6 * n)
        buf[: 4 * n].view(np.float32)[:] = maps.score.ravel()
        buf[4 * n : 5 * n].view(np.bool_)[:] = maps.changed.ravel()
        buf[5 * n :].view(np.bool_)[:] = maps.valid.ravel()
        del buf
    finally:
        shm.close()  # the parent unlinks it
    return {
        "shape": shape,
        "transform": layers.transform,
        "crs": layers.crs,
        "maps": {
            "threshold": maps.threshold,
            "method": maps.method,
            "threshold_method": maps.threshold_method,
            "parameters": maps.parameters,
        },
    }


def _save_and_read(conn: Any, job: DetectionJob, result: Any, step: tuple[int, int]) -> Any:
    """Save the candidates (replacing the earlier run's undecided ones) and read the rows."""
    from satdelta.annotations import Store
    from satdelta.plugins.napari._frame import MapFrame
    from satdelta.plugins.napari._session import Session, display_tolerance

    frame = MapFrame.from_dict(job.frame) if job.frame is not None else None
    if frame is not None and not frame.georeferenced:
        return None  # no lon/lat: nothing is stored, the dock shows the polygons unstored
    store = Store.open(job.store, timeout=CHILD_LOCK_TIMEOUT)
    try:
        changes = store.changes()
        conn.send(("saving", changes[-1].id if changes else 0))
        conn.send(("step", (*step, f"saving {len(result.polygons)} candidates")))
        session = Session(store, frame)
        session.report_id, session.claim_id = job.report_id, job.claim_id
        session.add_candidates(result.polygons, result.provenance, replace_earlier=True)
        if frame is None:
            return None
        if result.objects is not None:  # as `satdelta import objects.geojson` does
            store.import_geojson(
                result.objects, report_id=session.report_id, claim_id=session.claim_id
            )
        return session.rows(tolerance=display_tolerance(result.transform.a))
    finally:
        store.close()
