"""Open before/after scenes: any raster GDAL reads, from a path or an http(s) URL.

A :class:`Scene` is a lazy, immutable handle: opening one reads only the
header (and hashes a local file for provenance); pixels travel only when
:meth:`Scene.read` asks for a window.  Remote files are read through GDAL's
``/vsicurl/`` with HTTP range requests, so only the needed blocks travel.  A STAC Item (file
or URL) opens its chosen asset and keeps the item's provenance (:mod:`satdelta.imagery.stac`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import http.client
import logging
import math
import os
import re
import threading
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window
from satdelta.imagery import file_digest
from satdelta.imagery.errors import (
    FetchError,
    InvalidParameterError,
    RasterTooLargeError,
    SceneReadError,
    StacError,
)
from satdelta.imagery.fetch import describe_failure
from satdelta.imagery.pixel_masks import valid_pixels
from satdelta.imagery.stac import read_item, resolve_item

__all__ = [
    "Scene",
    "gdal_env",
    "handles_kept_open",
    "open_scene",
    "parse_date",
    "with_checksum",
]

log = logging.getLogger(__name__)

#: GDAL options used when a remote scene is opened (cheap, range-request friendly reads).
#: Not used for local files: listing the folder is how GDAL finds sidecars (ENVI .hdr, .aux.xml).
GDAL_OPTIONS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "GDAL_HTTP_TIMEOUT": "30",
    "GDAL_HTTP_MAX_RETRY": "3",  # on 429 and 5xx, waiting longer each time
    "GDAL_HTTP_RETRY_DELAY": "0.5",
}

# metadata keys that state when the image was acquired, in order of trust
_ACQUISITION_KEYS = (
    "ACQUISITIONDATETIME",
    "ACQUISITION_DATETIME",
    "ACQUISITION_DATE",
    "ACQUISITIONDATE",
    "DATE_ACQUIRED",
    "SENSING_TIME",
    "SENSING_DATE",
    "DATATAKE_SENSING_START",
    "IMAGE_DATE",
    "DATETIME",
    "ACQUIRED",
    "DATE",
)
_DATE_RE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})[-_:/.]?(0[1-9]|1[0-2])[-_:/.]?(0[1-9]|[12]\d|3[01])(?!\d)"
)
# GDAL drivers that open tables or text as a raster: not imagery to compare
_NOT_IMAGES = {"XYZ": "a table of x,y,z points", "CSV": "a CSV table"}
_COLOUR_NAMES = {
    ColorInterp.red: "red",
    ColorInterp.green: "green",
    ColorInterp.blue: "blue",
    ColorInterp.alpha: "alpha",
    ColorInterp.nir: "nir",
    ColorInterp.coastal: "coastal",
    ColorInterp.rededge: "rededge",
    ColorInterp.swir: "swir",
    ColorInterp.pan: "pan",
}


def gdal_env(gdal_path: str = "") -> rasterio.Env:
    """Return a :class:`rasterio.Env` for opening ``gdal_path``.

    Remote (``/vsicurl/``) names, and VRT documents naming them, get range-request friendly
    options (:data:`GDAL_OPTIONS`).
    """
    if "/vsicurl/" in gdal_path:  # a remote file, or a VRT document over remote files
        return rasterio.Env(**GDAL_OPTIONS)
    return rasterio.Env()


def parse_date(text: str) -> _dt.date | None:
    """Find a calendar date in ``text`` (metadata value or file name).

    Parameters
    ----------
    text : str
        E.g. ``"2009:08:18 10:00:00"``, ``"m_4709963_se_14_1_20090818"`` or
        ``"taizhou_2000-03-17_etm"``.

    Returns
    -------
    datetime.date or None
        The first plausible date (years 1900-2099, not glued to other digits).

    Examples
    --------
    >>> parse_date("m_4709963_se_14_1_20090818")
    datetime.date(2009, 8, 18)
    >>> parse_date("taizhou_2000-03-17_etm")
    datetime.date(2000, 3, 17)
    >>> parse_date("no date here") is None
    True
    """
    for m in _DATE_RE.finditer(text):
        try:
            return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Scene:
    """An opened raster: georeferencing, bands, date and provenance; pixels on demand.

    Attributes
    ----------
    source : str
        What the caller passed: a local path (absolute) or an http(s) URL.
    crs : rasterio.crs.CRS or None
        None when the image is not georeferenced; it then works on its pixel grid.
    transform : affine.Affine
        Maps (col, row) to map (x, y); identity when not georeferenced.
    width, height, count : int
        Size in pixels and number of bands.
    dtype : str
        Data type of the file's pixels (reads always return float32).
    nodata : float or None
        The file's nodata value, if any.
    band_names : tuple of str
        From band descriptions, else colour interpretation (red, green, blue, nir...),
        else ``b1..bn``.
    acquired : datetime.date or None
        Acquisition date from metadata or the file name.
    sha256 : str or None
        Hex digest of the local file (None for URLs and when not computed).
    scene_id : str
        The file stem (e.g. ``m_4709963_se_14_1_20090818``).
    gdal_path : str
        The name GDAL opens (``/vsicurl/<url>`` for URLs).
    remote : dict or None
        For URLs, what the server says identifies this version of the file, in place of a
        sha256 (hashing would download it whole): ``etag``, ``last_modified`` and
        ``content_length`` from a HEAD request (None where the server does not say).
    stac : dict or None
        For a STAC Item source, the item's provenance: ``item``, ``item_id``, ``collection``,
        ``datetime``, ``license``, ``asset``, ``href`` (see :mod:`satdelta.imagery.stac`).
    """

    source: str
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    band_names: tuple[str, ...]
    acquired: _dt.date | None
    sha256: str | None
    scene_id: str
    gdal_path: str = field(default="", repr=False, compare=False)
    remote: dict[str, str | int | None] | None = field(default=None, compare=False, hash=False)
    stac: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.count <= 0:
            raise InvalidParameterError(
                f"a scene needs at least one band and one pixel; got {self.count} band(s) of "
                f"{self.width}x{self.height} px from {self.source}. Check the file."
            )
        if len(self.band_names) != self.count:
            raise InvalidParameterError(
                f"expected {self.count} band names, got {len(self.band_names)}: {self.band_names}."
            )
        if not self.gdal_path:
            object.__setattr__(self, "gdal_path", self.source)

    # -- geometry ---------------------------------------------------------------------------
    @property
    def georeferenced(self) -> bool:
        """True when the scene has a CRS (map coordinates), False on a bare pixel grid."""
        return self.crs is not None

    @property
    def bounds(self) -> BoundingBox:
        """(left, bottom, right, top) in CRS units (pixels when not georeferenced).

        Always ``left < right`` and ``bottom < top``, also for south-up (positive y pixel
        size) and rotated grids: the box around the four corners.
        """
        corners = [self.transform @ xy for xy in _corners(self.width, self.height)]
        xs, ys = zip(*corners, strict=True)
        return BoundingBox(min(xs), min(ys), max(xs), max(ys))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(band, row, col) size."""
        return (self.count, self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def pixel_size_m(self) -> float | None:
        """Pixel edge in metres (geometric mean of x and y), None when not georeferenced.

        Projected CRS: CRS units times the unit's metre factor.  Geographic CRS: geodesic
        length of one pixel at the scene centre (WGS84-like ellipsoid of the CRS).
        """
        if self.crs is None:
            return None
        rx, ry = self.res
        if self.crs.is_projected:
            factor = self.crs.linear_units_factor[1]
            return math.sqrt(rx * ry) * factor
        from pyproj import CRS as PCRS
        from pyproj import Geod

        geod: Geod = PCRS.from_user_input(self.crs.to_wkt()).get_geod() or Geod(ellps="WGS84")
        b = self.bounds
        lon, lat = (b.left + b.right) / 2, (b.bottom + b.top) / 2
        _, _, dx = geod.inv(lon, lat, lon + rx, lat)
        _, _, dy = geod.inv(lon, lat, lon, lat + ry)
        return math.sqrt(abs(dx) * abs(dy))

    # -- pixels ----------------------------------------------------------------------------
    @contextmanager
    def open(self) -> Iterator[DatasetReader]:
        """Open the underlying rasterio dataset (within satdelta's GDAL environment).

        Inside :func:`handles_kept_open` for this scene, each thread reuses its own handle
        (so GDAL's block cache serves the tiles a neighbouring window decoded).
        """
        kept = _KEPT.get(self.gdal_path)
        if kept is not None:
            src = getattr(kept.local, "src", None)
            if src is None:
                with gdal_env(self.gdal_path), warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    src = kept.local.src = rasterio.open(self.gdal_path)
                with kept.lock:
                    kept.handles.append(src)
            with gdal_env(self.gdal_path):
                yield src
            return
        with gdal_env(self.gdal_path), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            try:
                src = rasterio.open(self.gdal_path)
            except RasterioIOError as exc:
                raise SceneReadError(
                    f"cannot open {self.source}: {gdal_reason(exc)}. "
                    "Check that it still exists and is readable."
                ) from exc
            with src:
                yield src

    def band_indexes(self, bands: Sequence[int | str] | None = None) -> tuple[int, ...]:
        """Resolve ``bands`` (1-based indexes or band names) to 1-based indexes.

        Raises
        ------
        BandMismatchError
            When an index is out of range or a name is unknown.
        """
        from satdelta.imagery.errors import BandMismatchError

        if bands is None:
            return tuple(range(1, self.count + 1))
        out = []
        for b in bands:
            if isinstance(b, str) and not b.isdigit():
                if b not in self.band_names:
                    raise BandMismatchError(
                        f"band {b!r} not in {self.scene_id}; it has {', '.join(self.band_names)}. "
                        "Pick bands by these names or by 1-based index."
                    )
                out.append(self.band_names.index(b) + 1)
            else:
                i = int(b)
                if not 1 <= i <= self.count:
                    raise BandMismatchError(
                        f"band {i} out of range for {self.scene_id}: expected 1..{self.count}. "
                        "Band indexes are 1-based."
                    )
                out.append(i)
        if not out:
            raise BandMismatchError("no bands selected: pass at least one 1-based band index.")
        return tuple(out)

    def read(
        self,
        window: Window | None = None,
        *,
        bands: Sequence[int | str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read pixels and their validity.

        Parameters
        ----------
        window : rasterio.windows.Window, optional
            The part to read (whole scene when None); only this part travels for remote files.
        bands : sequence of int or str, optional
            1-based band indexes or band names (all bands when None).

        Returns
        -------
        data : (B, M, N) ndarray of float32
            Pixel values as stored (values under invalid pixels are whatever the file holds).
        valid : (M, N) ndarray of bool
            True where the pixel has data in every selected band, from the file's nodata
            value, per-dataset mask or alpha band only (never guessed from pixel values); a
            nodata value takes precedence over an alpha band, as in GDAL.
        """
        idx = list(self.band_indexes(bands))
        rows, cols = (self.height, self.width) if window is None else (window.height, window.width)
        _check_fits_in_memory(self.source, len(idx), rows, cols)
        with self.open() as src:
            try:
                data = src.read(idx, window=window, out_dtype="float32")
                valid = valid_pixels(src, idx, window, data)
            except RasterioIOError as exc:
                where = "" if window is None else f" (window {window})"
                raise SceneReadError(
                    f"cannot read pixels of {self.source}{where}: {gdal_reason(exc)}. "
                    "The file may be truncated or corrupt; re-download it."
                ) from exc
        return data, valid

    def window_transform(self, window: Window) -> Affine:
        """The affine transform of ``window``'s pixel grid."""
        return rasterio.windows.transform(window, self.transform)


@dataclass
class _Kept:
    local: threading.local = field(default_factory=threading.local)
    lock: threading.Lock = field(default_factory=threading.Lock)
    handles: list[DatasetReader] = field(default_factory=list)


_KEPT: dict[str, _Kept] = {}


@contextmanager
def handles_kept_open(scenes: Sequence[Scene], *, cache_mb: int = 128) -> Iterator[None]:
    """Keep one open dataset per scene and thread while the block runs; GDAL's block cache
    limited to ``cache_mb`` (it holds decoded tiles while their datasets stay open).

    For window-by-window readers (:mod:`satdelta.imagery.block_run`): a window's halo
    falls in tiles its neighbour already decoded, which the thread's open handle still has
    in the cache. Every handle is closed when the block ends.
    """
    added = [s.gdal_path for s in scenes if s.gdal_path not in _KEPT]
    for path in added:
        _KEPT[path] = _Kept()
    try:
        with rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20):
            yield
    finally:
        for path in added:
            kept = _KEPT.pop(path)
            for src in kept.handles:
                src.close()


def gdal_reason(exc: BaseException) -> str:
    """GDAL's own words for a failure, on one line.

    rasterio often says only "See previous exception for details": the reason is then
    the chained GDAL error, which this returns instead.
    """
    text = str(exc)
    if "previous exception" in text and exc.__cause__ is not None:
        text = str(exc.__cause__)
    return " ".join(text.split()).rstrip(".")


def available_memory() -> int:
    """Bytes of memory this process can still take (``MemAvailable``; physical pages else)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: let numpy decide


def _check_fits_in_memory(source: str, bands: int, rows: int, cols: int) -> None:
    """Refuse a read whose float32 pixels and masks would not fit in the memory left."""
    need = bands * rows * cols * (np.dtype("float32").itemsize + 1)
    have = available_memory()
    if need > have:
        raise RasterTooLargeError(
            f"{source} is too large to read whole: {bands} band(s) of {cols}x{rows} px need "
            f"{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB of memory is free. Crop it to "
            "the area of interest first (e.g. gdal_translate -projwin) or pick fewer bands."
        )


def _check_readable(src: DatasetReader, source: str) -> None:
    """Refuse what opens in GDAL but is no image satdelta can compare."""
    if src.count == 0:
        subs = list(src.subdatasets)
        hint = (
            f"It holds {len(subs)} subdataset(s); pass one of them, e.g. {subs[0]}"
            if subs
            else "Pass a raster with at least one band"
        )
        raise SceneReadError(f"{source} has no raster band ({src.driver}). {hint}.")
    if src.driver in _NOT_IMAGES:
        raise SceneReadError(
            f"{source} is {_NOT_IMAGES[src.driver]} ({src.driver}), not an image. "
            "Expected a raster (GeoTIFF, COG, PNG, JPEG2000, ENVI...)."
        )
    complex_bands = [d for d in src.dtypes if np.dtype(d).kind == "c"]
    if complex_bands:
        raise SceneReadError(
            f"{source} holds complex-valued pixels ({complex_bands[0]}); satdelta compares real "
            "values. Convert it first, e.g. to amplitude: gdal_calc.py -A IN --calc 'abs(A)' "
            "--outfile OUT.tif."
        )


def _corners(width: int, height: int) -> tuple[tuple[int, int], ...]:
    """The (col, row) pixel corners of a width x height grid."""
    return ((0, 0), (width, 0), (0, height), (width, height))


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _remote_fingerprint(url: str, *, timeout: float = 15.0) -> dict[str, str | int | None] | None:
    """ETag, Last-Modified and Content-Length of *url* from one HEAD request (None on failure)."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            headers = resp.headers
    except (OSError, ValueError, http.client.HTTPException) as exc:
        log.info("no HEAD answer from %s (%s): provenance keeps the URL only", url, exc)
        return None
    length = headers.get("Content-Length")
    return {
        "etag": headers.get("ETag"),
        "last_modified": headers.get("Last-Modified"),
        "content_length": int(length) if length and length.isdigit() else None,
    }


def with_checksum(scene: Scene) -> Scene:
    """``scene`` with the sha256 (or a URL's fingerprint) :func:`open_scene` leaves out when
    called with ``checksum=False``; the block runner computes it beside its first pass."""
    if scene.sha256 is not None or scene.remote is not None:
        return scene
    if _is_url(scene.source):
        return dataclasses.replace(scene, remote=_remote_fingerprint(scene.source))
    local = Path(scene.source)
    if not local.is_file():
        return scene
    return dataclasses.replace(scene, sha256=_sha256(local))


def _sha256(path: Path) -> str:
    """The file's sha256 (the one the command line started early, if the file is unchanged)."""
    return file_digest.sha256(path)


def _band_names(src: DatasetReader) -> tuple[str, ...]:
    names: list[str] = []
    interps = src.colorinterp
    for i in range(src.count):
        desc = (src.descriptions[i] or "").strip()
        if desc:
            names.append(desc)
            continue
        colour = _COLOUR_NAMES.get(interps[i])
        if colour is not None and colour not in names and interps.count(interps[i]) == 1:
            names.append(colour)
        else:
            names.append(f"b{i + 1}")
    # names must be unique so that bands can be picked by name
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        unique.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return tuple(unique)


def _acquired(src: DatasetReader, stem: str) -> _dt.date | None:
    tags: dict[str, str] = {}
    for domain in ("IMAGERY", None):
        try:
            tags.update({k.upper(): v for k, v in src.tags(ns=domain).items()})
        except Exception:  # a driver without that domain
            continue
    for key in _ACQUISITION_KEYS:
        if key in tags and (d := parse_date(tags[key])):
            return d
    if d := parse_date(stem):
        return d
    if "TIFFTAG_DATETIME" in tags:  # often the processing time: trusted last
        return parse_date(tags["TIFFTAG_DATETIME"])
    return None


def _open_item(item: dict[str, Any], where: str, *, asset: str | None, checksum: bool) -> Scene:
    """Open the chosen asset of a STAC Item; the scene keeps the item's id, date and provenance."""
    chosen = resolve_item(item, where, asset=asset)
    try:
        scene = open_scene(chosen.href, checksum=checksum)
    except SceneReadError as exc:  # say which item and asset, and how to pick another
        raise type(exc)(
            f"STAC item {item.get('id')}, asset {chosen.provenance['asset']}: {exc} "
            "Another asset of the item can be chosen with --asset KEY."
        ) from exc
    return dataclasses.replace(
        scene,
        source=where,
        scene_id=str(item.get("id") or scene.scene_id),
        acquired=chosen.acquired or scene.acquired,
        stac=chosen.provenance,
    )


def open_scene(
    source: str | os.PathLike[str], *, checksum: bool = True, asset: str | None = None
) -> Scene:
    """Open a raster as a :class:`Scene` (header only; pixels are read on demand).

    Parameters
    ----------
    source : str or os.PathLike
        Local path of any raster GDAL reads (GeoTIFF, COG, ENVI, JPEG2000, PNG...), an
        ``http(s)://`` URL (read with range requests through ``/vsicurl/``), a GDAL
        ``/vsi...`` name, or a STAC Item (local JSON file or URL, recognised by its content).
    checksum : bool, default True
        Compute the sha256 of a local file for provenance; for a URL, which is never
        downloaded whole, record the server's ETag, Last-Modified and Content-Length instead.
    asset : str, optional
        For a STAC Item, the asset key to open (default: the true-colour ``visual`` asset,
        else the raster with most red/green/blue/nir bands; see
        :func:`~satdelta.imagery.stac.choose_assets`; ``"B04,B03,B02"`` stacks one-band assets).

    Returns
    -------
    Scene

    Raises
    ------
    SceneReadError
        When the source is missing or GDAL cannot read it (:class:`FetchError` for URLs that
        are missing, time out or are served without range support).
    StacError
        A STAC Item without a usable asset, or ``asset`` given for a source that is no item.

    Examples
    --------
    >>> import numpy as np, rasterio, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny_2020-05-01.tif")
    >>> with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=1,
    ...                    dtype="uint8", crs="EPSG:32651",
    ...                    transform=rasterio.transform.from_origin(0, 30, 10, 10)) as dst:
    ...     dst.write(np.ones((1, 3, 4), "uint8"))
    >>> s = open_scene(path)
    >>> s.shape, s.acquired, s.pixel_size_m, s.band_names
    ((1, 3, 4), datetime.date(2020, 5, 1), 10.0, ('b1',))
    """
    raw = os.fspath(source)
    item = read_item(raw)
    if item is not None:
        where = raw if _is_url(raw) else str(Path(raw).expanduser().resolve())
        return _open_item(item, where, asset=asset, checksum=checksum)
    if asset is not None:
        raise StacError(
            f"asset {asset!r} asked for, but {raw} is not a STAC Item. Drop the asset option "
            "or pass the item's path or URL."
        )
    if _is_url(raw):
        gdal_path = "/vsicurl/" + raw
        src_str = raw
        stem = Path(raw.split("?", 1)[0].rstrip("/")).stem or "scene"
        local: Path | None = None
    elif raw.startswith("/vsi") or raw.startswith("<VRTDataset"):
        gdal_path = src_str = raw
        stem = Path(raw).stem if raw.startswith("/vsi") else "vrt"
        local = None
    else:
        local = Path(raw).expanduser().resolve()
        gdal_path = src_str = str(local)
        stem = local.stem
        if not local.exists():
            raise SceneReadError(
                f"no such file: {raw}. Expected a raster path or an http(s) URL; check the path."
            )
        if local.is_dir():
            raise SceneReadError(f"{raw} is a directory; expected a raster file.")
    with gdal_env(gdal_path), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(gdal_path) as src:
                _check_readable(src, src_str)
                crs = src.crs if src.crs else None
                transform = src.transform if crs is not None else Affine.identity()
                nodata = src.nodata
                scene = dict(
                    crs=crs,
                    transform=transform,
                    width=src.width,
                    height=src.height,
                    count=src.count,
                    dtype=str(src.dtypes[0]),
                    nodata=None if nodata is None else float(nodata),
                    band_names=_band_names(src),
                    acquired=_acquired(src, stem),
                )
        except RasterioIOError as exc:
            what = "URL" if local is None else "file"
            if _is_url(raw) and (why := describe_failure(raw)):
                raise FetchError(f"cannot read the raster: {why}") from exc
            raise SceneReadError(
                f"cannot read {src_str} as a raster: {gdal_reason(exc)}. "
                f"Expected a {what} GDAL reads (GeoTIFF, COG, PNG, JPEG2000, ENVI...)."
            ) from exc
    if crs is None:
        log.info("%s is not georeferenced: working on its pixel grid", src_str)
    sha = _sha256(local) if (checksum and local is not None) else None
    remote = _remote_fingerprint(raw) if (checksum and _is_url(raw)) else None
    return Scene(
        source=src_str, sha256=sha, scene_id=stem, gdal_path=gdal_path, remote=remote, **scene
    )
