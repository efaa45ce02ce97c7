"""Cut the before, after and change-score windows around one annotation, at one scale.

The scenes are the ones named in the annotation's provenance, opened again with
:func:`satdelta.imagery.open_scene`.  The window is a square around the polygon (with a margin)
on a grid in the before scene's CRS (or the polygon's UTM zone when that CRS is geographic), at
the before scene's pixel size or coarser for large polygons; both dates are resampled onto it,
the after date with the run's recorded shift removed.  The score is the run's own score model
re-applied when the provenance records it (CVA, absdiff, ...; same pixel size), otherwise the
same method fitted on the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS as ProjCRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from satdelta.annotations import Annotation
from satdelta.imagery import Scene, open_scene
from satdelta.imagery.errors import SatdeltaError
from satdelta.imagery.pipeline import scene_ref
from satdelta.imagery.radiometry import LinearNormalisation
from satdelta.imagery.scores import SCORES, ScoreModel, change_score, find_band
from satdelta.imagery.warp import resample_to_grid
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

__all__ = ["Chip", "ChipGrid", "SceneBook", "chip_grid", "read_chip"]

ROLES = ("before", "after")
#: Fewest scene pixels across a chip, so that a small polygon still shows its surroundings.
MIN_PX = 96


@dataclass(frozen=True)
class ChipGrid:
    """The pixel grid shared by the three chips of one annotation.

    Attributes
    ----------
    crs : rasterio.crs.CRS
        A projected CRS.
    transform : affine.Affine
        Maps (col, row) to map (x, y), north up.
    shape : (int, int)
        (rows, cols).
    metres_per_unit : float
        Length of one CRS unit in metres.
    """

    crs: CRS
    transform: Affine
    shape: tuple[int, int]
    metres_per_unit: float = 1.0

    def __post_init__(self) -> None:
        if min(self.shape) < 1 or self.metres_per_unit <= 0:
            raise ValueError(f"a chip grid needs pixels and units, got {self.shape}")

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) in CRS units, as matplotlib's ``imshow`` takes it."""
        rows, cols = self.shape
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (cols, rows)
        return (left, right, bottom, top)

    @property
    def pixel_size_m(self) -> float:
        return abs(self.transform.a) * self.metres_per_unit


@dataclass(frozen=True)
class Chip:
    """Before, after and change score of one annotation on one :class:`ChipGrid`.

    Attributes
    ----------
    before, after : (B, M, N) float32 ndarray
        The display bands (red, green, blue when named, else the first three or one), NaN
        where the scene has no data.
    score : (M, N) float32 ndarray
        The change score, NaN where either date has no data.
    outline : shapely geometry
        The annotation's polygon in the grid's CRS.
    scenes : dict
        ``{"before": Scene, "after": Scene}``.
    score_method : str
        The score method and where its statistics came from, as the chip's label says it.
    """

    grid: ChipGrid
    before: NDArray[np.float32]
    after: NDArray[np.float32]
    score: NDArray[np.float32]
    outline: BaseGeometry
    scenes: Mapping[str, Scene]
    score_method: str

    def __post_init__(self) -> None:
        if self.before.shape[1:] != self.grid.shape or self.after.shape[1:] != self.grid.shape:
            raise ValueError(
                f"chip arrays {self.before.shape}, {self.after.shape} do not match the grid "
                f"{self.grid.shape}"
            )


@dataclass
class SceneBook:
    """Scenes opened once per source, and what the package says about each.

    ``records`` maps a source to its entry in the manifest: :func:`scene_ref` of the opened
    scene, the sha256 the provenance recorded, and ``status`` ``ok``, ``changed`` (the file's
    sha256 is not the recorded one) or ``unavailable`` (with ``message``).
    """

    scenes: dict[str, Scene | None] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def open(self, ref: Mapping[str, Any]) -> Scene | None:
        """The scene of a provenance reference (``source``, ``sha256``...); None if unavailable."""
        source = str(ref.get("source") or "")
        if source in self.scenes:
            return self.scenes[source]
        record: dict[str, Any] = {
            "source": source,
            "scene_id": ref.get("scene_id"),
            "acquired": ref.get("acquired"),
            "recorded_sha256": ref.get("sha256"),
            "recorded_remote": ref.get("remote"),
        }
        try:
            if not source:
                raise SatdeltaError("the provenance names no source for this scene")
            scene: Scene | None = open_scene(source)
        except SatdeltaError as exc:
            scene = None
            record.update(status="unavailable", message=str(exc))
        else:
            record.update(scene_ref(scene))
            recorded = ref.get("sha256")
            changed = bool(recorded and scene.sha256 and recorded != scene.sha256)
            record["status"] = "changed" if changed else "ok"
            if changed:
                record["message"] = (
                    f"the file's sha256 is {scene.sha256}, the provenance recorded {recorded}: "
                    "the scene changed since the detection"
                )
        self.scenes[source] = scene
        self.records[source] = record
        return scene


def _utm_crs(lon: float, lat: float) -> CRS:
    info = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    return CRS.from_user_input(ProjCRS.from_authority(info[0].auth_name, info[0].code).to_wkt())


