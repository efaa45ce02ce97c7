"""napari reader: any GDAL raster or http(s) COG as a georeferenced image layer.

Small rasters are read whole; large ones (or any with overviews) open lazily as a
multiscale pyramid (:func:`satdelta.imagery.pyramid.open_pyramid`), so napari
reads only the visible window at the level it needs.  Every layer carries the
affine that places it in the viewer's shared map frame (see :mod:`._frame`) and
its CRS/transform in ``metadata["satdelta"]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioIOError
from satdelta.imagery.errors import SceneReadError
from satdelta.imagery.pyramid import open_pyramid
from satdelta.imagery.scene import gdal_env, parse_date
from satdelta.plugins.napari._frame import MapFrame, affine_to_list, layer_affine

__all__ = ["get_reader", "raster_layer_data", "display_bands", "frame_of_layers"]

log = logging.getLogger(__name__)

#: Rasters at most this many pixels (rows x cols) without overviews are read whole.
EAGER_PIXELS = 4096 * 4096

LayerData = tuple[Any, dict[str, Any], str]


def _gdal_path(source: str | os.PathLike[str]) -> str:
    """The name GDAL opens for ``source``; a STAC Item gives its chosen asset's."""
    from satdelta.imagery.stac import read_item, resolve_item

    text = os.fspath(source)
    item = read_item(text)
    if item is not None:
        text = resolve_item(item, text).href
    if text.startswith(("http://", "https://")):
        return "/vsicurl/" + text
    return text


def display_bands(
    colorinterp: Sequence[Any], descriptions: Sequence[str | None]
) -> tuple[int, ...]:
    """1-based bands to show: true colour when the file says which bands are R, G, B.

    Parameters
    ----------
    colorinterp : sequence of rasterio ColorInterp
        Per-band colour interpretation from the file.
    descriptions : sequence of str or None
        Per-band descriptions (names such as ``"B3_red"``).

    Returns
    -------
    tuple of int
        Three bands (R, G, B) for a colour display, or one band for grey.

    Examples
    --------
    >>> display_bands([ColorInterp.gray] * 3, ["B1_blue", "B2_green", "B3_red"])
    (3, 2, 1)
    >>> display_bands([ColorInterp.gray], [None])
    (1,)
    """
    n = len(colorinterp)
    if n < 3:
        return (1,)
    ci = list(colorinterp)
    wanted = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
    if all(w in ci for w in wanted):
        return tuple(ci.index(w) + 1 for w in wanted)
    names = [(d or "").lower() for d in descriptions]
    found = []
    for colour in ("red", "green", "blue"):
        hits = [i for i, d in enumerate(names) if colour in d.replace("-", "_").split("_")]
        if len(hits) != 1:
            break
        found.append(hits[0] + 1)
    if len(found) == 3:
        return tuple(found)
    return (1, 2, 3)


def _contrast(sample: np.ndarray, dtype: np.dtype) -> list[float]:
    if dtype == np.uint8:
        return [0.0, 255.0]
    finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
    if finite.size == 0:
        return [0.0, 1.0]
    lo, hi = np.percentile(finite, [2, 98])
    if hi <= lo:
        hi = lo + 1.0
    return [float(lo), float(hi)]


