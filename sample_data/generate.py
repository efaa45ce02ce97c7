"""Generate the synthetic sample scenes, their true change polygons and nothing else.

Run ``python -m satdelta.sample_data.generate [--outdir DIR]`` to (re)write, for each site in
:data:`SITE_SPECS`::

    <site>_<before date>.tif   4-band (red, green, blue, nir) uint8 GeoTIFF, EPSG:32651, 0.5 m
    <site>_<after date>.tif    same grid; ground shifted by a sub-pixel amount, other gain/offset
    <site>_truth.geojson       RFC 7946 polygons (lon/lat) of every object that changed

The scenes are **synthetic**: no real imagery is used. They are placed at the real sites'
coordinates (Pyongyang Sunan airport apron and Kim Il Sung Square) so that the demo's outputs land
on the right spot of a map, and they imitate what the motivating news report describes: civilian
aircraft that leave an apron, and troop/vehicle blocks plus painted markings that appear on a
square.

How a scene is made
-------------------
1. Every object is a shapely polygon in map metres.  The ground (textured grass, asphalt,
   concrete slabs, granite paving, painted lines, tree rows, buildings) is painted onto a canvas
   at 4x the output resolution (0.125 m), then shadows (each object's footprint translated
   away from the sun by ``height / tan(sun elevation)``), then the objects themselves.
2. The canvas is averaged over 4x4 blocks (area-weighted anti-aliasing) and blurred with a
   Gaussian point-spread function (sigma 0.5 px).
3. The *after* image is shifted by ``shift_after_px`` with a cubic spline
   (:func:`scipy.ndimage.shift`), so its content is misregistered by a fraction of a pixel,
   and scaled per band by ``gain`` and ``offset`` (a different sensor/atmosphere on that date).
4. Independent Gaussian sensor noise is added to each date, and the result is rounded to uint8.

Everything random comes from one seeded :class:`numpy.random.Generator` per site
(:class:`numpy.random.SeedSequence` children for the ground and each date's noise), and the
files are written with fixed creation options and the fixed acquisition date as their only
timestamp, so two runs produce byte-identical files.

The truth polygons are the ground area whose pixels change: an object's footprint together
with the shadow it casts (both differ between the dates).  They are in ground coordinates, that
is on the *before* grid; a correct co-registration of the after image brings its changes there.
The generator's own parameters (seed, shift, gain, offset, noise) are recorded in the truth file's
``"satdelta"`` member so that tests can measure them back from the pixels.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.enums import ColorInterp
from satdelta.sample_data.canvas import SUN_AZIMUTH_DEG, SUN_ELEVATION_DEG, Canvas
from satdelta.sample_data.objects import SceneObject
from satdelta.sample_data.site_scenes import SCENE_BUILDERS
from satdelta.sample_data.sites import (
    BAND_NAMES,
    CRS,
    PIXEL_SIZE_M,
    SCENE_SIZE_PX,
    SITE_SPECS,
    SiteSpec,
    site_grid,
)
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

__all__ = [
    "generate",
    "generate_site",
    "main",
]

log = logging.getLogger(__name__)


PSF_SIGMA_PX = 0.5

#: Fixed GeoTIFF creation options (no software/time tags are added by GDAL with these).
CREATION_OPTIONS: dict[str, object] = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "DEFLATE",
    "predictor": 2,
    "zlevel": 9,
    "interleave": "pixel",
    "photometric": "RGB",
}


# ---------------------------------------------------------------------------------------------
def _render(spec: SiteSpec) -> tuple[np.ndarray, np.ndarray, list[SceneObject], list[SceneObject]]:
    transform = site_grid(spec)
    half = SCENE_SIZE_PX * PIXEL_SIZE_M / 2
    cx, cy = transform.c + half, transform.f - half
    ground_seq, before_seq, after_seq = np.random.SeedSequence(spec.seed).spawn(3)
    scene = SCENE_BUILDERS[spec.name](cx, cy, half, np.random.default_rng(ground_seq))

    # the ground is painted once (its textures draw from the generator) and shared by both dates
    ground = Canvas(transform, SCENE_SIZE_PX)
    scene.ground(ground)

    def draw(objects: list[SceneObject]) -> np.ndarray:
        canvas = Canvas(transform, SCENE_SIZE_PX)
        canvas.data[...] = ground.data
        for obj in objects:
            obj.paint_shadow(canvas)
        for obj in objects:
            obj.paint(canvas)
        img = canvas.downsample().astype(np.float64)
        return ndimage.gaussian_filter(img, sigma=(0, PSF_SIGMA_PX, PSF_SIGMA_PX), mode="nearest")

    before = draw(scene.static_objects + scene.before_objects)
    after = draw(scene.static_objects + scene.after_objects)
    dy, dx = spec.shift_after_px
    after = ndimage.shift(after, (0.0, dy, dx), order=3, mode="nearest")
    after = after * np.asarray(spec.gain)[:, None, None] + np.asarray(spec.offset)[:, None, None]
    sigma = np.asarray(spec.noise_sigma)[:, None, None]
    before = before + sigma * np.random.default_rng(before_seq).standard_normal(before.shape)
    after = after + sigma * np.random.default_rng(after_seq).standard_normal(after.shape)
    to_u8 = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(before), to_u8(after), scene.before_objects, scene.after_objects


def _write_tif(
    path: Path, data: np.ndarray, transform: Affine, spec: SiteSpec, date: str, role: str
) -> None:
    profile = dict(CREATION_OPTIONS)
    profile.update(
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype="uint8",
        crs=CRS,
        transform=transform,
    )
    # the only timestamp: the fixed acquisition date (late morning local time = 01:30 UTC)
    stamp = date.replace("-", ":") + " 01:30:00"
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(i, name)
        dst.colorinterp = [
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        ]
        dst.update_tags(
            TIFFTAG_DATETIME=stamp,
            TIFFTAG_IMAGEDESCRIPTION=(
                f"SYNTHETIC sample scene ({role}) of {spec.title}, generated by "
                "satdelta.sample_data.generate; not real imagery"
            ),
            ACQUISITION_DATE=date,
            SATDELTA_SAMPLE="synthetic",
            SATDELTA_SITE=spec.name,
        )


def _wgs84(geom: BaseGeometry, to_wgs: Transformer) -> dict:
    g = shapely.transform(geom, lambda x, y: np.stack(to_wgs.transform(x, y)), interleaved=False)
    if isinstance(g, Polygon):
        g = orient(g, sign=1.0)
    elif isinstance(g, MultiPolygon):
        g = MultiPolygon([orient(p, sign=1.0) for p in g.geoms])
    else:  # pragma: no cover - every changed area is polygonal
        raise TypeError(f"expected a polygonal change area, got {g.geom_type}")

    def rnd(obj: object) -> object:
        if isinstance(obj, (list, tuple)):
            if obj and isinstance(obj[0], float):
                return [round(v, 7) for v in obj]
            return [rnd(o) for o in obj]
        return obj

    m = mapping(g)
    return {"type": m["type"], "coordinates": rnd(m["coordinates"])}


def _truth(
    spec: SiteSpec, transform: Affine, gone: list[SceneObject], new: list[SceneObject]
) -> dict:
    to_wgs = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    feats = []
    for i, (obj, change) in enumerate(
        [(o, "disappeared") for o in gone] + [(o, "appeared") for o in new], start=1
    ):
        area = obj.changed_area
        feats.append(
            {
                "type": "Feature",
                "id": i,
                "geometry": _wgs84(area, to_wgs),
                "properties": {
                    "id": i,
                    "site": spec.name,
                    "label": obj.label,
                    "name": obj.name,
                    "change": change,
                    "area_m2": round(float(area.area), 2),
                    "footprint_area_m2": round(float(obj.footprint.area), 2),
                    "includes_shadow": bool(not obj.shadow.is_empty),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": feats,
        "satdelta": {
            "kind": "sample-truth",
            "synthetic": True,
            "site": spec.name,
            "title": spec.title,
            "before": {"file": spec.file_names()[0], "acquired": spec.before},
            "after": {"file": spec.file_names()[1], "acquired": spec.after},
            "area_crs": CRS,
            "generator": {
                "module": "satdelta.sample_data.generate",
                "seed": spec.seed,
                "pixel_size_m": PIXEL_SIZE_M,
                "size_px": SCENE_SIZE_PX,
                "shift_after_px": list(spec.shift_after_px),
                "gain": list(spec.gain),
                "offset": list(spec.offset),
                "noise_sigma": list(spec.noise_sigma),
                "psf_sigma_px": PSF_SIGMA_PX,
                "sun_azimuth_deg": SUN_AZIMUTH_DEG,
                "sun_elevation_deg": SUN_ELEVATION_DEG,
            },
        },
    }


def generate_site(spec: SiteSpec, outdir: str | Path) -> tuple[Path, Path, Path]:
    """Render and write one site's before/after GeoTIFFs and truth GeoJSON.

    Parameters
    ----------
    spec : SiteSpec
        The site to render.
    outdir : str or Path
        Existing or new folder to write into (files are overwritten).

    Returns
    -------
    tuple of Path
        ``(before, after, truth)`` paths.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    transform = site_grid(spec)
    before, after, gone, new = _render(spec)
    names = spec.file_names()
    paths = tuple(out / n for n in names)
    _write_tif(paths[0], before, transform, spec, spec.before, "before")
    _write_tif(paths[1], after, transform, spec, spec.after, "after")
    truth = _truth(spec, transform, gone, new)
    paths[2].write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths  # type: ignore[return-value]


def generate(outdir: str | Path | None = None) -> list[Path]:
    """Write every site in :data:`SITE_SPECS` into ``outdir`` (default: this package's folder).

    Returns
    -------
    list of Path
        All files written, in site order (before, after, truth per site).
    """
    out = Path(__file__).resolve().parent if outdir is None else Path(outdir)
    written: list[Path] = []
    for spec in SITE_SPECS:
        written.extend(generate_site(spec, out))
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m satdelta.sample_data.generate [--outdir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m satdelta.sample_data.generate",
        description="Write the synthetic sample scenes and their truth polygons.",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        default=None,
        help="folder to write into (default: the sample_data package folder)",
    )
    args = parser.parse_args(argv)
    for path in generate(args.outdir):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