def chip_grid(
    geometry: BaseGeometry, scene: Scene, *, margin: float = 0.5, max_px: int = 512
) -> ChipGrid:
    """A square grid around ``geometry`` (WGS84) with ``margin`` times its size on each side.

    At least :data:`MIN_PX` pixels of ``scene`` wide, at most ``max_px`` pixels (coarser
    pixels then).
    """
    if scene.crs is None:
        raise SatdeltaError(
            f"scene {scene.scene_id} is not georeferenced, so the WGS84 polygon cannot be "
            "placed on it"
        )
    crs = scene.crs
    if not crs.is_projected:
        crs = _utm_crs(*geometry.centroid.coords[0])
    per_unit = float(crs.linear_units_factor[1])
    local = shape(transform_geom("EPSG:4326", crs, mapping(geometry)))
    west, south, east, north = local.bounds
    res = (scene.pixel_size_m or 1.0) / per_unit
    side = max(east - west, north - south) * (1 + 2 * margin)
    side = max(side, MIN_PX * res)
    res = max(res, side / max_px)
    n = int(math.ceil(side / res))
    cx, cy = (west + east) / 2, (north + south) / 2
    transform = Affine(res, 0, cx - n * res / 2, 0, -res, cy + n * res / 2)
    return ChipGrid(crs=crs, transform=transform, shape=(n, n), metres_per_unit=per_unit)


def display_bands(scene: Scene) -> list[int]:
    """1-based bands to show: red, green, blue by name, else the first three (or one)."""
    rgb = [find_band(scene.band_names, role) for role in ("red", "green", "blue")]
    if None not in rgb:
        return [i + 1 for i in rgb if i is not None]
    return [1, 2, 3] if scene.count >= 3 else [1]


def _score_bands(scene: Scene, parameters: Mapping[str, Any]) -> list[int]:
    names = parameters.get("band_names")
    if isinstance(names, list) and all(n in scene.band_names for n in names):
        return [scene.band_names.index(n) + 1 for n in names]
    return list(range(1, scene.count + 1))


def window_score(
    before: NDArray[np.float32],
    after: NDArray[np.float32],
    *,
    provenance: Mapping[str, Any],
    band_names: list[str],
    rescaled: bool,
    pixel_size_m: float,
) -> tuple[NDArray[np.float32], str]:
    """The change score of two windows and how it was computed.

    The run's score model (its statistics and its linear normalisation of the after date)
    is re-applied when the provenance records it and the window has the run's pixel size;
    otherwise the method is fitted on the window.
    """
    params = provenance.get("parameters") or {}
    method = str(params.get("method") or provenance.get("method") or "cva")
    norm = params.get("normalisation") or {}
    gains, offsets = norm.get("gains"), norm.get("offsets")
    if isinstance(gains, list) and isinstance(offsets, list) and len(gains) == len(after):
        after = LinearNormalisation(np.asarray(gains, float), np.asarray(offsets, float)).apply(
            after
        )
    valid = np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0)
    stats = params.get("score")
    if (
        not rescaled
        and method in SCORES
        and not SCORES[method].needs_irmad
        and isinstance(stats, dict)
    ):
        model = ScoreModel(method, dict(stats), smooth_px=float(params.get("smooth_px") or 0.0))
        score = model.apply(np.nan_to_num(before), np.nan_to_num(after), valid)
        how = f"{method}, the run's statistics"
    else:
        method = method if method in SCORES else "cva"
        score = change_score(
            before,
            after,
            method=method,  # type: ignore[arg-type]
            valid=valid,
            band_names=band_names,
            pixel_size_m=pixel_size_m,
        )
        how = f"{method}, fitted on this window"
    return np.where(valid, score, np.float32(np.nan)).astype(np.float32), how


def read_chip(
    annotation: Annotation,
    before: Scene,
    after: Scene,
    *,
    margin: float = 0.5,
    max_px: int = 512,
) -> Chip:
    """Cut the before, after and score windows of ``annotation`` from its two scenes."""
    grid = chip_grid(annotation.geometry, before, margin=margin, max_px=max_px)
    prov = annotation.provenance
    params = prov.get("parameters") or {}
    score_bands = _score_bands(before, params)
    scale = (before.pixel_size_m or grid.pixel_size_m) / grid.pixel_size_m
    shift = prov.get("shift_px") or (0.0, 0.0)
    shift_px = (float(shift[0]) * scale, float(shift[1]) * scale)
    show = display_bands(before)
    wanted = sorted(set(score_bands) | set(show))
    where = dict(transform=grid.transform, crs=grid.crs, shape=grid.shape, bands=wanted)
    b, _ = resample_to_grid(before, **where)
    a, _ = resample_to_grid(after, shift_px=shift_px, **where)
    pick = [wanted.index(i) for i in score_bands]
    score, how = window_score(
        b[pick],
        a[pick],
        provenance=prov,
        band_names=[before.band_names[i - 1] for i in score_bands],
        rescaled=abs(scale - 1) > 1e-6 or before.crs != grid.crs,
        pixel_size_m=grid.pixel_size_m,
    )
    rows = [wanted.index(i) for i in show]
    outline = shapely.make_valid(
        shape(transform_geom("EPSG:4326", grid.crs, mapping(annotation.geometry)))
    )
    return Chip(
        grid=grid,
        before=b[rows],
        after=a[rows],
        score=score,
        outline=outline,
        scenes={"before": before, "after": after},
        score_method=how,
    )


#: Metadata keys that credit the imagery, in order of preference (any GDAL domain).
_ATTRIBUTION_TAGS = ("ATTRIBUTION", "COPYRIGHT", "TIFFTAG_COPYRIGHT", "CREDIT", "LICENSE")


def scene_attribution(scene: Scene, given: str | None = None) -> str:
    """The credit line burned into a chip: ``given``, else the file's copyright metadata."""
    if given:
        return given
    try:
        with scene.open() as src:
            tags = {k.upper(): v for k, v in src.tags().items()}
    except SatdeltaError:
        tags = {}
    for key in _ATTRIBUTION_TAGS:
        if tags.get(key, "").strip():
            return tags[key].strip()
    if tags.get("SATDELTA_SAMPLE") == "synthetic":
        return f"{scene.scene_id}: synthetic satdelta sample scene, not real imagery"
    return f"{scene.scene_id}: attribution not recorded in the file (--attribution)"
