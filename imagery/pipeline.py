"""One change-detection run on a before/after pair, stage by stage.

Stages, each a separate call so a front-end can show progress and stop between them:
``open`` (:func:`~satdelta.imagery.scene.open_scene`), ``align``
(:func:`~satdelta.imagery.align.coregister`), ``detect``
(:func:`~satdelta.imagery.detect.detect_change`), ``vectorize``
(:func:`~satdelta.imagery.vectorize.vectorize`) and, for imagery of about 1 m or finer,
``objects`` (:func:`~satdelta.imagery.object_change.detect_objects`). The result, a
:class:`DetectionRun`, is written by :func:`satdelta.imagery.outputs.write_outputs`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import os
import platform
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
from satdelta.imagery.align import AlignedPair, coregister
from satdelta.imagery.aoi import aoi_mask, aoi_window
from satdelta.imagery.candidates import describe_candidates
from satdelta.imagery.detect import ChangeMaps, detect_change
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX, remove_small
from satdelta.imagery.object_change import ObjectChanges, detect_objects
from satdelta.imagery.objects import objects_apply
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.scene import Scene, open_scene
from satdelta.imagery.vectorize import (
    CHANGE_KINDS,
    ChangePolygon,
    to_feature_collection,
    vectorize,
)

__all__ = [
    "DetectionRun",
    "Stage",
    "detection_stages",
    "run_detection",
    "scene_ref",
    "scene_summary",
    "software_versions",
]

log = logging.getLogger(__name__)

#: Largest side (px) of the sample the residual shift is measured on (coregister picks a
#: textured square where both scenes have data; run.json records the one used).
SHIFT_SAMPLE_PX = 512


@contextmanager
def _stage(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 4)
    log.info("stage %s: %.2f s", name, timings[name])


def scene_ref(s: Scene) -> dict[str, Any]:
    """Where a scene came from and what identifies its content (sha256, or a URL's ETag...)."""
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


def scene_summary(s: Scene) -> dict[str, Any]:
    """A scene's entry in run.json ``inputs``: :func:`scene_ref` plus its grid and bands."""
    return {
        **scene_ref(s),
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


def software_versions() -> dict[str, str | None]:
    """Versions of Python, satdelta, its main libraries and GDAL, for run.json."""
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
    name : {"open", "align", "detect", "vectorize", "objects"}
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
        The candidates in rank order (scene CRS + WGS84, m², mean score, rank, change); they
        hold exactly the changed pixels of ``maps``.
    options : DetectionOptions
        The options the run was asked for.
    timings : dict of str to float
        Seconds per stage (``open``, ``align``, ``detect``, ``vectorize``, ``objects``).
    created : str
        UTC time the run finished, ISO 8601.
    objects : ObjectChanges or None
        Discrete objects and their change; None when the run did not look for them.
    """

    before: Scene
    after: Scene
    aligned: AlignedPair
    maps: ChangeMaps
    polygons: tuple[ChangePolygon, ...]
    options: DetectionOptions
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    objects: ObjectChanges | None = None

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
        return self.aligned.pixel_size_m or self.options.pixel_size_m

    def provenance(self) -> dict[str, Any]:
        """The ``run`` member of changes.geojson (read by the annotation store's importer)."""
        return {
            "before": scene_ref(self.before),
            "after": scene_ref(self.after),
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

    def objects_feature_collection(self) -> dict[str, Any]:
        """RFC 7946 FeatureCollection of the objects with provenance (georeferenced runs)."""
        if self.objects is None:
            raise InvalidParameterError("this run did not look for objects (options.objects).")
        return self.objects.feature_collection(run=self.provenance())

    def summary(self) -> dict[str, Any]:
        """The content of run.json (without the write timing)."""
        valid = self.maps.valid
        nvalid = int(valid.sum())
        nchanged = int(self.maps.changed.sum())
        px = self.pixel_size_m
        a = self.aligned
        area = _f(sum(p.area_m2 for p in self.polygons)) if px else None
        return {
            "satdelta": {"kind": "change-detection-run", "created": self.created},
            "inputs": {"before": scene_summary(self.before), "after": scene_summary(self.after)},
            "options": self.options.to_dict(),
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
                "resampling": self.options.resampling,
                "valid_fraction": round(nvalid / valid.size, 6),
            },
            "detection": {
                "method": self.maps.method,
                "threshold_method": self.maps.threshold_method,
                "threshold": float(self.maps.threshold),
                "parameters": self.maps.parameters,
                "changed_pixels": nchanged,
                "changed_fraction_of_valid": round(nchanged / max(nvalid, 1), 6),
                "changed_area_m2": area,
                "changed_planar_area_m2": nchanged * px * px if px else None,
                "area_of_interest": (
                    None if self.options.aoi is None else self.options.aoi.to_dict()
                ),
            },
            "polygons": {
                "count": len(self.polygons),
                "area_m2": area,
                "change": {k: sum(p.change == k for p in self.polygons) for k in CHANGE_KINDS},
            },
            "objects": None
            if self.objects is None
            else self.objects.summary(
                None if self.options.aoi is None else self.options.aoi.geometry
            ),
            "timings_s": dict(self.timings),
            "versions": software_versions(),
        }


def _f(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def detection_stages(
    before_source: str | os.PathLike[str] | Scene,
    after_source: str | os.PathLike[str] | Scene,
    options: DetectionOptions = DetectionOptions(),
) -> Generator[Stage, None, DetectionRun]:
    """Open, align, detect and vectorise one before/after pair, one stage at a time.

    A generator: it yields a :class:`Stage` (``open``, ``align``, ``detect``, ``vectorize``,
    with the results so far) just before running it and returns the :class:`DetectionRun`, so
    a front-end can show progress, show the maps early and stop between stages (the napari
    widget's worker does). :func:`run_detection` runs it to the end.

    Parameters
    ----------
    before_source, after_source : str, os.PathLike or Scene
        Paths, http(s) URLs, or already opened scenes.
    options : DetectionOptions, optional
        ``bands``, ``max_shift_px`` and ``resampling`` steer the alignment; ``pixel_size_m``
        is used for images without a CRS (ignored, with a warning, otherwise); ``aoi`` reads
        only the area of interest's window plus
        :data:`~satdelta.imagery.aoi.AOI_MARGIN_PX` and marks the pixels outside it not
        valid; ``objects`` and ``object_options`` steer the ``objects`` stage (run when the
        pixel size is about 1 m or finer unless ``objects`` says otherwise); the others go to
        :func:`~satdelta.imagery.detect.detect_change`. The polygons are the candidates of the
        cleaned mask (:func:`~satdelta.imagery.vectorize.vectorize` with
        ``merge_gap_px=MERGE_GAP_PX``), ranked and typed by
        :func:`~satdelta.imagery.candidates.describe_candidates`.

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
    timings: dict[str, float] = {}
    yield Stage("open")
    with _stage(timings, "open"):
        before = before_source if isinstance(before_source, Scene) else open_scene(before_source)
        after = after_source if isinstance(after_source, Scene) else open_scene(after_source)
    yield Stage("align")
    with _stage(timings, "align"):
        window = None
        if options.aoi is not None:  # read only the area of interest plus a margin
            window = aoi_window(
                options.aoi, before.transform, before.crs, (before.height, before.width)
            )
        aligned = coregister(
            before,
            after,
            bands=options.bands,
            max_shift_px=options.max_shift_px,
            resampling=options.resampling,
            sample_size=SHIFT_SAMPLE_PX,
            window=window,
        )
    px = _pixel_size(aligned, options.pixel_size_m)
    if options.objects and px is None:
        raise InvalidParameterError(
            "objects were asked for (--objects) but the images have no pixel size; pass "
            "--pixel-size (metres) for images that are not georeferenced."
        )
    yield Stage("detect", aligned)
    with _stage(timings, "detect"):
        maps = detect_change(
            aligned.before,
            aligned.after,
            options,
            valid=aligned.valid,
            pixel_size_m=px,
            band_names=aligned.band_names,
        )
        if options.aoi is not None:
            maps = _inside_aoi(
                maps, aoi_mask(options.aoi, aligned.transform, aligned.crs, aligned.shape)
            )
    yield Stage("vectorize", aligned, maps)
    with _stage(timings, "vectorize"):
        # the mask's clean-up already dropped candidates under the minimum area, grouping
        # pixels as vectorize does: the polygons hold exactly the mask's changed pixels
        polygons = vectorize(
            maps.changed,
            maps.score,
            aligned.transform,
            aligned.crs,
            valid=maps.valid,
            pixel_size_m=px,
            merge_gap_px=MERGE_GAP_PX,
        )
        polygons = describe_candidates(
            polygons,
            maps.changed,
            aligned.before,
            aligned.after,
            maps.valid,
            threshold=maps.threshold,
        )
    objects = None
    if px is not None and objects_apply(px, options.objects):
        yield Stage("objects", aligned)
        with _stage(timings, "objects"):
            objects = detect_objects(
                aligned.before,
                aligned.after,
                px,
                options.object_options,
                valid=aligned.valid,
                transform=aligned.transform,
                crs=aligned.crs,
            )
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
        objects=objects,
    )


def _inside_aoi(maps: ChangeMaps, inside: np.ndarray) -> ChangeMaps:
    """``maps`` limited to the area of interest (outside: not valid, so 255 in mask.tif).

    Candidates cut by its edge and now under the minimum area are dropped.
    """
    valid = maps.valid & inside
    changed = remove_small(
        maps.changed & valid, maps.parameters["min_pixels"], gap_px=MERGE_GAP_PX, connectivity=4
    )
    score = np.where(valid, maps.score, np.float32(np.nan)).astype(np.float32)
    return dataclasses.replace(maps, score=score, changed=changed, valid=valid)


def _pixel_size(aligned: AlignedPair, given: float | None) -> float | None:
    """The grid's pixel size in metres; ``given`` only where the grid has none (no CRS)."""
    px = aligned.pixel_size_m
    if px is None:
        return given
    if given is not None and not math.isclose(px, given, rel_tol=1e-6):
        log.warning(
            "pixel size %.3f m given but the scene says %.3f m: using the scene's", given, px
        )
    return px


def run_detection(
    before_source: str | os.PathLike[str] | Scene,
    after_source: str | os.PathLike[str] | Scene,
    options: DetectionOptions = DetectionOptions(),
) -> DetectionRun:
    """Open, align, detect and vectorise one before/after pair.

    Takes the same arguments as :func:`detection_stages` and runs all its stages.

    Examples
    --------
    >>> from satdelta.sample_data import SITES, site_paths
    >>> paths = site_paths(SITES[0])
    >>> run = run_detection(paths.before, paths.after, DetectionOptions(min_area_m2=4.0))
    >>> run.options.min_area_m2, len(run.polygons) > 0
    (4.0, True)
    """
    stages = detection_stages(before_source, after_source, options)
    while True:
        try:
            next(stages)
        except StopIteration as done:
            return done.value
