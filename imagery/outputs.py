"""Writing one run's outputs: ``mask.tif``, ``score.tif``, ``changes.geojson``, ``run.json``
and, when the run looked for objects, ``objects.csv`` and ``objects.geojson``.

:func:`write_outputs` writes them into a temporary folder beside the output folder and moves
them into place only when all are written, so a failure (or a kill) while writing leaves the
output folder as it was; ``run.json`` is moved last, so a folder without it is an incomplete
run.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from satdelta.imagery.cog import write_cog
from satdelta.imagery.errors import OutputError, nearest_existing

if TYPE_CHECKING:
    from satdelta.imagery.pipeline import DetectionRun

__all__ = [
    "MASK_NODATA",
    "OUTPUT_FILES",
    "check_outdir",
    "check_output_space",
    "chmod_as_created",
    "write_outputs",
    "write_staged",
]

log = logging.getLogger(__name__)

#: Files :func:`write_outputs` writes (the GeoJSON files only for georeferenced input, the
#: objects files only when the run looked for objects).
OUTPUT_FILES: tuple[str, ...] = (
    "mask.tif",
    "score.tif",
    "changes.geojson",
    "objects.csv",
    "objects.geojson",
    "run.json",
)
#: Value of ``mask.tif`` where either date has no data.
MASK_NODATA = 255


def check_outdir(outdir: str | os.PathLike[str]) -> Path:
    """Check early that ``outdir`` can be created or written; return it as an absolute Path.

    Raises
    ------
    OutputError
        When it is a file, or its nearest existing parent is not a writable folder.
    """
    out = Path(outdir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file; expected a folder. Pick another -o/--outdir.")
    probe = nearest_existing(out.parent)
    if not probe.is_dir():
        raise OutputError(f"cannot create {out}: {probe} is a file. Pick another output folder.")
    # real probes (permissions, read-only or special filesystems, quotas): the temp folder is
    # made beside OUTDIR, and files are renamed into OUTDIR when it exists
    for folder in (probe, out) if out.exists() else (probe,):
        try:
            Path(tempfile.mkdtemp(prefix=".satdelta-probe-", dir=folder)).rmdir()
        except OSError as exc:
            raise OutputError(
                f"cannot write output folder {out}: {exc.strerror or exc} in {folder}. Pick an "
                "output folder you can write."
            ) from exc
    return out


def write_outputs(run: DetectionRun, outdir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write mask.tif, score.tif, changes.geojson (georeferenced only), run.json and, when the
    run looked for objects, objects.csv and objects.geojson (georeferenced only).

    Everything is written into a temporary folder beside ``outdir`` and moved into place at
    the end; a failure while writing leaves ``outdir`` as it was.  A new ``outdir`` appears
    whole.  In an existing one, files of the same names are replaced, ``run.json`` last (the
    old one is removed first), so a kill during the moves leaves a folder without ``run.json``
    (incomplete: run again), never new rasters beside an old ``run.json``; an earlier run's
    output this run does not write (``changes.geojson`` when the new pair is not
    georeferenced) is removed, and other files in ``outdir`` are kept.  Temporary folders left
    beside ``outdir`` by a killed run are removed.

    Parameters
    ----------
    run : DetectionRun
    outdir : str or os.PathLike

    Returns
    -------
    dict of str to pathlib.Path
        File name -> final path of every file written.

    Raises
    ------
    OutputError
        When the folder cannot be written.
    """

    def write_files(tmp: Path) -> tuple[list[str], dict[str, Any]]:
        check_output_space(run.maps.changed.shape, tmp, polygons=len(run.polygons))
        return _write_all(run, tmp), run.summary()

    return write_staged(outdir, write_files, run.timings)


