"""Pixel-edge polygons of a labelled raster: GDAL's polygonizer, called through its C API.

``rasterio.features.shapes`` runs ``GDALPolygonize`` and then builds a GeoJSON-like dict a
polygon and a Python tuple a vertex, holding the GIL from start to end: on a 1024² NAIP
block of 5,500 polygons and 94,000 vertices about 0.1 s of GDAL and 0.05-0.09 s of Python,
during which the other block thread waits for the GIL (two threads polygonising at once took
longer than one doing both). :func:`polygonize` calls the same GDAL function of the libgdal
this process has loaded (rasterio's) through ``ctypes``, which releases the GIL for the
call, and takes each polygon back as WKB, made into shapely geometries in one call: the same
polygons with the same vertices in the same order (``tests/imagery/test_polygonize.py``),
and about a third of the time holding the GIL. :func:`polygonize` uses
``rasterio.features.shapes`` instead where that libgdal cannot be found (its path is read
from ``/proc/self/maps``: Linux), where two are loaded (which one is rasterio's is not
known), where it lacks a function, or where it will not make the in-memory datasets.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import rasterio  # noqa: F401 - loads rasterio's libgdal, the one used here
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.features import shapes
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.loaded_libraries import loaded_library_paths

__all__ = ["polygonize"]

log = logging.getLogger(__name__)

_GDT_BYTE, _GDT_INT32 = 1, 5  # GDALDataType
_WKB_POLYGON, _OFT_INTEGER, _WKB_NDR = 3, 0, 1  # OGRwkbGeometryType, OGRFieldType, byte order


def polygonize(
    values: NDArray[np.integer],
    mask: NDArray[np.bool_],
    *,
    connectivity: Literal[4, 8] = 4,
    transform: Affine | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Polygons of the connected regions of equal value where ``mask`` is True.

    Parameters
    ----------
    values : (M, N) integer ndarray
        Region values (read as int32).
    mask : (M, N) bool ndarray
        True = traced; the other pixels belong to no polygon.
    connectivity : {4, 8}, default 4
    transform : affine.Affine, optional
        Pixel to map coordinates (pixel corners: column, row), as GDAL applies a dataset's
        geotransform; pixel coordinates when None.

    Returns
    -------
    values : (K,) int64 ndarray
        The value of each polygon.
    polygons : (K,) object ndarray of shapely Polygons
        In GDAL's order, each ring with GDAL's first vertex and direction (those of
        ``rasterio.features.shapes``).

    Examples
    --------
    >>> v = np.array([[1, 1, 0], [0, 2, 2]], np.int32)
    >>> vals, polys = polygonize(v, v > 0)
    >>> vals.tolist(), [p.area for p in polys]
    ([1, 2], [2.0, 2.0])
    """
    raw = np.asarray(values)
    m = np.ascontiguousarray(mask, bool)
    if raw.ndim != 2 or m.shape != raw.shape or connectivity not in (4, 8):
        raise InvalidParameterError(
            f"polygonize needs (M, N) values and a mask of the same shape, connectivity 4 or "
            f"8; got {raw.shape}, {m.shape}, {connectivity!r}."
        )
    if not np.issubdtype(raw.dtype, np.integer) and raw.dtype != bool:
        raise InvalidParameterError(f"polygonize needs integer values; got {raw.dtype}.")
    if raw.size and not np.can_cast(raw.dtype, np.int32):  # int64 labels and the like
        low, high = int(raw.min()), int(raw.max())
        if low < -(2**31) or high >= 2**31:
            raise InvalidParameterError(
                f"polygonize needs values that fit in int32; got {low}..{high}. Renumber the "
                "regions (e.g. skimage.segmentation.relabel_sequential)."
            )
    v = np.ascontiguousarray(raw, np.int32)
    if not v.size or not m.any():
        return np.zeros(0, np.int64), np.empty(0, object)
    gdal = _gdal()
    if gdal is not None:
        try:
            return gdal.polygonize(v, m, connectivity, transform)
        except _Unusable as exc:  # this GDAL will not make the in-memory datasets
            _give_up(gdal, exc)
    return _with_rasterio(v, m, connectivity, transform)


