"""sha256 of local input files: computed once per process, and possibly ahead of time.

A run records the sha256 of every local input (run.json, the store's provenance). Hashing
costs about 0.3 s per GB on this kind of machine, on a core the detection itself wants. The
command line therefore starts it (:func:`start`) before it imports the engine: importing
scipy, GDAL and scikit-image keeps one core busy for about half a second and leaves the
other idle, and the hash runs there. :func:`sha256` later returns that digest when the file
is unchanged since (same device, inode, size and modification time), else hashes it then.

Only the standard library is imported here, so that the command line can start early.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterable
from concurrent.futures import Future

__all__ = ["CHUNK_BYTES", "computed", "sha256", "start"]

#: Bytes read at a time. Reading and digesting release the GIL, and each chunk takes it back
#: twice: while another thread imports modules (holding the GIL for up to its 5 ms switch
#: interval at a time) 1 MB chunks made the hash about 3x slower than alone, 32 MB ones 1.2x.
CHUNK_BYTES = 32 << 20

_Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns

_lock = threading.Lock()
_early: dict[tuple[str, _Identity], Future[str]] = {}
#: Files hashed so far in this process (for tests: an early digest used is not counted twice).
computed = 0


def _identity(path: str) -> _Identity | None:
    """Who the file at ``path`` is now (None: not a regular file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _digest(path: str) -> str:
    global computed
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        # no larger than the file: a small input does not zero 32 MB for nothing
        buf = bytearray(max(1, min(CHUNK_BYTES, os.fstat(fh.fileno()).st_size)))
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    with _lock:
        computed += 1
    return h.hexdigest()


def start(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Start hashing the regular files among ``paths`` (others are ignored), one after
    another in a background thread.

    The thread is a daemon: a command that fails before it needs the digests exits at once
    instead of waiting for the hash of a large file.
    """
    jobs: list[tuple[str, Future[str]]] = []
    with _lock:
        for p in paths:
            path = os.path.realpath(os.fspath(p))
            who = _identity(path)
            if who is None or (path, who) in _early:
                continue
            future: Future[str] = Future()
            _early[path, who] = future
            jobs.append((path, future))
    if not jobs:
        return

    def run() -> None:
        for path, future in jobs:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(_digest(path))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for it
                future.set_exception(exc)

    threading.Thread(target=run, name="satdelta-sha256", daemon=True).start()


def sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of the file at ``path``: the digest :func:`start` began if the file
    is the same one, unchanged since; else computed now.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    real = os.path.realpath(os.fspath(path))
    who = _identity(real)
    with _lock:
        future = _early.get((real, who)) if who is not None else None
    if future is not None:
        try:
            return future.result()
        except OSError:  # read failed early (e.g. briefly unavailable): try again now
            pass
    return _digest(real)