def raster_layer_data(
    source: str | os.PathLike[str],
    *,
    frame: MapFrame | None = None,
    name: str | None = None,
    role: str | None = None,
    bands: tuple[int, ...] | None = None,
) -> LayerData:
    """Build napari layer data for a raster without importing napari.

    Parameters
    ----------
    source : str or path-like
        GDAL path or http(s) URL.
    frame : MapFrame, optional
        The viewer's frame; default: a frame at this raster's top-left corner.
    name : str, optional
        Layer name; default: the file stem.
    role : str, optional
        ``"before"``, ``"after"`` or another tag kept in the metadata.
    bands : tuple of int, optional
        1-based bands to display; default from :func:`display_bands`.

    Returns
    -------
    (data, kwargs, "image")
        ``data`` is an ndarray or a list of lazy pyramid levels (multiscale).

    Raises
    ------
    SceneReadError
        When GDAL cannot open the source.
    """
    path = _gdal_path(source)
    try:
        with gdal_env(path), rasterio.open(path) as ds:
            transform, crs = ds.transform, ds.crs
            height, width, count = ds.height, ds.width, ds.count
            overviews = ds.overviews(1)
            chosen = bands or display_bands(ds.colorinterp, ds.descriptions)
            tags = ds.tags()
    except RasterioIOError as exc:
        raise SceneReadError(
            f"could not open {os.fspath(source)} as a raster ({exc}); "
            "check the path or URL and that it is a GDAL-readable image."
        ) from exc
    georef = crs is not None and not transform.is_identity
    if not georef:
        crs = None
    if frame is None:
        frame = MapFrame.from_transform(transform, crs)
    layout = "last" if len(chosen) == 3 else "none"
    pyramid = open_pyramid(path, bands=chosen, layout=layout)
    lazy = bool(overviews) or height * width > EAGER_PIXELS
    if lazy:
        data: Any = list(pyramid.levels)
        sample = np.asarray(pyramid.levels[-1][...])
        if not overviews:
            log.warning(
                "%s has no overviews: napari will read full resolution when zoomed out; "
                "build them with `gdaladdo -r average %s` for speed",
                source,
                source,
            )
    else:
        data = np.asarray(pyramid.levels[0][...])
        sample = data
    stem = Path(str(source).split("?")[0]).stem or "raster"
    acquired = _acquired(tags, stem)
    kwargs: dict[str, Any] = {
        "name": name or (role_name(role, acquired) if role else stem),
        "affine": layer_affine(frame, transform, crs, shape=(height, width)),
        "rgb": layout == "last",
        "multiscale": lazy,
        "contrast_limits": _contrast(sample, sample.dtype),
        "metadata": {
            "satdelta": {
                "frame": frame.to_dict(),
                "crs": crs.to_wkt() if crs is not None else None,
                "transform": affine_to_list(transform),
                "shape": [height, width],
                "count": count,
                "bands": list(chosen),
                "source": os.fspath(source),
                "role": role,
                "acquired": acquired,
                "stem": stem,
            }
        },
    }
    return (data, kwargs, "image")


def role_name(role: str, acquired: str | None) -> str:
    """A layer's name from its role and acquisition date.

    Examples
    --------
    >>> role_name("before", "2009-08-18")
    'before 2009-08-18'
    >>> role_name("after", None)
    'after'
    """
    return f"{role} {acquired}" if acquired else role


def _acquired(tags: dict[str, str], stem: str) -> str | None:
    """Acquisition date (ISO text) from the raster's tags, else from its file name."""
    text = tags.get("ACQUISITION_DATE") or tags.get("acquired")
    if text:
        return text
    found = parse_date(stem)
    return found.isoformat() if found is not None else None


def frame_of_layers(layers: Sequence[Any]) -> MapFrame | None:
    """The map frame already used by a viewer's layers (first that has one)."""
    for layer in layers:
        meta = getattr(layer, "metadata", None) or {}
        sd = meta.get("satdelta") if isinstance(meta, dict) else None
        if sd and sd.get("frame"):
            return MapFrame.from_dict(sd["frame"])
    return None


def _current_frame() -> MapFrame | None:
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no viewer, no frame
        return None
    return frame_of_layers(viewer.layers) if viewer is not None else None


def _readable(path: str) -> bool:
    try:
        with gdal_env(_gdal_path(path)), rasterio.open(_gdal_path(path)):
            return True
    except (RasterioIOError, OSError, ValueError):
        return False


def read_rasters(path: str | list[str]) -> list[LayerData]:
    """Reader function: one image layer per path, all in one map frame."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    frame = _current_frame()
    # two rasters opened together are a before/after pair, in the order given
    roles: list[str | None] = ["before", "after"] if len(paths) == 2 else [None] * len(paths)
    out: list[LayerData] = []
    for p, role in zip(paths, roles, strict=True):
        layer = raster_layer_data(p, frame=frame, role=role)
        if frame is None:
            frame = MapFrame.from_dict(layer[1]["metadata"]["satdelta"]["frame"])
        out.append(layer)
    return out


RASTER_SUFFIXES = (
    ".tif",
    ".tiff",
    ".gtiff",
    ".vrt",
    ".jp2",
    ".img",
    ".nc",
    ".hdf",
    ".h5",
    ".ntf",
    ".sid",
    ".ecw",
    ".dem",
    ".asc",
    ".bil",
    ".envi",
    ".hdr",
    ".kea",
    ".rst",
    ".grd",
)


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """npe2 reader hook.

    Takes every http(s) URL and every path with a raster suffix (so an unreadable
    file gets our error message, saying what to do, in a napari notification),
    plus any other path GDAL can open.
    """
    paths = [os.fspath(p) for p in ([path] if isinstance(path, (str, os.PathLike)) else path)]
    if not paths:
        return None
    for p in paths:
        ours = p.startswith(("http://", "https://")) or Path(p).suffix.lower() in RASTER_SUFFIXES
        if not ours and not _readable(p):
            return None
    return read_rasters
