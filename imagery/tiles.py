"""Web map tiles (XYZ templates and WMTS layers) mosaicked into a georeferenced GeoTIFF.

A :class:`TileSource` turns a zoom and tile column/row into a URL: an XYZ template
(``https://host/{z}/{x}/{y}.png``) or a WMTS layer read from its capabilities document
(:func:`wmts_source`; Web-Mercator tile matrix sets only, with a time or release where the
layer has that dimension).  :func:`mosaic_tiles` fetches the tiles covering an area (cached on
disk, at a polite rate, retried with backoff) and :func:`write_tiles` writes the area as an
RGB COG in EPSG:3857, the attribution in its tags, which any satdelta command reads as a scene.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from satdelta.imagery.errors import FetchError, InvalidParameterError, TileError
from satdelta.imagery.fetch import Fetcher, fetch_bytes

__all__ = [
    "TileSource",
    "TileMosaic",
    "lonlat_to_tile",
    "mosaic_tiles",
    "tile_range",
    "wmts_source",
    "write_tiles",
]

log = logging.getLogger(__name__)

#: Half the side of the Web-Mercator square, metres (EPSG:3857).
ORIGIN_M = 20037508.342789244
TILE_PX = 256
#: At most this many tiles per mosaic: more is a bulk download, which tile policies forbid.
MAX_TILES = 1024
#: Default pace for tile services: at most ten requests a second.
TILE_FETCHER = Fetcher(timeout_s=20.0, retries=3, backoff_s=0.5, min_interval_s=0.1)
_WMTS_KEYS = ("{TileMatrix}", "{TileRow}", "{TileCol}")


@dataclass(frozen=True)
class TileSource:
    """Where tiles come from.

    Attributes
    ----------
    template : str
        URL with ``{z}``, ``{x}``, ``{y}`` (XYZ) or ``{TileMatrix}``, ``{TileRow}``,
        ``{TileCol}`` (WMTS) placeholders; other ``{Name}`` placeholders are filled from
        ``values``.
    attribution : str
        Who must be credited for the imagery.
    matrix_ids : mapping of int to str
        WMTS tile matrix identifier for each zoom (empty for XYZ: the zoom itself).
    values : mapping of str to str
        Values of the other placeholders (``Time``, ``Style``, ``TileMatrixSet``...).
    """

    template: str
    attribution: str = ""
    matrix_ids: Mapping[int, str] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyz = all(k in self.template for k in ("{z}", "{x}", "{y}"))
        wmts = all(k in self.template for k in _WMTS_KEYS)
        if not (xyz or wmts) or not self.template.startswith(("http://", "https://")):
            raise InvalidParameterError(
                f"expected an http(s) tile URL template with {{z}}, {{x}} and {{y}} (e.g. "
                f"https://tile.example.org/{{z}}/{{x}}/{{y}}.png); got {self.template!r}."
            )

    def url(self, z: int, x: int, y: int) -> str:
        """The URL of tile ``z/x/y`` (XYZ numbering: row 0 at the north)."""
        if "{TileMatrix}" in self.template and z not in self.matrix_ids:
            raise TileError(
                f"the WMTS layer has no tile matrix for zoom {z}; it has zooms "
                f"{sorted(self.matrix_ids)}. Pick one of these."
            )
        names = {
            "z": str(z),
            "x": str(x),
            "y": str(y),
            "TileMatrix": self.matrix_ids.get(z, str(z)),
            "TileRow": str(y),
            "TileCol": str(x),
            **self.values,
        }
        out = self.template
        for name, value in names.items():
            out = out.replace("{" + name + "}", urllib.parse.quote(value, safe=":/"))
        return out


def lonlat_to_tile(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """Fractional XYZ tile (x, y) of a WGS84 point at ``zoom`` (Web Mercator).

    Examples
    --------
    >>> lonlat_to_tile(0.0, 0.0, 1)
    (1.0, 1.0)
    """
    n = 2**zoom
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    x = (lon + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return (x, y)


def tile_range(bbox: tuple[float, float, float, float], zoom: int) -> tuple[int, int, int, int]:
    """Inclusive tile columns and rows (x0, y0, x1, y1) covering ``bbox`` (W, S, E, N).

    Examples
    --------
    >>> tile_range((-1.0, -1.0, 1.0, 1.0), 1)
    (0, 0, 1, 1)
    """
    if not 0 <= zoom <= 24:
        raise InvalidParameterError(f"expected a zoom level 0..24; got {zoom}.")
    w, s, e, n = bbox
    x0, y0 = lonlat_to_tile(w, n, zoom)
    x1, y1 = lonlat_to_tile(e, s, zoom)
    last = 2**zoom - 1
    return (
        min(int(x0), last),
        min(int(y0), last),
        min(math.ceil(x1) - 1, last),
        min(math.ceil(y1) - 1, last),
    )


def _tile_transform(zoom: int, x0: int, y0: int) -> Affine:
    size = 2 * ORIGIN_M / 2**zoom / TILE_PX
    return Affine(
        size, 0.0, -ORIGIN_M + x0 * TILE_PX * size, 0.0, -size, ORIGIN_M - y0 * TILE_PX * size
    )


def _decode(body: bytes, url: str) -> np.ndarray:
    """A tile image (PNG, JPEG, WebP...) as (4, 256, 256) uint8 RGBA."""
    from rasterio.errors import RasterioIOError
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(body) as mem, mem.open() as src:
            data = src.read()
            cmap = src.colormap(1) if src.count == 1 and _has_colormap(src) else None
    except RasterioIOError as exc:
        raise TileError(
            f"tile {url} is not an image GDAL reads ({' '.join(str(exc).split())}); it may be "
            "truncated or an error page. Check the template's file type."
        ) from exc
    if data.shape[1:] != (TILE_PX, TILE_PX):
        raise TileError(
            f"tile {url} is {data.shape[2]}x{data.shape[1]} px; expected 256x256 tiles. "
            "Use the service's 256 px template."
        )
    if cmap is not None:
        lut = np.zeros((256, 4), np.uint8)
        for k, rgba in cmap.items():
            lut[k] = rgba
        return np.moveaxis(lut[data[0]], -1, 0)
    alpha = np.full(data.shape[1:], 255, np.uint8)
    if data.shape[0] in (2, 4):
        data, alpha = data[:-1], data[-1]
    rgb = np.repeat(data, 3, axis=0) if data.shape[0] == 1 else data[:3]
    return np.concatenate([rgb.astype(np.uint8), alpha[np.newaxis]])


def _has_colormap(src: object) -> bool:
    try:
        src.colormap(1)  # type: ignore[attr-defined]
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class TileMosaic:
    """Tiles stitched and cut to an area.

    Attributes
    ----------
    data : (3, M, N) ndarray of uint8
        RGB; 0 in every band where no tile pixel is (transparent); real zeros become 1.
    transform : affine.Affine
        EPSG:3857 grid of ``data``.
    zoom : int
    tiles : int
        Tiles the area needed.
    fetched : int
        Tiles requested from the service (the others came from the cache).
    """

    data: np.ndarray
    transform: Affine
    zoom: int
    tiles: int
    fetched: int

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or self.data.shape[0] != 3 or self.data.dtype != np.uint8:
            raise InvalidParameterError(
                f"expected (3, M, N) uint8 RGB; got {self.data.shape} {self.data.dtype}."
            )


def _cached_tile(
    source: TileSource, z: int, x: int, y: int, cache: Path, fetcher: Fetcher
) -> tuple[bytes | None, bool]:
    """(tile bytes or None when missing, whether it was requested)."""
    path = cache / str(z) / str(x) / f"{y}.tile"
    if path.is_file():
        return path.read_bytes(), False
    url = source.url(z, x, y)
    try:
        body, _ = fetch_bytes(url, what=f"tile {z}/{x}/{y}", fetcher=fetcher)
    except FetchError as exc:
        if exc.status == 404:
            return None, True
        raise
    if not body:  # 204 No Content: no imagery there
        return None, True
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.part")
    tmp.write_bytes(body)
    tmp.replace(path)
    return body, True


def default_cache() -> Path:
    """``$SATDELTA_TILE_CACHE``, else ``~/.cache/satdelta/tiles``."""
    env = os.environ.get("SATDELTA_TILE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "satdelta" / "tiles"


def mosaic_tiles(
    source: TileSource,
    bbox: tuple[float, float, float, float],
    zoom: int,
    *,
    cache_dir: Path | None = None,
    fetcher: Fetcher = TILE_FETCHER,
) -> TileMosaic:
    """Fetch the tiles covering ``bbox`` at ``zoom`` and cut the mosaic to the area.

    Parameters
    ----------
    source : TileSource
    bbox : (W, S, E, N)
        WGS84 degrees.
    zoom : int
        Tile zoom level (pixel size about 156543 m / 2**zoom at the equator).
    cache_dir : pathlib.Path, optional
        Tile cache (default :func:`default_cache`); one folder per template and values.
    fetcher : Fetcher
        Pace, timeout and retries (default: at most ten requests a second).

    Raises
    ------
    TileError
        Too many tiles, tiles missing inside the area (404 or empty answers), or tiles that are
        not images.
    FetchError
        A tile request still failing after the retries.
    """
    x0, y0, x1, y1 = tile_range(bbox, zoom)
    count = (x1 - x0 + 1) * (y1 - y0 + 1)
    if count > MAX_TILES:
        raise TileError(
            f"the area needs {count} tiles at zoom {zoom}; at most {MAX_TILES} are fetched "
            "(tile services forbid bulk downloads). Lower --zoom or make the area smaller."
        )
    key = hashlib.sha256(repr((source.template, sorted(source.values.items()))).encode())
    cache = (cache_dir or default_cache()) / key.hexdigest()[:16]
    canvas = np.zeros((4, (y1 - y0 + 1) * TILE_PX, (x1 - x0 + 1) * TILE_PX), np.uint8)
    missing: list[tuple[int, int]] = []
    fetched = 0
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            body, requested = _cached_tile(source, zoom, x, y, cache, fetcher)
            fetched += requested
            if body is None:
                missing.append((x, y))
                continue
            r, c = (y - y0) * TILE_PX, (x - x0) * TILE_PX
            canvas[:, r : r + TILE_PX, c : c + TILE_PX] = _decode(body, source.url(zoom, x, y))
    if missing:
        raise TileError(
            f"{len(missing)} of {count} tiles inside the area are missing (HTTP 404 or empty), "
            f"first {zoom}/{missing[0][0]}/{missing[0][1]} at {source.url(zoom, *missing[0])}. "
            f"The service has no imagery there at zoom {zoom}: try a lower --zoom, another "
            "release or time, or a smaller area."
        )
    return _cut(canvas, _tile_transform(zoom, x0, y0), bbox, zoom, count, fetched)


def _cut(
    canvas: np.ndarray,
    transform: Affine,
    bbox: tuple[float, float, float, float],
    zoom: int,
    count: int,
    fetched: int,
) -> TileMosaic:
    from pyproj import Transformer

    to_m = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (left, right), (bottom, top) = to_m.transform([bbox[0], bbox[2]], [bbox[1], bbox[3]])
    inv = ~transform
    c0, r0 = inv * (left, top)
    c1, r1 = inv * (right, bottom)
    c0, r0 = max(int(math.floor(c0)), 0), max(int(math.floor(r0)), 0)
    c1 = min(max(int(math.ceil(c1)), c0 + 1), canvas.shape[2])
    r1 = min(max(int(math.ceil(r1)), r0 + 1), canvas.shape[1])
    part = canvas[:, r0:r1, c0:c1]
    rgb = part[:3].copy()
    opaque = part[3] > 0
    rgb[:, opaque] = np.maximum(rgb[:, opaque], 1)  # 0 is kept for "no tile pixel"
    rgb[:, ~opaque] = 0
    return TileMosaic(rgb, transform * Affine.translation(c0, r0), zoom, count, fetched)


def write_tiles(
    out: str | os.PathLike[str],
    source: TileSource,
    bbox: tuple[float, float, float, float],
    zoom: int,
    *,
    acquired: str | None = None,
    cache_dir: Path | None = None,
    fetcher: Fetcher = TILE_FETCHER,
) -> tuple[Path, TileMosaic]:
    """Mosaic ``bbox`` at ``zoom`` (:func:`mosaic_tiles`) and write it as an RGB COG.

    The file is in EPSG:3857 with nodata 0; its tags hold the attribution, the template,
    the zoom and, when given, the acquisition date ``acquired`` (a basemap release date).

    Returns
    -------
    (pathlib.Path, TileMosaic)
    """
    from rasterio.crs import CRS
    from satdelta.imagery.cog import write_cog

    mosaic = mosaic_tiles(source, bbox, zoom, cache_dir=cache_dir, fetcher=fetcher)
    tags = {
        "ATTRIBUTION": source.attribution
        or f"tiles from {urllib.parse.urlsplit(source.template).netloc}",
        "TILE_TEMPLATE": source.template,
        "TILE_VALUES": ";".join(f"{k}={v}" for k, v in sorted(source.values.items())),
        "TILE_ZOOM": str(zoom),
        "BBOX_WGS84": ",".join(f"{v:.7f}" for v in bbox),
    }
    if acquired:
        tags["ACQUISITION_DATE"] = acquired
    path = write_cog(
        out,
        mosaic.data,
        transform=mosaic.transform,
        crs=CRS.from_epsg(3857),
        nodata=0,
        band_names=["red", "green", "blue"],
        tags=tags,
    )
    return path, mosaic


# --------------------------------------------------------------------------------- WMTS

_NS = {
    "wmts": "http://www.opengis.net/wmts/1.0",
    "ows": "http://www.opengis.net/ows/1.1",
}


def _text(node: ET.Element | None, path: str) -> str:
    found = node.find(path, _NS) if node is not None else None
    return (found.text or "").strip() if found is not None else ""


def _web_mercator_zooms(tms: ET.Element) -> dict[int, str]:
    """Zoom -> matrix identifier, when ``tms`` is the Web-Mercator (GoogleMapsCompatible) grid."""
    crs = _text(tms, "ows:SupportedCRS")
    if not any(code in crs for code in ("3857", "900913", "102100")):
        return {}
    out: dict[int, str] = {}
    for matrix in tms.findall("wmts:TileMatrix", _NS):
        width = int(_text(matrix, "wmts:MatrixWidth") or 0)
        corner = _text(matrix, "wmts:TopLeftCorner").split()
        size = _text(matrix, "wmts:TileWidth")
        if width < 1 or width & (width - 1) or size != str(TILE_PX) or len(corner) != 2:
            continue
        if not math.isclose(float(corner[0]), -ORIGIN_M, rel_tol=1e-6):
            continue
        out[int(math.log2(width))] = _text(matrix, "ows:Identifier")
    return out


def wmts_source(
    capabilities_url: str,
    layer: str,
    *,
    time: str | None = None,
    style: str | None = None,
    fetcher: Fetcher = TILE_FETCHER,
) -> TileSource:
    """A :class:`TileSource` for ``layer`` of the WMTS service at ``capabilities_url``.

    Parameters
    ----------
    capabilities_url : str
        The service's ``WMTSCapabilities.xml`` (or ``?SERVICE=WMTS&REQUEST=GetCapabilities``).
    layer : str
        Layer identifier.
    time : str, optional
        Value of the layer's time (or release) dimension; default: the layer's default.
    style : str, optional
        Default: the layer's default style.

    Raises
    ------
    TileError
        Unknown layer, no Web-Mercator tile matrix set, no tile URL template, or a time the
        layer does not offer.
    """
    body, _ = fetch_bytes(capabilities_url, what="WMTS capabilities", fetcher=fetcher)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise TileError(
            f"{capabilities_url} is not a WMTS capabilities XML document ({exc}). Expected the "
            "URL of WMTSCapabilities.xml."
        ) from exc
    layers = {_text(lyr, "ows:Identifier"): lyr for lyr in root.iter(f"{{{_NS['wmts']}}}Layer")}
    node = layers.get(layer)
    if node is None:
        raise TileError(
            f"no layer {layer!r} in {capabilities_url}; it has {', '.join(sorted(layers))}. "
            "Pass one of these."
        )
    sets = {_text(t, "ows:Identifier"): t for t in root.iter(f"{{{_NS['wmts']}}}TileMatrixSet")}
    zooms: dict[int, str] = {}
    set_id = ""
    for link in node.findall("wmts:TileMatrixSetLink", _NS):
        set_id = _text(link, "wmts:TileMatrixSet")
        if set_id in sets and (zooms := _web_mercator_zooms(sets[set_id])):
            break
    if not zooms:
        raise TileError(
            f"layer {layer} offers no Web-Mercator (EPSG:3857, 256 px) tile matrix set; "
            "satdelta mosaics only those. Use GDAL's WMTS driver for other grids."
        )
    values = {"TileMatrixSet": set_id, "Style": style or _default_style(node)}
    for dim in node.findall("wmts:Dimension", _NS):
        name = _text(dim, "ows:Identifier")
        offered = [(v.text or "").strip() for v in dim.findall("wmts:Value", _NS)]
        chosen = time if (time and name.lower() in ("time", "release")) else None
        chosen = chosen or _text(dim, "wmts:Default") or (offered[-1] if offered else "")
        if offered and chosen not in offered:
            raise TileError(
                f"layer {layer} has no {name} {chosen!r}; it offers {', '.join(offered)}."
            )
        values[name] = chosen
    template = _tile_template(root, node, capabilities_url, layer, values)
    provider = _text(root, "ows:ServiceProvider/ows:ProviderName")
    title = _text(node, "ows:Title") or layer
    attribution = f"{title}, {provider}" if provider else title
    return TileSource(template, attribution=attribution, matrix_ids=zooms, values=values)


def _default_style(node: ET.Element) -> str:
    for style in node.findall("wmts:Style", _NS):
        if style.get("isDefault") == "true":
            return _text(style, "ows:Identifier")
    return _text(node, "wmts:Style/ows:Identifier") or "default"


def _tile_template(
    root: ET.Element, node: ET.Element, url: str, layer: str, values: Mapping[str, str]
) -> str:
    """The layer's RESTful tile URL template, else a KVP GetTile template."""
    for res in node.findall("wmts:ResourceURL", _NS):
        if res.get("resourceType") == "tile" and res.get("template"):
            return urllib.parse.urljoin(url, str(res.get("template")))
    for op in root.iter(f"{{{_NS['ows']}}}Operation"):
        if op.get("name") != "GetTile":
            continue
        get = op.find(".//ows:Get", _NS)
        href = get.get("{http://www.w3.org/1999/xlink}href") if get is not None else None
        if href:
            fmt = _text(node, "wmts:Format") or "image/png"
            params = {
                "SERVICE": "WMTS",
                "REQUEST": "GetTile",
                "VERSION": "1.0.0",
                "LAYER": layer,
                "FORMAT": fmt,
                **{k.upper(): "{" + k + "}" for k in values},
                **{k.upper(): "{" + k + "}" for k in ("TileMatrix", "TileRow", "TileCol")},
            }
            query = "&".join(f"{k}={v}" for k, v in params.items())
            return f"{href}{'&' if '?' in href else '?'}{query}"
    raise TileError(f"layer {layer} of {url} gives no tile URL (no ResourceURL, no GetTile).")
