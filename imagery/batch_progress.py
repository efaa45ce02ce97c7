"""Per-pair progress of a batch, sent from the workers to the process that runs the batch.

A pair's task (:func:`~satdelta.imagery.pair_task.run_pair`) calls its ``progress(stage,
done, total)`` as the block runner (:data:`~satdelta.imagery.block_run.Progress`) or the
whole-array stages go on. The callable it is given is a picklable reporter that forwards
``(pair name, stage, done, total)``:

* on the local process pool, through a queue of a :class:`multiprocessing.managers.SyncManager`
  (one connection per worker: a worker killed mid-message harms no other worker);
* on a Dask cluster, as worker events of one topic (``Worker.log_event``) that the client
  subscribes to (``Client.subscribe_topic``).

Reports of one stage are sent at most every :data:`MIN_INTERVAL_S` (the first and the last
always), so a pair of thousands of blocks does not flood the queue or the scheduler.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from satdelta.imagery.block_run import ProgressThrottle

__all__ = ["MIN_INTERVAL_S", "PairProgress", "dask_progress", "pool_progress"]

log = logging.getLogger(__name__)

#: ``progress(pair_name, stage, done, total)``, called in the process that runs the batch.
PairProgress = Callable[[str, str, int, int], None]
#: Seconds between two reports of the same stage of a pair (first and last always sent).
MIN_INTERVAL_S = 0.2


class _Reporter(abc.ABC):
    """``progress(stage, done, total)`` of one pair: throttles, then :meth:`send`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._throttle = ProgressThrottle(MIN_INTERVAL_S)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self._throttle.due(stage, done, total):
            return
        try:
            self.send((self.name, stage, int(done), int(total)))
        except Exception as exc:  # noqa: BLE001 - progress must never fail the pair
            log.debug("progress of %s not sent: %s", self.name, exc)

    @abc.abstractmethod
    def send(self, message: tuple[str, str, int, int]) -> None:
        """Deliver one report to the process that runs the batch."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_throttle"] = ProgressThrottle(MIN_INTERVAL_S)  # a new process, a new clock
        return state


class _QueueReporter(_Reporter):
    def __init__(self, name: str, queue: Any) -> None:
        super().__init__(name)
        self.queue = queue

    def send(self, message: tuple[str, str, int, int]) -> None:
        self.queue.put(message)


class _DaskReporter(_Reporter):
    def __init__(self, name: str, topic: str) -> None:
        super().__init__(name)
        self.topic = topic

    def send(self, message: tuple[str, str, int, int]) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, list(message))


@contextlib.contextmanager
def pool_progress(
    ctx: Any, on_progress: PairProgress | None
) -> Iterator[Callable[[str], Any] | None]:
    """Yield ``reporter(pair_name)`` for tasks on a local pool, or None without ``on_progress``.

    A manager process holds the queue; a thread of this process reads it and calls
    ``on_progress`` (one call at a time) until the block ends.
    """
    if on_progress is None:
        yield None
        return
    manager = ctx.Manager()
    try:
        queue = manager.Queue()

        def drain() -> None:
            while True:
                try:
                    item = queue.get()
                except (EOFError, OSError):  # the manager is gone
                    return
                if item == "stop":
                    return
                try:
                    on_progress(*item)
                except Exception:  # noqa: BLE001 - a display error must not stop the batch
                    log.debug("progress display failed", exc_info=True)

        reader = threading.Thread(target=drain, name="satdelta-batch-progress", daemon=True)
        reader.start()
        try:
            yield lambda name: _QueueReporter(name, queue)
        finally:
            with contextlib.suppress(Exception):
                queue.put("stop")
            reader.join(5.0)
    finally:
        manager.shutdown()


@contextlib.contextmanager
def dask_progress(
    client: Any, on_progress: PairProgress | None, token: str
) -> Iterator[Callable[[str], Any] | None]:
    """Yield ``reporter(pair_name)`` for tasks on a Dask cluster (None without ``on_progress``).

    The workers log events under a topic of this batch; the client calls ``on_progress`` as
    they arrive (in its event-loop thread, one at a time).
    """
    if on_progress is None:
        yield None
        return
    topic = f"satdelta-progress-{token}"

    def handle(event: Any) -> None:
        _when, message = event
        try:
            on_progress(*message)
        except Exception:  # noqa: BLE001 - a display error must not stop the batch
            log.debug("progress display failed", exc_info=True)

    client.subscribe_topic(topic, handle)
    try:
        yield lambda name: _DaskReporter(name, topic)
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)
