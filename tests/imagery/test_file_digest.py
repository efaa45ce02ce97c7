"""The inputs' sha256, started early by the command line and used only for an unchanged file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading

import pytest
from satdelta.imagery import file_digest


def _expected(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "scene.tif"
    # over two read chunks, so that the chunk loop is exercised
    path.write_bytes(os.urandom(1000) * ((2 * file_digest.CHUNK_BYTES) // 1000 + 7))
    return path


def test_digest_of_a_file_spanning_several_chunks(data_file):
    assert file_digest.sha256(data_file) == _expected(data_file)
    assert file_digest.sha256(str(data_file)) == _expected(data_file)


@pytest.mark.parametrize("size", [0, 1, 4097])
def test_digest_of_files_smaller_than_a_chunk(tmp_path, size):
    path = tmp_path / "small.tif"
    path.write_bytes(os.urandom(size))
    assert file_digest.sha256(path) == _expected(path)


def test_an_early_digest_is_used_once_and_not_computed_again(data_file):
    file_digest.start([data_file, data_file])  # twice: one job
    before = file_digest.computed
    threads = [t for t in threading.enumerate() if t.name == "satdelta-sha256"]
    assert threads and all(t.daemon for t in threads)  # exiting never waits for it
    assert file_digest.sha256(data_file) == _expected(data_file)
    assert file_digest.sha256(data_file) == _expected(data_file)
    # at most the one early computation, whether or not it had finished when start returned
    assert file_digest.computed - before <= 1
    file_digest.start([data_file])  # the same file again: nothing new
    assert file_digest.sha256(data_file) == _expected(data_file)
    assert file_digest.computed - before <= 1


def test_a_file_changed_after_the_early_start_is_hashed_again(data_file):
    file_digest.start([data_file])
    old = _expected(data_file)
    assert file_digest.sha256(data_file) == old
    data_file.write_bytes(b"another scene")
    os.utime(data_file, ns=(1, 1))  # a different modification time, whatever the clock
    assert file_digest.sha256(data_file) == _expected(data_file) != old


def test_a_file_replaced_by_another_with_the_same_size_and_time(tmp_path):
    path, other = tmp_path / "a.tif", tmp_path / "b.tif"
    path.write_bytes(b"x" * 4096)
    other.write_bytes(b"y" * 4096)
    os.utime(path, ns=(5, 5))
    os.utime(other, ns=(5, 5))
    file_digest.start([path])
    assert file_digest.sha256(path) == _expected(path)
    os.replace(other, path)  # same size and time, another inode
    assert file_digest.sha256(path) == hashlib.sha256(b"y" * 4096).hexdigest()


def test_non_files_are_ignored_and_a_missing_file_is_an_oserror(tmp_path):
    file_digest.start([tmp_path, tmp_path / "missing.tif", "https://example.org/x.tif", "-o"])
    with pytest.raises(OSError):
        file_digest.sha256(tmp_path / "missing.tif")


def test_the_command_line_hashes_detect_inputs_before_importing_the_engine(tmp_path, data_file):
    """`satdelta detect A B` starts hashing A and B before the engine (scipy) is imported;
    the run itself then fails on the non-raster input with one line."""
    probe = (
        "import sys\n"
        "from satdelta.imagery import file_digest\n"
        "import satdelta.plugins.cli.main as m\n"
        "seen = {}\n"
        "real = file_digest.start\n"
        "def start(paths):\n"
        "    paths = list(paths)\n"
        "    seen['paths'] = paths\n"
        "    seen['scipy'] = 'scipy' in sys.modules\n"
        "    real(paths)\n"
        "file_digest.start = start\n"
        f"code = m.main(['detect', {str(data_file)!r}, {str(data_file)!r}, '-o', "
        f"{str(tmp_path / 'out')!r}])\n"
        "print(code, seen['scipy'], len(seen['paths']), file_digest.computed)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    code, scipy_loaded, n_paths, computed = out.stdout.split()
    assert code == "1" and "satdelta: error:" in out.stderr  # not a raster: one line
    assert scipy_loaded == "False"  # started before the engine was imported
    assert n_paths == "3"  # BEFORE, AFTER and the output folder (ignored: not a file)
    assert computed in ("0", "1")  # one file, hashed at most once
