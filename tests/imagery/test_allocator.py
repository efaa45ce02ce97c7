"""The block runner's allocator settings (glibc), checked in a child process of their own."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = r"""
import ctypes, numpy as np
from satdelta.imagery.allocator import blocks_allocator, blocks_done, _libc

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = _libc()
libc.mallinfo2.restype = MallInfo2

def freed_top_mb():
    a = np.ones(20 * 2**20, np.uint8)  # 20 MB from the heap (under the map threshold)
    del a
    return libc.mallinfo2().keepcost / 2**20

with blocks_allocator():
    inside = freed_top_mb()
    blocks_done()  # the blocks stage over: the candidates' memory is given back as it goes
    candidates = freed_top_mb()
after = libc.mallinfo2().keepcost / 2**20
print(f"{inside:.1f} {candidates:.1f} {after:.1f}")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_block_run_keeps_freed_arrays_for_the_next_block_and_gives_them_back_after():
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    inside, candidates, after = map(float, out)
    assert inside >= 20  # the freed 20 MB stays at the heap's top for the next block
    assert candidates < 1  # after the blocks, freed memory is given back as it is freed
    assert after < 1  # and so it is when the run ends
