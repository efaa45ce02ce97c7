"""Set-up of a batch worker process that must run before numpy and GDAL load.

This module imports only the standard library. The batch job's process pool names
:func:`init_worker` as its initializer; a spawned worker unpickles the initializer (importing
this module alone) and runs it before it imports the task function's module
(:mod:`satdelta.imagery.batch`, which loads numpy, scipy and GDAL). numpy's OpenBLAS reads
its thread count once, when it loads, so the limits set here only work from a module like
this one.
"""

from __future__ import annotations

import logging
import os
import warnings

__all__ = [
    "SATDELTA_THREADS_ENV",
    "THREAD_ENV",
    "WORKER_GDAL_CACHEMAX_MB",
    "init_worker",
    "limit_library_threads",
    "limit_worker_resources",
    "operator_threads",
]

#: GDAL block cache per worker process (MB) unless GDAL_CACHEMAX is already set.
WORKER_GDAL_CACHEMAX_MB = 128
#: Variables that BLAS and OpenMP libraries read for their thread count when they load.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: Environment variable of satdelta's own thread count (a whole number >= 1), read by
#: :mod:`satdelta.imagery.parallel`; defined here so this module needs no numpy.
SATDELTA_THREADS_ENV = "SATDELTA_THREADS"


def operator_threads() -> bool:
    """True when the operator set ``SATDELTA_THREADS`` (non-empty)."""
    return bool(os.environ.get(SATDELTA_THREADS_ENV, "").strip())


def limit_library_threads() -> None:
    """One BLAS/OpenMP thread per satdelta thread: satdelta runs its own threads
    (:mod:`satdelta.imagery.parallel`), and a BLAS pool under them only adds threads that
    spin while waiting for work (OpenBLAS's took about 2 % of the CPU time of an 8192² block
    run, during the alignment and the fit, where satdelta's threads are busy already).

    Sets the :data:`THREAD_ENV` variables the operator has not set; like
    :func:`limit_worker_resources` it must run before numpy loads (the command line calls it
    first thing).
    """
    for var in THREAD_ENV:
        os.environ.setdefault(var, "1")


def limit_worker_resources(gdal_cachemax_mb: int = WORKER_GDAL_CACHEMAX_MB) -> None:
    """Keep one worker process to one BLAS/OpenMP thread and a modest GDAL cache.

    Sets environment variables that are read when numpy's BLAS, OpenMP and GDAL start, so it
    must run before they load (the process pool's initializer, :func:`init_worker`).
    Variables already set by the operator are kept. Dask workers get the BLAS limits from
    Dask's nanny (``distributed.nanny.pre-spawn-environ``).
    """
    limit_library_threads()
    os.environ.setdefault("GDAL_CACHEMAX", str(int(gdal_cachemax_mb)))
    os.environ.setdefault("GDAL_NUM_THREADS", "1")


def quiet_no_geotransform() -> None:
    """Keep rasterio's "no geotransform" warning off stderr, for the whole process.

    rasterio warns of it for the in-memory arrays it warps and the non-georeferenced files
    satdelta opens and writes, which satdelta hides with ``warnings.catch_warnings``; that
    is not thread-safe: a worker thread's exit from one can undo another's filter, and the
    warning then reached stderr (in the command line, and in a batch worker process running
    the block runner's threads). A filter set first, before any thread starts, is in every
    thread's saved copy. (satdelta says itself when an input has no georeference.)
    """
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")


def init_worker(log_level: int | None, threads: int = 1) -> None:
    """Process-pool initializer: resource limits, the warning filter of the command line
    (:func:`quiet_no_geotransform`), the worker's thread count, logging.

    The thread count goes to ``SATDELTA_THREADS`` unless the operator set it (then the
    operator's value is kept); the parent's logging level is applied if the worker has no
    handlers yet.
    """
    limit_worker_resources()
    quiet_no_geotransform()
    if not operator_threads():
        os.environ[SATDELTA_THREADS_ENV] = str(max(1, int(threads)))
    if log_level is not None and not logging.getLogger().handlers:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