def write_staged(
    outdir: str | os.PathLike[str],
    write_files: Callable[[Path], tuple[list[str], dict[str, Any]]],
    timings: Mapping[str, float],
) -> dict[str, Path]:
    """Write a run's files into a temporary folder beside ``outdir``, then move them in place.

    ``write_files(tmp)`` writes the rasters and GeoJSON into ``tmp`` and returns their names
    and the run.json content; run.json (with ``timings`` plus ``write``) is written last. The
    folder rules are those of :func:`write_outputs`; the block runner
    (:mod:`satdelta.imagery.block_run`) writes through this too.
    """
    out = check_outdir(outdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        _remove_stale_temp_folders(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        raise OutputError(
            f"cannot write output folder {out}: {exc.strerror or exc} in {out.parent}. Pick an "
            "output folder you can write."
        ) from exc
    try:
        written, summary = write_files(tmp)
        summary["timings_s"] = {**timings, "write": round(time.perf_counter() - t0, 4)}
        summary["outputs"] = sorted(written) + ["run.json"]
        with open(tmp / "run.json", "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, allow_nan=False)
        written.append("run.json")
        final = _move_into_place(tmp, out, written)
    except OutputError as exc:
        said = str(exc)
        if str(tmp) not in said:
            raise
        # the files are written in the staging folder; the user knows the output folder
        raise OutputError(said.replace(str(tmp), str(out))) from exc
    except OSError as exc:
        raise OutputError(
            f"cannot write outputs to {out}: {exc}. Check free space and permissions."
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s to %s", ", ".join(written), out)
    return final


def _write_all(run: DetectionRun, tmp: Path) -> list[str]:
    a, m = run.aligned, run.maps
    mask = np.where(m.valid, m.changed.astype("uint8"), np.uint8(MASK_NODATA)).astype("uint8")
    tags = {"satdelta_method": m.method, "satdelta_threshold": repr(float(m.threshold))}
    write_cog(
        tmp / "mask.tif",
        mask,
        transform=a.transform,
        crs=a.crs,
        nodata=MASK_NODATA,
        band_names=["changed"],
        tags={**tags, "values": "1=changed 0=unchanged 255=nodata"},
        overview_resampling="nearest",
    )
    score = np.where(m.valid, m.score, np.nan).astype("float32")
    write_cog(
        tmp / "score.tif",
        score,
        transform=a.transform,
        crs=a.crs,
        nodata=float("nan"),
        band_names=["score"],
        tags=tags,
        overview_resampling="average",
    )
    written = ["mask.tif", "score.tif"]
    if run.georeferenced:
        with open(tmp / "changes.geojson", "w", encoding="utf-8") as fh:
            # dumps, not dump: json.dump streams through the pure-Python encoder (about 10x
            # slower on thousands of polygons); dumps uses the C one, same text
            fh.write(json.dumps(run.feature_collection(), allow_nan=False))
        written.append("changes.geojson")
    else:
        log.info("inputs are not georeferenced: changes.geojson skipped (RFC 7946 is lon/lat)")
    if run.objects is not None:
        written += _write_objects(run, tmp)
    return written


def check_output_space(
    shape: tuple[int, int], folder: str | os.PathLike[str], *, polygons: int = 0, source: str = ""
) -> None:
    """Refuse, before writing, outputs of a ``shape`` grid that would not fit on ``folder``'s disk.

    The bound is generous (uncompressed mask and score plus overviews, ~1 kB a polygon), so a
    full disk is named as such instead of surfacing as a libtiff seek error half-way.
    ``folder`` may not exist yet: its nearest existing parent is asked.  ``source`` names the
    input in the message (the block runner checks before reading anything).
    """
    rows, cols = shape
    need = int(rows * cols * (1 + 4) * 4 / 3) + 1024 * polygons + (1 << 16)
    where = nearest_existing(Path(folder).absolute())
    free = shutil.disk_usage(where).free
    if free < need:
        grid = f"{source} is {cols}x{rows} px: " if source else ""
        raise OutputError(
            f"not enough free space for the outputs in {where}: {grid}they need up to "
            f"{need / 2**30:.2f} GiB ({need / 2**20:.1f} MiB), {free / 2**30:.2f} GiB is free. "
            "Free some space, pick another -o/--outdir, or crop the inputs to the area of "
            "interest first (e.g. gdal_translate -projwin)."
        )


def _write_objects(run: DetectionRun, tmp: Path) -> list[str]:
    """objects.csv always, objects.geojson for georeferenced runs."""
    from satdelta.imagery.object_change import CSV_COLUMNS

    assert run.objects is not None
    with open(tmp / "objects.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(o.csv_row() for o in run.objects.objects)
    if not run.georeferenced:
        return ["objects.csv"]
    with open(tmp / "objects.geojson", "w", encoding="utf-8") as fh:
        json.dump(run.objects_feature_collection(), fh, allow_nan=False)
    return ["objects.csv", "objects.geojson"]


def _move_into_place(tmp: Path, out: Path, names: list[str]) -> dict[str, Path]:
    if not out.exists():
        # the whole folder appears at once; mkdtemp made it private, give it the usual mode
        chmod_as_created(tmp, 0o777)
        os.replace(tmp, out)
    else:
        # run.json is the commit mark: the old one goes first and the new one comes last, so
        # a kill in between leaves a folder without run.json (incomplete: rerun it), never
        # new rasters beside an old run.json that describes other ones
        (out / "run.json").unlink(missing_ok=True)
        # an output of an earlier run that this run did not write (e.g. changes.geojson of a
        # georeferenced pair, now a plain-image pair) would contradict run.json: remove it
        for n in set(OUTPUT_FILES) - set(names):
            (out / n).unlink(missing_ok=True)
        for n in sorted(names, key=lambda n: n == "run.json"):  # each rename is atomic
            os.replace(tmp / n, out / n)
    return {n: out / n for n in names}


def chmod_as_created(path: str | os.PathLike[str], mode: int) -> None:
    """Give *path* the mode a plain ``open``/``mkdir`` would have given it (umask applied).

    ``tempfile.mkstemp``/``mkdtemp`` make private files; outputs moved out of them into place
    should look like any other file the user writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _remove_stale_temp_folders(out: Path) -> None:
    """Remove temp folders a killed run left beside ``out``, for any output folder there.

    Only ``.<name>.tmp-<pid>-<random>`` folders whose process is gone and that hold nothing
    but this module's output files (and GDAL's temporary files beside them) are removed.
    """
    for stale in out.parent.glob(".*.tmp-*-*"):
        match = _TEMP_NAME.fullmatch(stale.name)
        if match is None or not stale.is_dir() or _pid_alive(int(match.group(1))):
            continue
        if not all(p.name.startswith(_OUTPUT_STEMS) for p in stale.iterdir()):
            continue  # not (only) ours: leave it
        log.info("removing %s, left by a killed run (pid %s)", stale, match.group(1))
        shutil.rmtree(stale, ignore_errors=True)


_OUTPUT_STEMS = tuple(name.split(".")[0] for name in OUTPUT_FILES)
# the temporary folder write_outputs makes: .<outdir name>.tmp-<pid>-<mkdtemp suffix>
_TEMP_NAME = re.compile(r"\..+\.tmp-(\d+)-[^-/]+")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
