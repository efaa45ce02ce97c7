"""STAC Items as scene sources: recognise an item, choose its image asset, record provenance.

A STAC Item (a local JSON file or an http(s) URL) names one acquisition and lists its files
as *assets*.  :func:`read_item` recognises an item by its content (JSON with ``"type":
"Feature"`` and ``stac_version``), :func:`choose_assets` picks what to open (the asset asked
for, else the true-colour ``visual`` COG, else the data raster holding most of the
red/green/blue/nir bands, else one-band red/green/blue/nir assets stacked by
:func:`stack_bands`) and :func:`resolve_item` returns where it lives and the provenance (item
id, datetime, collection, licence, asset key and href) that
:func:`~satdelta.imagery.scene.open_scene` records on the scene.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from satdelta.imagery.errors import FetchError, StacError
from satdelta.imagery.fetch import (
    DEFAULT_FETCHER,
    USER_AGENT,
    Fetcher,
    describe_failure,
    fetch_bytes,
)

__all__ = [
    "StacSelection",
    "choose_assets",
    "item_datetime",
    "item_provenance",
    "read_item",
    "resolve_item",
    "stack_bands",
]

log = logging.getLogger(__name__)

#: URL path endings that are rasters, not items: opening them never costs a peek request.
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".png", ".jpg", ".jpeg", ".img", ".vrt", ".ntf")
#: Media types GDAL reads as rasters (a prefix match; parameters such as profile= follow).
RASTER_TYPES = ("image/tiff", "image/jp2", "image/png", "image/jpeg", "application/x-hdf")
#: Asset roles that are never the image to analyse.
SKIP_ROLES = frozenset({"thumbnail", "overview", "metadata", "rendered_preview", "snow-ice"})
#: Band common names satdelta's methods use, in the order they are worth having.
WANTED_BANDS = ("red", "green", "blue", "nir")
#: Other common names of the same bands (STAC 1.1 names Landsat's near infrared ``nir08``).
BAND_ALIASES = {"nir08": "nir"}
_PEEK = 1024


@dataclass(frozen=True)
class StacSelection:
    """The asset chosen from an item.

    Attributes
    ----------
    href : str
        Absolute http(s) URL, local path or GDAL ``/vsi...`` name of the asset, or a VRT
        document stacking one-band assets (:func:`stack_bands`).
    provenance : dict
        ``item`` (where the item was read), ``item_id``, ``collection``, ``datetime``,
        ``license``, ``asset`` (key; list of keys when stacked) and ``href`` (likewise).
    acquired : datetime.date or None
        The item's date (its ``datetime``, else ``start_datetime``).
    """

    href: str
    provenance: dict[str, Any]
    acquired: _dt.date | None


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _looks_like_item(data: Any) -> bool:
    return isinstance(data, dict) and data.get("type") == "Feature" and "stac_version" in data


def _parse(text: bytes, where: str) -> Any:
    try:
        return json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StacError(
            f"{where} looks like JSON but does not parse ({exc}); the file may be truncated. "
            "Fetch it again or check that it is a STAC Item."
        ) from exc


def _peek_url(url: str, fetcher: Fetcher) -> tuple[bytes, str]:
    """The first bytes of ``url`` and its content type (one small ranged GET).

    When that fails, the whole fetch (with retries and backoff) either recovers or raises the
    one-line :class:`FetchError` (404, timeout...).
    """
    headers = {"User-Agent": USER_AGENT, "Range": f"bytes=0-{_PEEK - 1}"}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=fetcher.timeout_s) as resp:  # noqa: S310
            return resp.read(_PEEK), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # an empty file: nothing to peek at, and not an item
            return b"", ""
    except OSError:
        pass
    body, got = fetch_bytes(url, what="STAC item or image", fetcher=fetcher)
    return body[:_PEEK], got.get("Content-Type", "")


def read_item(source: str, *, fetcher: Fetcher = DEFAULT_FETCHER) -> dict[str, Any] | None:
    """The STAC Item at ``source``, or None when ``source`` is not one (a raster, say).

    Parameters
    ----------
    source : str
        A local path or an http(s) URL.  URLs ending in a raster suffix (``.tif``...) are
        not fetched; others are peeked at with one small ranged request.
    fetcher : Fetcher
        Timeout and retries for URLs.

    Returns
    -------
    dict or None
        The item's JSON, with ``"type": "Feature"`` and ``stac_version``.

    Raises
    ------
    StacError
        JSON that does not parse, or JSON that is not a STAC Item.
    FetchError
        A URL that is missing (404) or does not answer.
    """
    if _is_url(source):
        path = urllib.parse.urlsplit(source).path.lower()
        if path.endswith(RASTER_SUFFIXES):
            return None
        head, ctype = _peek_url(source, fetcher)
        if not (head.lstrip().startswith(b"{") or "json" in ctype):
            return None
        body, _ = fetch_bytes(source, what="STAC item", fetcher=fetcher)
    else:
        if source.startswith(("/vsi", "<")):  # GDAL names and VRT documents
            return None
        local = Path(source).expanduser()
        if not local.is_file():
            return None
        with open(local, "rb") as fh:
            if not fh.read(_PEEK).lstrip().startswith(b"{"):
                return None
        body = local.read_bytes()
    data = _parse(body, source)
    if not _looks_like_item(data):
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise StacError(
            f"{source} is JSON but not a STAC Item (type {kind!r}, stac_version "
            f"{data.get('stac_version') if isinstance(data, dict) else None!r}). Pass an Item "
            "(one acquisition) or a raster; `satdelta imagery search` lists items."
        )
    return data


def _roles(asset: Mapping[str, Any]) -> set[str]:
    return {str(r).lower() for r in asset.get("roles") or ()}


def _is_raster(asset: Mapping[str, Any]) -> bool:
    if _roles(asset) & SKIP_ROLES:
        return False
    mtype = str(asset.get("type") or "").lower()
    if mtype:
        return mtype.startswith(RASTER_TYPES)
    path = urllib.parse.urlsplit(str(asset.get("href", ""))).path.lower()
    return path.endswith((".tif", ".tiff", ".jp2"))


def _band_names(asset: Mapping[str, Any]) -> list[str]:
    """Common names of an asset's bands (STAC 1.1 ``bands`` or the ``eo:bands`` extension)."""
    bands = asset.get("bands") or asset.get("eo:bands") or []
    out = []
    for b in bands:
        if isinstance(b, Mapping):
            name = str(b.get("eo:common_name") or b.get("common_name") or "").lower()
            out.append(BAND_ALIASES.get(name, name))
    return out


