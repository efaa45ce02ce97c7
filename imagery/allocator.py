"""glibc's allocator set for the block runner: block arrays reused, not mapped afresh.

A block's arrays (tens of MB, freed at the block's end and allocated again by the next)
cost the kernel more than the work when each one is a fresh memory map or fresh heap pages:
the pages are faulted in and zeroed again, block after block. :func:`blocks_allocator`
keeps them in one heap that is neither mapped per array nor trimmed between blocks, and
gives the memory back to the system when the run ends. Other C libraries: nothing is done.
Figures: ``docs/design-blocks.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator

__all__ = ["MALLOC_ARENAS", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "blocks_allocator", "blocks_done"]

#: Allocations of this many bytes or more get their own memory map (glibc); smaller ones,
#: every array of a block included, come from the heap and are reused from block to block.
#: 32 MB is glibc's largest. At 256 KB (every block array mapped and page-faulted afresh)
#: the kernel took 11-13 s of an 8192² run (``sys`` time), as long as the work itself.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: malloc arenas (glibc): one, shared by every thread, so that the arrays one thread frees
#: serve the next block of another instead of fragmenting one heap per thread.
MALLOC_ARENAS = 1
#: Free memory at the top of the heap kept for the next block instead of given back (glibc
#: trims above 128 KB by default, and the next block faulted the pages in again: 270,000
#: page faults at 8192² against 73,000, and about 0.5 s of the kernel's time).
TRIM_THRESHOLD = 1024 * 1024 * 1024
_GLIBC_TRIM_THRESHOLD = 128 * 1024  # glibc's default, set back after the run
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def blocks_allocator() -> Iterator[None]:
    """glibc's allocator set for a block run (:data:`MMAP_THRESHOLD`, :data:`MALLOC_ARENAS`,
    :data:`TRIM_THRESHOLD`) inside the block; on leaving, the trim threshold is glibc's
    default again and the heap's free memory is given back (a desk's detection child lives
    on after its run). The map threshold and the arenas stay (they are process-wide; the
    arenas apply to threads started afterwards).
    """
    libc = _libc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    try:
        yield
    finally:
        blocks_done()


def blocks_done() -> None:
    """glibc's default trim threshold back and the heap's free memory given back, once the
    blocks (the arrays reused) are done. After them the candidates' geometries, text and
    arrays of every size come and go: in a heap never trimmed each new high-water mark
    stays (on NAIP mirror-tiled to 8192² the resident size grew from 520 to 660 MB in the
    candidates stage, to 1 GB at 16384²; trimmed, it stays under the blocks' peak)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_TRIM_THRESHOLD)
        libc.malloc_trim(0)
