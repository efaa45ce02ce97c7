"""Work off the main thread for the desk: a superqt worker run in a new Python thread.

napari's ``thread_worker`` hands its signals (``returned``, ``yielded``, ``errored``) to
the main thread; the worker itself runs here in a plain Python thread rather than Qt's
global pool (see :func:`start_in_python_thread`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["read_in_thread", "start_in_python_thread"]

#: Workers started here whose ``finished`` signal has not reached the main thread yet.
_RUNNING: set[Any] = set()


def start_in_python_thread(worker: Any, *, name: str) -> None:
    """Run a superqt worker in a new Python thread instead of Qt's global thread pool.

    A Qt pool thread gets a fresh Python thread state per runnable, which crashed pyproj
    3.7 on a second Run (see docs/design-napari.md); a Python thread lives for one job.
    The worker is kept alive until its ``finished`` signal reaches the main thread (as
    superqt's own ``start`` does): dropped earlier, its last reference could go in the
    worker thread while its queued signals still wait in the main thread.
    """
    _RUNNING.add(worker)
    worker.finished.connect(functools.partial(_RUNNING.discard, worker))
    threading.Thread(target=worker.run, name=name, daemon=True).start()


def read_in_thread(
    read: Callable[[], Any],
    done: Callable[[Any], None],
    failed: Callable[[BaseException], None],
    *,
    name: str,
) -> Any:
    """Call ``read()`` in a new thread; ``done(result)`` or ``failed(error)`` on the main thread.

    Returns the worker: keep a reference until it has finished (its signals live on it).
    """
    from napari.qt.threading import create_worker

    # given as _connect: superqt then adds no handler of its own that re-raises the error
    worker = create_worker(
        read, _connect={"returned": done, "errored": failed}, _start_thread=False
    )
    start_in_python_thread(worker, name=name)
    return worker