def _rank(key: str, asset: Mapping[str, Any]) -> tuple[int, int, int]:
    """Higher is better: visual first, then data rasters with more wanted bands, COGs first."""
    roles = _roles(asset)
    visual = key.lower() == "visual" or "visual" in roles
    wanted = sum(name in WANTED_BANDS for name in _band_names(asset))
    cog = "cloud-optimized" in str(asset.get("type") or "").lower()
    return (int(visual), wanted + int("data" in roles), int(cog))


def _describe_assets(assets: Mapping[str, Any]) -> str:
    parts = []
    for key, a in assets.items():
        roles = ",".join(sorted(_roles(a))) or "no roles"
        parts.append(f"{key} ({a.get('type') or 'no type'}; {roles})")
    return "; ".join(parts) or "none"


def _split_bands(usable: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """Keys of one-band assets holding red, green, blue (and nir), when all three exist."""
    found: dict[str, str] = {}
    for key, a in usable.items():
        names = _band_names(a)
        if len(names) == 1 and names[0] in WANTED_BANDS:
            found.setdefault(names[0], key)
    if not all(b in found for b in ("red", "green", "blue")):
        return ()
    return tuple(found[b] for b in WANTED_BANDS if b in found)


def choose_assets(item: Mapping[str, Any], *, asset: str | None = None) -> tuple[str, ...]:
    """The keys of the asset(s) to open from ``item``, as bands of one scene.

    Parameters
    ----------
    item : mapping
        A STAC Item's JSON.
    asset : str, optional
        Asset key(s) to use as they are (``--asset KEY`` or ``--asset KEY1,KEY2,...`` to stack
        one-band assets on the same grid).

    Returns
    -------
    tuple of str
        ``asset`` when given; else the ``visual`` (true-colour) asset; else the raster asset
        with the most red/green/blue/nir bands (data role and COG breaking ties) when it has
        three of them; else the one-band red, green, blue (and nir) assets (Landsat's layout);
        else that best raster asset. Thumbnails, overviews and metadata are never chosen.

    Raises
    ------
    StacError
        An asked-for key is missing, or no asset is a raster.

    Examples
    --------
    >>> item = {"id": "x", "assets": {
    ...     "thumbnail": {"href": "t.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
    ...     "image": {"href": "x.tif", "type": "image/tiff; application=geotiff; "
    ...               "profile=cloud-optimized", "roles": ["data"]}}}
    >>> choose_assets(item)
    ('image',)
    >>> choose_assets(item, asset="thumbnail")
    ('thumbnail',)
    """
    assets: Mapping[str, Any] = item.get("assets") or {}
    item_id = item.get("id", "?")
    if asset is not None:
        keys = tuple(k.strip() for k in asset.split(",") if k.strip())
        if not keys or any(k not in assets for k in keys):
            raise StacError(
                f"item {item_id} has no asset {asset!r}; it has {', '.join(assets) or 'none'}. "
                "Pass one of these (or several, comma-separated) to --asset."
            )
        return keys
    usable = {k: a for k, a in assets.items() if isinstance(a, Mapping) and _is_raster(a)}
    if not usable:
        raise StacError(
            f"item {item_id} has no raster asset satdelta can open; its assets: "
            f"{_describe_assets(assets)}. Pass --asset KEY to open one anyway, or pick "
            "another item."
        )
    best = max(usable, key=lambda k: _rank(k, usable[k]))
    visual, wanted, _ = _rank(best, usable[best])
    if visual or wanted - int("data" in _roles(usable[best])) >= 3:
        return (best,)
    return _split_bands(usable) or (best,)


def resolve_href(href: str, base: str) -> str:
    """An asset ``href`` made absolute against the item's location ``base``.

    ``s3://bucket/key`` becomes ``/vsis3/bucket/key`` (set ``AWS_NO_SIGN_REQUEST=YES`` for
    public buckets); URLs are kept; relative hrefs join the item's URL or folder.

    Examples
    --------
    >>> resolve_href("b.tif", "http://h/items/a.json")
    'http://h/items/b.tif'
    >>> resolve_href("s3://bucket/k/b.tif", "http://h/a.json")
    '/vsis3/bucket/k/b.tif'
    """
    if href.startswith("s3://"):
        return "/vsis3/" + href[len("s3://") :]
    if _is_url(href) or href.startswith("/vsi"):
        return href
    if href.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlsplit(href).path)
    if _is_url(base):
        return urllib.parse.urljoin(base, href)
    if os.path.isabs(href):
        return href
    return str((Path(base).expanduser().resolve().parent / href).resolve())


