"""The batch pool's worker set-up runs before numpy loads, so BLAS keeps to one thread."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest
from satdelta.imagery.worker_setup import THREAD_ENV, init_worker


def test_worker_setup_imports_only_the_standard_library() -> None:
    code = (
        "import sys; import satdelta.imagery.worker_setup; "
        "heavy = [m for m in ('numpy', 'scipy', 'rasterio', 'osgeo') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_pool_worker_loads_numpy_with_one_blas_thread(monkeypatch) -> None:
    """A spawned worker counts its OS threads after the batch module (numpy, GDAL) loaded.

    OpenBLAS starts one thread per CPU when numpy loads unless OPENBLAS_NUM_THREADS was set
    before; on a machine with more than one CPU the worker would then have more than one.
    """
    for var in (*THREAD_ENV, "SATDELTA_THREADS"):
        monkeypatch.delenv(var, raising=False)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=init_worker, initargs=(None, 3))
    with pool:
        pool.submit(exec, "import satdelta.imagery.batch").result(timeout=120)
        tasks = pool.submit(os.listdir, "/proc/self/task").result(timeout=60)
        env = {v: pool.submit(os.getenv, v).result(timeout=60) for v in ("OPENBLAS_NUM_THREADS",)}
        satdelta_threads = pool.submit(os.getenv, "SATDELTA_THREADS").result(timeout=60)
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert satdelta_threads == "3"
    assert len(tasks) == 1, f"worker runs {len(tasks)} OS threads after loading numpy"


def test_operator_settings_are_kept(monkeypatch) -> None:
    # every variable init_worker may set is registered with monkeypatch, so all are restored
    for var in (*THREAD_ENV, "GDAL_CACHEMAX", "GDAL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setenv("SATDELTA_THREADS", "5")
    init_worker(None, 1)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2"
    assert os.environ["SATDELTA_THREADS"] == "5"
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["GDAL_NUM_THREADS"] == "1"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_the_command_line_loads_numpy_with_one_blas_thread_unless_the_operator_says(
    monkeypatch,
) -> None:
    """`satdelta` sets the BLAS thread count before numpy loads (satdelta's own threads do
    the work); a count the operator set is kept."""
    code = (
        "import os, sys\n"
        "from satdelta.plugins.cli.main import main\n"
        "assert 'numpy' not in sys.modules\n"
        "main(['--version'])\n"
        "import numpy, scipy.linalg\n"
        "print(len(os.listdir('/proc/self/task')), os.environ['OPENBLAS_NUM_THREADS'])\n"
    )
    for var in THREAD_ENV:
        monkeypatch.delenv(var, raising=False)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["1", "1"], out.stdout
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "2", out.stdout


@pytest.mark.parametrize("setup", ["init_worker(None)", "pass"])
def test_a_pool_worker_keeps_rasterio_no_geotransform_off_stderr(setup) -> None:
    """A batch worker gets the command line's filter: rasterio's "no geotransform" warning,
    hidden around each read with warnings.catch_warnings (not thread-safe), reached a
    worker's stderr; without the initializer it is shown (the control)."""
    code = (
        "import warnings; from satdelta.imagery.worker_setup import init_worker; "
        f"{setup}; "
        "warnings.warn('Dataset has no geotransform, gcps, or rpcs. The identity matrix will "
        "be returned.', UserWarning)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    if setup == "pass":
        assert "no geotransform" in res.stderr
    else:
        assert res.stderr == ""
