"""One change-detection run on a before/after pair, and its outputs.

Stages, each a separate call so a batch job can run them on its own schedule:

1. ``open``: :func:`~satdelta.imagery.scene.open_scene` on both sources (headers, sha256);
2. ``align``: :func:`~satdelta.imagery.align.coregister` (after onto the before grid, residual
   shift measured and corrected);
3. ``detect``: :func:`~satdelta.imagery.detect.detect_change` (score, threshold, clean-up);
4. ``vectorize``: :func:`~satdelta.imagery.vectorize.vectorize` (polygons, m², WGS84).

:func:`write_outputs` then writes ``mask.tif``, ``score.tif`` (COGs on the before grid),
``changes.geojson`` (RFC 7946, only for georeferenced input) and ``run.json`` into a temporary
folder beside the output folder and moves them into place only when all are written, so a
failure (or a kill) while writing leaves the output folder as it was; ``run.json`` is moved
last, so a folder without it is an incomplete run.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from satdelta.imagery.align import AlignedPair, ResamplingName, check_max_shift, coregister
from satdelta.imagery.cog import write_cog
from satdelta.imagery.detect import ChangeMaps, detect_change
from satdelta.imagery.errors import InvalidParameterError, OutputError
from satdelta.imagery.parallel import thread_count
from satdelta.imagery.scene import Scene, open_scene
from satdelta.imagery.vectorize import ChangePolygon, to_feature_collection, vectorize

__all__ = [
    "DetectionRun",
    "Stage",
    "detection_stages",
    "run_detection",
    "write_outputs",
    "check_outdir",
    "check_detection_options",
    "full_detection_options",
    "OUTPUT_FILES",
]

log = logging.getLogger(__name__)

#: Files :func:`write_outputs` writes (``changes.geojson`` only for georeferenced input).
OUTPUT_FILES: tuple[str, ...] = ("mask.tif", "score.tif", "changes.geojson", "run.json")

MASK_NODATA = 255
#: Largest side (px) of the sample the residual shift is measured on (coregister picks a
#: textured square where both scenes have data; run.json records the one used).
SHIFT_SAMPLE_PX = 512


@contextmanager
def _stage(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 4)
    log.info("stage %s: %.2f s", name, timings[name])


def _scene_ref(s: Scene) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "source": s.source,
        "scene_id": s.scene_id,
        "sha256": s.sha256,
        "acquired": s.acquired.isoformat() if s.acquired else None,
    }
    if s.remote is not None:  # a URL: the server's ETag/Last-Modified/length stand for sha256
        ref["remote"] = s.remote
    if s.stac is not None:  # a STAC Item: its id, datetime, collection, licence, asset, href
        ref["stac"] = s.stac
    return ref


def _scene_info(s: Scene) -> dict[str, Any]:
    return {
        **_scene_ref(s),
        "crs": s.crs.to_string() if s.crs else None,
        "transform": list(s.transform)[:6],
        "width": s.width,
        "height": s.height,
        "count": s.count,
        "dtype": s.dtype,
        "nodata": None if s.nodata is None or math.isnan(s.nodata) else s.nodata,
        "band_names": list(s.band_names),
        "pixel_size_m": s.pixel_size_m,
    }


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("satdelta", "numpy", "scipy", "rasterio", "scikit-image", "shapely", "pyproj"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    import rasterio

    out["gdal"] = rasterio.__gdal_version__
    return out


@dataclass(frozen=True)
class Stage:
    """One stage of :func:`detection_stages`, announced just before it runs.

    Attributes
    ----------
    name : {"open", "align", "detect", "vectorize"}
        The stage about to run.
    aligned : AlignedPair or None
        Both dates on the before grid, once aligned (from the ``detect`` stage on).
    maps : ChangeMaps or None
        Score, changed mask and validity, once detected (at the ``vectorize`` stage), so a
        front-end can show them while the polygons are outlined.
    """

    name: str
    aligned: AlignedPair | None = None
    maps: ChangeMaps | None = None


@dataclass(frozen=True)
class DetectionRun:
    """Everything one run produced, in memory.

    Attributes
    ----------
    before, after : Scene
        The opened inputs.
    aligned : AlignedPair
        Both dates on the before grid, with the residual shift before/after correction.
    maps : ChangeMaps
        Score, changed mask (True = changed) and validity on that grid.
    polygons : tuple of ChangePolygon
        Changed regions (scene CRS + WGS84, m², mean score).
    options : dict
        The options the run was asked for (JSON-serialisable).
    timings : dict of str to float
        Seconds per stage (``open``, ``align``, ``detect``, ``vectorize``).
    created : str
        UTC time the run finished, ISO 8601.
    """

    before: Scene
    after: Scene
    aligned: AlignedPair
    maps: ChangeMaps
    polygons: tuple[ChangePolygon, ...]
    options: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        if self.maps.valid.shape != self.aligned.shape:
            raise InvalidParameterError(
                f"change maps {self.maps.valid.shape} are not on the aligned grid "
                f"{self.aligned.shape}."
            )

    @property
    def georeferenced(self) -> bool:
        """True when the grid has a CRS (then changes.geojson can be written)."""
        return self.aligned.crs is not None

    @property
    def pixel_size_m(self) -> float | None:
        """Pixel edge in metres used for areas (scene's, or the one given for plain images)."""
        return self.aligned.pixel_size_m or self.options.get("pixel_size_m")

    def provenance(self) -> dict[str, Any]:
        """The ``run`` member of changes.geojson (read by the annotation store's importer)."""
        return {
            "before": _scene_ref(self.before),
            "after": _scene_ref(self.after),
            "method": self.maps.method,
            "threshold_method": self.maps.threshold_method,
            "threshold": float(self.maps.threshold),
            "parameters": self.maps.parameters,
            "shift_px": [float(v) for v in self.aligned.shift_before_px],
            "created": self.created,
        }

    def feature_collection(self) -> dict[str, Any]:
        """RFC 7946 FeatureCollection of the change polygons with provenance."""
        return to_feature_collection(self.polygons, run=self.provenance())

    def summary(self) -> dict[str, Any]:
        """The content of run.json (without the write timing)."""
        valid = self.maps.valid
        nvalid = int(valid.sum())
        nchanged = int(self.maps.changed.sum())
        px = self.pixel_size_m
        a = self.aligned
        return {
            "satdelta": {"kind": "change-detection-run", "created": self.created},
            "inputs": {"before": _scene_info(self.before), "after": _scene_info(self.after)},
            "options": self.options,
            "grid": {
                "crs": a.crs.to_string() if a.crs else None,
                "transform": list(a.transform)[:6],
                "width": a.shape[1],
                "height": a.shape[0],
                "pixel_size_m": px,
                "band_names": list(a.band_names),
            },
            "alignment": {
                "shift_before_px": [_f(v) for v in a.shift_before_px],
                "shift_after_px": [_f(v) for v in a.shift_after_px],
                "shift_order": "dy, dx (after content relative to before, before-grid pixels)",
                "estimator": "phase/cross-correlation candidates + robust Lucas-Kanade",
                "shift_measured": a.shift_measured,
                "shift_note": a.shift_note or None,
                "sample_window": (
                    None
                    if a.shift_sample is None
                    else dict(
                        zip(("row_off", "col_off", "height", "width"), a.shift_sample, strict=True)
                    )
                ),
                "resampling": self.options.get("resampling"),
                "valid_fraction": round(nvalid / valid.size, 6),
            },
            "detection": {
                "method": self.maps.method,
                "threshold_method": self.maps.threshold_method,
                "threshold": float(self.maps.threshold),
                "parameters": self.maps.parameters,
                "changed_pixels": nchanged,
                "changed_fraction_of_valid": round(nchanged / max(nvalid, 1), 6),
                "changed_area_m2": nchanged * px * px if px else None,
            },
            "polygons": {
                "count": len(self.polygons),
                "area_m2": _f(sum(p.area_m2 for p in self.polygons)) if px else None,
            },
            "timings_s": dict(self.timings),
            "versions": _versions(),
        }


def _f(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def detection_stages(
    before_source: str | os.PathLike[str] | Scene,
    after_source: str | os.PathLike[str] | Scene,
    *,
    method: str = "auto",
    threshold: str = "auto",
    threshold_value: float | None = None,
    normalise: str = "auto",
    min_area_m2: float | None = None,
    bands: Sequence[int | str] | None = None,
    pixel_size_m: float | None = None,
    max_shift_px: float = 5.0,
    resampling: ResamplingName = "cubic",
) -> Generator[Stage, None, DetectionRun]:
    """Open, align, detect and vectorise one before/after pair, one stage at a time.

    A generator: it yields a :class:`Stage` (``open``, ``align``, ``detect``, ``vectorize``,
    with the results so far) just before running it and returns the :class:`DetectionRun`, so
    a front-end can show progress, show the maps early and stop between stages (the napari
    widget's worker does).
    :func:`run_detection` runs it to the end.

    Parameters
    ----------
    before_source, after_source : str, os.PathLike or Scene
        Paths, http(s) URLs, or already opened scenes.
    method, threshold, threshold_value, normalise, min_area_m2
        Passed to :func:`~satdelta.imagery.detect.detect_change`; ``min_area_m2`` also drops
        smaller polygons.
    bands : sequence of int or str, optional
        1-based band indexes or names picked from each scene.
    pixel_size_m : float, optional
        Pixel edge in metres for images without a CRS (ignored, with a warning, otherwise).
    max_shift_px : float, default 5.0
        Largest residual shift accepted by the alignment, in pixels: a finite number > 0.
    resampling : {"nearest", "bilinear", "cubic", "lanczos"}, default "cubic"

    Yields
    ------
    Stage
        The stage about to run, with the aligned pair and maps once they exist.

    Returns
    -------
    DetectionRun

    Raises
    ------
    SceneReadError, NoOverlapError, AlignmentError, BandMismatchError, InvalidParameterError
    """
    if pixel_size_m is not None and not pixel_size_m > 0:
        raise InvalidParameterError(f"pixel size must be > 0 metres; got {pixel_size_m}.")
    if min_area_m2 is not None and min_area_m2 < 0:
        raise InvalidParameterError(f"minimum area must be >= 0 m²; got {min_area_m2}.")
    check_max_shift(max_shift_px)
    timings: dict[str, float] = {}
    yield Stage("open")
    with _stage(timings, "open"):
        before = before_source if isinstance(before_source, Scene) else open_scene(before_source)
        after = after_source if isinstance(after_source, Scene) else open_scene(after_source)
    yield Stage("align")
    with _stage(timings, "align"):
        aligned = coregister(
            before,
            after,
            bands=bands,
            max_shift_px=max_shift_px,
            resampling=resampling,
            sample_size=SHIFT_SAMPLE_PX,
        )
    px = aligned.pixel_size_m
    if px is None:
        px = pixel_size_m
    elif pixel_size_m is not None and not math.isclose(px, pixel_size_m, rel_tol=1e-6):
        log.warning(
            "pixel size %.3f m given but the scene says %.3f m: using the scene's", pixel_size_m, px
        )
    yield Stage("detect", aligned)
    with _stage(timings, "detect"):
        maps = detect_change(
            aligned.before,
            aligned.after,
            valid=aligned.valid,
            pixel_size_m=px,
            band_names=aligned.band_names,
            method=method,  # type: ignore[arg-type]
            threshold=threshold,  # type: ignore[arg-type]
            threshold_value=threshold_value,
            normalise=normalise,  # type: ignore[arg-type]
            min_area_m2=min_area_m2,
        )
    yield Stage("vectorize", aligned, maps)
    with _stage(timings, "vectorize"):
        polygons = vectorize(
            maps.changed,
            maps.score,
            aligned.transform,
            aligned.crs,
            valid=maps.valid,
            min_area_m2=(min_area_m2 or 0) if px else 0,
            pixel_size_m=px,
        )
    options = {
        "method": method,
        "threshold": threshold,
        "threshold_value": threshold_value,
        "normalise": normalise,
        "min_area_m2": min_area_m2,
        "bands": list(bands) if bands is not None else None,
        "pixel_size_m": pixel_size_m,
        "max_shift_px": max_shift_px,
        "resampling": resampling,
    }
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return DetectionRun(
        before=before,
        after=after,
        aligned=aligned,
        maps=maps,
        polygons=tuple(polygons),
        options=options,
        timings=timings,
        created=created,
    )


def run_detection(
    before_source: str | os.PathLike[str] | Scene,
    after_source: str | os.PathLike[str] | Scene,
    *,
    method: str = "auto",
    threshold: str = "auto",
    threshold_value: float | None = None,
    normalise: str = "auto",
    min_area_m2: float | None = None,
    bands: Sequence[int | str] | None = None,
    pixel_size_m: float | None = None,
    max_shift_px: float = 5.0,
    resampling: ResamplingName = "cubic",
) -> DetectionRun:
    """Open, align, detect and vectorise one before/after pair.

    Takes the same arguments as :func:`detection_stages` and runs all its stages.
    """
    stages = detection_stages(
        before_source,
        after_source,
        method=method,
        threshold=threshold,
        threshold_value=threshold_value,
        normalise=normalise,
        min_area_m2=min_area_m2,
        bands=bands,
        pixel_size_m=pixel_size_m,
        max_shift_px=max_shift_px,
        resampling=resampling,
    )
    while True:
        try:
            next(stages)
        except StopIteration as done:
            return done.value


def full_detection_options(options: dict[str, Any]) -> dict[str, Any]:
    """Every keyword option of run_detection: the given ones, completed with its defaults.

    Sequences become lists, as run.json records them, so the result compares equal to a
    recorded run's options exactly when the run used the same options.
    """
    import inspect

    sig = inspect.signature(run_detection)
    allowed = set(sig.parameters) - {"before_source", "after_source"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"unknown detection options {unknown}; expected some of {sorted(allowed)}."
        )
    bound = sig.bind(None, None, **options)
    bound.apply_defaults()
    full = {k: v for k, v in bound.arguments.items() if k in allowed}
    if full.get("bands") is not None:
        full["bands"] = list(full["bands"])
    return full


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def check_detection_options(options: dict[str, Any]) -> dict[str, Any]:
    """Check detection options that do not depend on the scenes, once, before any work.

    Parameters
    ----------
    options : dict
        Keyword options of :func:`run_detection`.

    Returns
    -------
    dict
        Every option of ``run_detection``, completed with its defaults (as run.json records
        them).

    Raises
    ------
    InvalidParameterError
        Unknown options, unknown method names, a threshold value missing, out of range or
        given to a method that ignores it, a non-finite or out-of-range ``max_shift_px``,
        ``pixel_size_m`` or ``min_area_m2``, malformed ``bands``, or an environment variable
        ``SATDELTA_THREADS`` that is not a whole number >= 1.
    """
    from satdelta.imagery.align import RESAMPLING_METHODS
    from satdelta.imagery.detect import NORMALISE_METHODS, SCORE_METHODS, THRESHOLD_METHODS

    full = full_detection_options(options)
    for key, flag, choices in (
        ("method", "--method", SCORE_METHODS),
        ("threshold", "--threshold", THRESHOLD_METHODS),
        ("normalise", "--normalise", NORMALISE_METHODS),
        ("resampling", "--resampling", RESAMPLING_METHODS),
    ):
        if full[key] not in choices:
            raise InvalidParameterError(
                f"{key} ({flag}) must be one of {', '.join(choices)}; got {full[key]!r}."
            )
    thr, value = full["threshold"], full["threshold_value"]
    if thr == "value":
        if value is None or not math.isfinite(_number(value)):
            raise InvalidParameterError(
                f'threshold method "value" needs a finite threshold value; got {value!r}. '
                "Pass threshold_value (CLI: --threshold-value)."
            )
    elif thr == "percentile":
        if value is not None and not 0.0 < _number(value) < 100.0:
            raise InvalidParameterError(
                'threshold method "percentile" needs a percentile between 0 and 100 '
                f"(exclusive) as threshold_value (--threshold-value); got {value!r}."
            )
    elif value is not None:
        raise InvalidParameterError(
            f"threshold_value (--threshold-value) {value!r} is only used with threshold method "
            f"'value' or 'percentile', not {thr!r}; drop it or change the method."
        )
    for key, flag, what, low, strict in (
        ("max_shift_px", "--max-shift", "pixels", 0.0, True),
        ("pixel_size_m", "--pixel-size", "metres", 0.0, True),
        ("min_area_m2", "--min-area", "m²", 0.0, False),
    ):
        v = full[key]
        if v is None and key != "max_shift_px":
            continue
        x = _number(v)
        if not (math.isfinite(x) and (x > low if strict else x >= low)):
            bound = ">" if strict else ">="
            raise InvalidParameterError(
                f"{key} ({flag}) must be a finite number {bound} {low:g} {what}; got {v!r}."
            )
    bands = full["bands"]
    if bands is not None and (
        not bands
        or not all(
            (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
            or (isinstance(b, str) and b.strip())
            for b in bands
        )
    ):
        raise InvalidParameterError(
            f"bands (--bands) must be 1-based band numbers or band names; got {bands!r}."
        )
    thread_count()  # a malformed SATDELTA_THREADS fails here too, before any work
    return full


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
    probe = out.parent
    while not probe.exists():
        probe = probe.parent
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
    """Write mask.tif, score.tif, changes.geojson (georeferenced only) and run.json.

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
        written = _write_all(run, tmp)
        timings = {**run.timings, "write": round(time.perf_counter() - t0, 4)}
        summary = run.summary()
        summary["timings_s"] = timings
        summary["outputs"] = sorted(written) + ["run.json"]
        with open(tmp / "run.json", "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, allow_nan=False)
        written.append("run.json")
        final = _move_into_place(tmp, out, written)
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
            json.dump(run.feature_collection(), fh, allow_nan=False)
        written.append("changes.geojson")
    else:
        log.info("inputs are not georeferenced: changes.geojson skipped (RFC 7946 is lon/lat)")
    return written


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
    """Remove temp folders beside ``out`` left by a writer that was killed (its pid is gone)."""
    for stale in out.parent.glob(f".{out.name}.tmp-*-*"):
        pid_text = stale.name[len(f".{out.name}.tmp-") :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        log.info("removing %s, left by a killed run (pid %s)", stale, pid_text)
        shutil.rmtree(stale, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