def item_datetime(item: Mapping[str, Any]) -> _dt.datetime | None:
    """The item's ``datetime`` (else ``start_datetime``), timezone-aware, or None."""
    props = item.get("properties") or {}
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.UTC)


def _licence(item: Mapping[str, Any], fetcher: Fetcher) -> str | None:
    """The item's licence, else its licence link, else its collection's (one small fetch)."""
    props = item.get("properties") or {}
    if props.get("license"):
        return str(props["license"])
    links = [x for x in item.get("links") or () if isinstance(x, Mapping)]
    for link in links:
        if link.get("rel") == "license" and link.get("href"):
            return str(link["href"])
    for link in links:
        href = str(link.get("href") or "")
        if link.get("rel") == "collection" and _is_url(href):
            try:
                body, _ = fetch_bytes(href, what="STAC collection", fetcher=fetcher)
                found = json.loads(body).get("license")
            except (FetchError, ValueError, AttributeError) as exc:
                log.info("no licence from collection %s: %s", href, exc)
                return None
            return str(found) if found else None
    return None


def item_provenance(
    item: Mapping[str, Any],
    keys: tuple[str, ...],
    hrefs: tuple[str, ...],
    where: str,
    licence: str | None,
) -> dict[str, Any]:
    """What run.json and the store record about the item a scene came from.

    ``asset`` and ``href`` are strings for one asset and lists for stacked one-band assets.
    """
    when = item_datetime(item)
    return {
        "item": where,
        "item_id": item.get("id"),
        "collection": item.get("collection"),
        "datetime": when.isoformat().replace("+00:00", "Z") if when else None,
        "license": licence,
        "asset": keys[0] if len(keys) == 1 else list(keys),
        "href": hrefs[0] if len(hrefs) == 1 else list(hrefs),
        "stac_version": item.get("stac_version"),
    }