def _with_rasterio(
    v: NDArray[np.int32], m: NDArray[np.bool_], connectivity: int, transform: Affine | None
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """The same polygons through ``rasterio.features.shapes`` (every ring's vertices in one
    array, the polygons made in bulk)."""
    values, corners, lengths, ring_polygon = [], [], [], []
    kwargs: dict[str, Any] = {} if transform is None else {"transform": transform}
    for geom, value in shapes(v, mask=m, connectivity=connectivity, **kwargs):
        values.append(int(value))
        for ring in geom["coordinates"]:
            corners.extend(ring)
            lengths.append(len(ring))
            ring_polygon.append(len(values) - 1)
    xy = np.array(corners, np.float64).reshape(-1, 2)
    rings = shapely.linearrings(xy, indices=np.repeat(np.arange(len(lengths)), lengths))
    polygons = shapely.polygons(rings, indices=ring_polygon)
    return np.array(values, np.int64), np.asarray(polygons, dtype=object)


class _Unusable(Exception):
    """The loaded GDAL does not make the in-memory datasets :class:`_Gdal` needs."""


class _Gdal:
    """The GDAL and OGR C functions :func:`polygonize` calls, from one loaded libgdal.

    ``GDALPolygonize`` goes through a ``CDLL`` (the GIL released during the call); the
    small per-polygon calls through a ``PyDLL`` (the GIL kept: releasing and taking it back
    thousands of times would make each call wait on the other threads).
    """

    def __init__(self, path: str) -> None:
        free, held = ctypes.CDLL(path), ctypes.PyDLL(path)
        vp, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        strings = ctypes.POINTER(ctypes.c_char_p)
        self.path = path
        self._fn: dict[str, Any] = {}
        for lib, name, restype, argtypes in (
            (free, "GDALAllRegister", None, []),
            (free, "GDALGetDriverByName", vp, [s]),
            (free, "GDALCreate", vp, [vp, s, i, i, i, i, vp]),
            (free, "GDALAddBand", i, [vp, i, strings]),
            (free, "GDALGetRasterBand", vp, [vp, i]),
            (free, "GDALSetGeoTransform", i, [vp, ctypes.POINTER(ctypes.c_double)]),
            (free, "GDALClose", None, [vp]),
            (free, "GDALDatasetCreateLayer", vp, [vp, s, vp, i, vp]),
            (free, "OGR_Fld_Create", vp, [s, i]),
            (free, "OGR_Fld_Destroy", None, [vp]),
            (free, "OGR_L_CreateField", i, [vp, vp, i]),
            (free, "GDALPolygonize", i, [vp, vp, vp, i, strings, vp, vp]),
            (held, "OGR_L_ResetReading", None, [vp]),
            (held, "OGR_L_GetNextFeature", vp, [vp]),
            (held, "OGR_F_GetFieldAsInteger", i, [vp, i]),
            (held, "OGR_F_GetGeometryRef", vp, [vp]),
            (held, "OGR_G_WkbSize", i, [vp]),
            (held, "OGR_G_ExportToWkb", i, [vp, i, s]),
            (held, "OGR_F_Destroy", None, [vp]),
        ):
            fn = getattr(lib, name)  # AttributeError: not a libgdal with these
            fn.restype, fn.argtypes = restype, argtypes
            self._fn[name] = fn
        f = self._fn
        f["GDALAllRegister"]()  # idempotent; rasterio registers lazily
        self.raster = f["GDALGetDriverByName"](b"MEM")
        # OGR's in-memory vector driver ("Memory"; GDAL 3.11 moved vector layers to "MEM")
        self.vector = f["GDALGetDriverByName"](b"Memory") or self.raster
        if not self.raster:
            raise AttributeError("GDAL's MEM driver is missing")

    def _band_over(self, arr: np.ndarray, kind: int) -> tuple[int, int]:
        """A MEM dataset whose one band reads ``arr``'s memory (no copy); (dataset, band)."""
        f = self._fn
        ds = f["GDALCreate"](self.raster, b"", arr.shape[1], arr.shape[0], 0, kind, None)
        if not ds:
            raise _Unusable(f"GDAL made no {arr.shape} in-memory raster")
        options = (ctypes.c_char_p * 4)(
            f"DATAPOINTER={arr.ctypes.data}".encode(),
            f"PIXELOFFSET={arr.strides[1]}".encode(),
            f"LINEOFFSET={arr.strides[0]}".encode(),
            None,
        )
        if f["GDALAddBand"](ds, kind, options) != 0:
            f["GDALClose"](ds)
            raise _Unusable(f"GDAL added no band over a {arr.shape} array")
        return ds, f["GDALGetRasterBand"](ds, 1)

    def polygonize(
        self,
        v: NDArray[np.int32],
        m: NDArray[np.bool_],
        connectivity: int,
        transform: Affine | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
        f = self._fn
        mask8 = m.view(np.uint8)
        opened: list[int] = []
        try:
            ds, band = self._band_over(v, _GDT_INT32)
            opened.append(ds)
            if transform is not None:
                gt = (ctypes.c_double * 6)(*transform.to_gdal())
                if f["GDALSetGeoTransform"](ds, gt) != 0:
                    raise _Unusable("GDAL set no geotransform on an in-memory raster")
            mds, mask_band = self._band_over(mask8, _GDT_BYTE)
            opened.append(mds)
            vds = f["GDALCreate"](self.vector, b"", 0, 0, 0, 0, None)
            if not vds:
                raise _Unusable("GDAL made no in-memory vector dataset")
            opened.append(vds)
            layer = f["GDALDatasetCreateLayer"](vds, b"polygons", None, _WKB_POLYGON, None)
            if not layer:
                raise _Unusable("GDAL made no in-memory layer")
            field = f["OGR_Fld_Create"](b"value", _OFT_INTEGER)
            if not field:
                raise _Unusable("GDAL made no field definition")
            made = f["OGR_L_CreateField"](layer, field, 1)
            f["OGR_Fld_Destroy"](field)
            if made != 0:
                raise _Unusable("GDAL made no field in an in-memory layer")
            options = (ctypes.c_char_p * 2)(b"8CONNECTED=8" if connectivity == 8 else None, None)
            err = f["GDALPolygonize"](band, mask_band, layer, 0, options, None, None)
            if err != 0:
                raise RuntimeError(
                    f"GDAL's polygonize failed (error {err}) on a {v.shape[0]} x {v.shape[1]} "
                    "raster."
                )
            values, wkbs = self._features(layer)
        finally:
            for handle in reversed(opened):
                f["GDALClose"](handle)
        polygons = shapely.from_wkb(np.array(wkbs, dtype=object))
        return np.array(values, np.int64), polygons

    def _features(self, layer: int) -> tuple[list[int], list[bytes]]:
        """Each feature's value and WKB (little-endian), in the layer's order."""
        f = self._fn
        next_feature, value_of = f["OGR_L_GetNextFeature"], f["OGR_F_GetFieldAsInteger"]
        geometry_of, size_of = f["OGR_F_GetGeometryRef"], f["OGR_G_WkbSize"]
        export, destroy = f["OGR_G_ExportToWkb"], f["OGR_F_Destroy"]
        values: list[int] = []
        wkbs: list[bytes] = []
        buf = ctypes.create_string_buffer(1 << 16)
        f["OGR_L_ResetReading"](layer)
        while feature := next_feature(layer):
            try:
                geom = geometry_of(feature)
                if not geom:
                    raise RuntimeError("GDAL's polygonize made a feature without a geometry")
                n = size_of(geom)
                if n > len(buf):
                    buf = ctypes.create_string_buffer(2 * n)
                if export(geom, _WKB_NDR, buf) != 0:
                    raise RuntimeError("GDAL could not write a polygon as WKB")
                values.append(value_of(feature, 0))
                wkbs.append(ctypes.string_at(buf, n))
            finally:
                destroy(feature)
        return values, wkbs


_lock = threading.Lock()
_loaded: list[_Gdal | None] = []  # found once: [] not yet looked for, [None] not found


def _gdal() -> _Gdal | None:
    """The loaded libgdal's functions, or None (then :func:`polygonize` uses rasterio)."""
    with _lock:
        if not _loaded:
            _loaded.append(_find(loaded_library_paths("libgdal")))
        return _loaded[0]


def _give_up(gdal: _Gdal, exc: Exception) -> None:
    """rasterio's shapes from now on in this process."""
    with _lock:
        if _loaded and _loaded[0] is gdal:
            log.debug("polygonize: %s unusable (%s), rasterio's shapes used", gdal.path, exc)
            _loaded[0] = None


def _find(paths: Sequence[str]) -> _Gdal | None:
    if len(paths) != 1:  # none, or two GDALs: which one is rasterio's is not known here
        log.debug("polygonize: %d libgdals loaded, rasterio's shapes used", len(paths))
        return None
    try:
        return _Gdal(paths[0])
    except (OSError, AttributeError) as exc:
        log.debug("polygonize: %s unusable (%s), rasterio's shapes used", paths[0], exc)
        return None