def _gdal_name(href: str) -> str:
    return "/vsicurl/" + href if _is_url(href) else href


def stack_bands(hrefs: tuple[str, ...], names: tuple[str, ...], item_id: str) -> str:
    """A VRT document stacking one-band rasters on the same grid as the bands of one image.

    GDAL opens the returned XML text directly as a dataset; only the headers are read here.

    Raises
    ------
    StacError
        The rasters are not all one band on the same grid (size, transform, CRS, data type).
    """
    import rasterio
    from rasterio.errors import RasterioIOError
    from satdelta.imagery.scene import gdal_env

    grids = []
    for href in hrefs:
        name = _gdal_name(href)
        try:
            with gdal_env(name), rasterio.open(name) as src:
                grids.append(
                    (src.count, src.width, src.height, tuple(src.transform)[:6], src.crs,
                     src.dtypes[0], src.nodata)
                )  # fmt: skip
        except RasterioIOError as exc:
            why = (describe_failure(href, what="band") if _is_url(href) else None) or (
                f"cannot read band {href}: {' '.join(str(exc).split())}. Check that it exists."
            )
            raise FetchError(f"item {item_id}: {why} Or pass --asset KEY for one asset.") from exc
    first = grids[0]
    if any(g[0] != 1 or g[1:6] != first[1:6] for g in grids):
        sizes = ", ".join(f"{n} {g[1]}x{g[2]} px" for n, g in zip(names, grids, strict=True))
        raise StacError(
            f"the bands of item {item_id} are not one-band images on one grid ({sizes}); "
            "satdelta stacks only those. Pass --asset KEY to open one asset."
        )
    _, width, height, t, crs, dtype, nodata = first
    gdal_type = {"uint8": "Byte", "int8": "Int8"}.get(dtype, dtype.capitalize())
    geo = ",".join(repr(v) for v in (t[2], t[0], t[1], t[5], t[3], t[4]))
    srs = escape(crs.to_wkt()) if crs else ""
    bands = []
    for i, (href, name) in enumerate(zip(hrefs, names, strict=True), start=1):
        nd = "" if nodata is None else f"<NoDataValue>{nodata!r}</NoDataValue>"
        bands.append(
            f'<VRTRasterBand dataType="{gdal_type}" band="{i}"><Description>{escape(name)}'
            f'</Description>{nd}<SimpleSource><SourceFilename relativeToVRT="0">'
            f"{escape(_gdal_name(href))}</SourceFilename><SourceBand>1</SourceBand>"
            "</SimpleSource></VRTRasterBand>"
        )
    return (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{srs}</SRS>'
        f"<GeoTransform>{geo}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )


def resolve_item(
    item: Mapping[str, Any],
    where: str,
    *,
    asset: str | None = None,
    fetcher: Fetcher = DEFAULT_FETCHER,
) -> StacSelection:
    """Choose the asset(s) of ``item`` (read from ``where``) and say where they live.

    Parameters
    ----------
    item : mapping
        The item's JSON (:func:`read_item`).
    where : str
        The item's URL or local path, the base for relative hrefs.
    asset : str, optional
        The asset key(s) to use (see :func:`choose_assets`).
    fetcher : Fetcher
        For the collection's licence, when only the collection states it.

    Raises
    ------
    StacError
        No usable asset, an asset without an href, or bands that cannot be stacked.
    """
    keys = choose_assets(item, asset=asset)
    assets = item.get("assets") or {}
    hrefs = []
    for key in keys:
        raw = assets[key].get("href")
        if not raw:
            raise StacError(f"asset {key!r} of item {item.get('id')} has no href; pick another.")
        hrefs.append(resolve_href(str(raw), where))
    href = hrefs[0]
    if len(keys) > 1:
        names = tuple((_band_names(assets[k]) or [k])[0] or k for k in keys)
        href = stack_bands(tuple(hrefs), names, str(item.get("id")))
    when = item_datetime(item)
    prov = item_provenance(item, keys, tuple(hrefs), where, _licence(item, fetcher))
    return StacSelection(href=href, provenance=prov, acquired=when.date() if when else None)
