"""Search a STAC API for an area and dates, and pick the best before and after items.

:func:`search_items` asks a STAC API (through pystac-client) for the items of a collection
over an area and a time window; :func:`rank_items` orders them for one side of an event (most
of the area covered, then least cloud, then closest to the event); :func:`write_pair` keeps
the chosen items beside a ``pairs.csv`` that ``satdelta detect``/``satdelta batch`` read,
optionally with local COGs clipped to the area.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from satdelta.imagery.errors import FetchError, InvalidParameterError, StacError
from satdelta.imagery.stac import item_datetime, resolve_href

__all__ = [
    "ItemChoice",
    "area_around",
    "best_items",
    "clip_item",
    "default_windows",
    "item_source",
    "parse_bbox",
    "parse_window",
    "rank_items",
    "search_items",
    "write_pair",
]

log = logging.getLogger(__name__)

Side = Literal["before", "after"]
BBox = tuple[float, float, float, float]


def parse_bbox(text: str | Sequence[float]) -> BBox:
    """``W,S,E,N`` in WGS84 degrees, checked.

    Examples
    --------
    >>> parse_bbox("-99.2,47.0,-99.1,47.1")
    (-99.2, 47.0, -99.1, 47.1)
    """
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        vals = []
    if len(vals) != 4 or not (-180 <= vals[0] < vals[2] <= 180 and -90 <= vals[1] < vals[3] <= 90):
        raise InvalidParameterError(
            f"expected a bbox W,S,E,N in WGS84 degrees with west < east and south < north; "
            f"got {text!r}."
        )
    return (vals[0], vals[1], vals[2], vals[3])


def _day(text: str, *, end: bool) -> _dt.datetime:
    when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if len(text) <= 10 and end:  # a bare date: the whole day
        when += _dt.timedelta(days=1) - _dt.timedelta(microseconds=1)
    return when if when.tzinfo else when.replace(tzinfo=_dt.UTC)


def parse_window(text: str) -> tuple[_dt.datetime, _dt.datetime]:
    """A time window ``A/B`` (dates or RFC 3339 times) as (start, end), timezone-aware.

    Examples
    --------
    >>> start, end = parse_window("2009-06-01/2009-09-30")
    >>> start.isoformat(), end.date().isoformat()
    ('2009-06-01T00:00:00+00:00', '2009-09-30')
    """
    start, sep, stop = text.partition("/")
    try:
        if not sep:
            raise ValueError("no '/'")
        window = (_day(start, end=False), _day(stop, end=True))
    except ValueError:
        window = None
    if window is None or window[1] < window[0]:
        raise InvalidParameterError(
            f"expected a time window START/END (e.g. 2020-06-01/2020-09-30) with START <= END; "
            f"got {text!r}."
        )
    return window


def search_items(
    api_url: str,
    *,
    collection: str,
    bbox: BBox,
    datetime: str,
    max_cloud: float | None = None,
    max_items: int = 500,
) -> list[dict[str, Any]]:
    """The items of ``collection`` over ``bbox`` in the time window ``datetime``.

    Parameters
    ----------
    api_url : str
        A STAC API root (with an item-search endpoint).
    collection : str
        Collection id (e.g. ``sentinel-2-l2a``, ``naip``).
    bbox : (W, S, E, N)
        WGS84 degrees.
    datetime : str
        ``START/END`` (see :func:`parse_window`).
    max_cloud : float, optional
        Drop items whose ``eo:cloud_cover`` exceeds this percentage (items that do not say are
        kept).
    max_items : int, default 500

    Returns
    -------
    list of dict
        Items as JSON, in the API's order.

    Raises
    ------
    FetchError
        The API cannot be reached or refuses the search.
    StacError
        The search found nothing (the message says what to widen).
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.warnings import DoesNotConformTo, PystacClientWarning

    parse_window(datetime)
    try:
        with warnings.catch_warnings():  # what they warn of is raised below as one line
            warnings.simplefilter("ignore", PystacClientWarning)
            client = Client.open(api_url)
        search = client.search(
            collections=[collection], bbox=list(bbox), datetime=datetime, max_items=max_items
        )
        items = list(search.items_as_dicts())
    except (NotImplementedError, DoesNotConformTo) as exc:  # a static catalogue: no search
        raise StacError(
            f"{api_url} has no item search (a static catalogue, or not a STAC API root). "
            "Pass its Item URLs to `satdelta detect` directly, or use a STAC API root URL."
        ) from exc
    except APIError as exc:
        if getattr(exc, "status_code", None) is None:  # no answer at all: down or unreachable
            raise _unreachable(api_url, exc.__context__ or exc) from exc
        raise FetchError(
            f"the STAC API at {api_url} refused the search: {' '.join(str(exc).split())[:300]}. "
            "Check the collection id and the API URL."
        ) from exc
    except (OSError, ValueError) as exc:
        raise _unreachable(api_url, exc) from exc
    kept = [i for i in items if max_cloud is None or not _cloud(i) > max_cloud]
    if not kept:
        cloud = "" if max_cloud is None else f" with at most {max_cloud:g} % cloud"
        dropped = f" ({len(items)} more were too cloudy)" if items else ""
        raise StacError(
            f"no {collection} items over {','.join(f'{v:g}' for v in bbox)} in {datetime}"
            f"{cloud}{dropped}. Widen the dates or the area, raise --max-cloud, or check the "
            "collection id."
        )
    return kept


def _unreachable(api_url: str, exc: BaseException) -> FetchError:
    reason = " ".join(str(exc).split())[:200]
    return FetchError(
        f"cannot reach a STAC API at {api_url} ({reason}). Expected the API's root URL "
        "(e.g. https://earth-search.aws.element84.com/v1); check it and your connection."
    )


def _cloud(item: Mapping[str, Any]) -> float:
    value = (item.get("properties") or {}).get("eo:cloud_cover")
    return float(value) if isinstance(value, (int, float)) else math.nan


def coverage(item: Mapping[str, Any], bbox: BBox) -> float:
    """Fraction (0-1) of ``bbox`` inside the item's footprint (in degrees, for ranking)."""
    from shapely.geometry import box, shape

    area = box(*bbox)
    geom = item.get("geometry")
    foot = shape(geom) if geom else box(*item.get("bbox", (0, 0, 0, 0))[:4])
    return float(foot.intersection(area).area / area.area)


@dataclass(frozen=True)
class ItemChoice:
    """One candidate item for a side of the event, with what ranked it.

    Attributes
    ----------
    item : dict
        The item's JSON.
    coverage : float
        Fraction of the area inside the footprint (0-1).
    cloud : float
        ``eo:cloud_cover`` in percent, NaN when the item does not say.
    days_from_event : float
        Days between the item and the window's edge next to the event (before: the window's
        end; after: its start).
    """

    item: dict[str, Any]
    coverage: float
    cloud: float
    days_from_event: float

    @property
    def item_id(self) -> str:
        """The item's id."""
        return str(self.item.get("id"))

    def key(self) -> tuple[float, float, float]:
        """Sort key: more coverage (to 1 %), less cloud (unknown last), closer to the event."""
        cloud = math.inf if math.isnan(self.cloud) else self.cloud
        return (-round(self.coverage, 2), cloud, self.days_from_event)


def rank_items(
    items: Sequence[Mapping[str, Any]], bbox: BBox, *, window: str, side: Side
) -> list[ItemChoice]:
    """Order ``items`` best first for one side of an event.

    Parameters
    ----------
    items : sequence of dict
        STAC items (e.g. from :func:`search_items`).
    bbox : (W, S, E, N)
        The area, WGS84 degrees.
    window : str
        The side's time window ``START/END``.
    side : {"before", "after"}
        Before: closest to the window's end is best; after: closest to its start.

    Returns
    -------
    list of ItemChoice
        Best first: most of the area covered (to 1 %), then least cloud, then closest date.
    """
    start, end = parse_window(window)
    edge = end if side == "before" else start
    out = []
    for item in items:
        when = item_datetime(item)
        days = abs((when - edge).total_seconds()) / 86400 if when else math.inf
        out.append(ItemChoice(dict(item), coverage(item, bbox), _cloud(item), days))
    return sorted(out, key=ItemChoice.key)


def best_items(
    api_url: str,
    *,
    collection: str,
    bbox: BBox,
    window: str,
    side: Side,
    max_cloud: float | None = None,
) -> list[ItemChoice]:
    """The items of one side of an event, best first (:func:`search_items`, then
    :func:`rank_items`); raises as :func:`search_items` does."""
    items = search_items(
        api_url, collection=collection, bbox=bbox, datetime=window, max_cloud=max_cloud
    )
    return rank_items(items, bbox, window=window, side=side)


def area_around(lon: float, lat: float, *, half_side_m: float = 500.0) -> BBox:
    """A small W,S,E,N box centred on a point (a point claim's search area).

    Examples
    --------
    >>> w, s, e, n = area_around(10.0, 0.0, half_side_m=1113.2)
    >>> round(e - w, 3), round(n - s, 3)
    (0.02, 0.02)
    """
    dlat = half_side_m / 111_320.0
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return (
        max(lon - dlon, -180.0),
        max(lat - dlat, -90.0),
        min(lon + dlon, 180.0),
        min(lat + dlat, 90.0),
    )


def default_windows(
    start: _dt.date | None, end: _dt.date | None, *, today: _dt.date, days: int = 90
) -> tuple[str, str]:
    """Before and after windows ``START/END`` around an event dated ``start``..``end``.

    Before: the ``days`` up to the day before ``start``; after: the ``days`` from the day
    after ``end`` (either date stands for both when one is missing).  With no dates, the
    event is taken as ``days`` before ``today``.

    Examples
    --------
    >>> default_windows(_dt.date(2021, 2, 1), _dt.date(2021, 2, 3), today=_dt.date(2025, 1, 1))
    ('2020-11-03/2021-01-31', '2021-02-04/2021-05-04')
    """
    first = start or end or today - _dt.timedelta(days=days)
    last = end or first
    span = _dt.timedelta(days=days)
    one = _dt.timedelta(days=1)
    return (
        f"{(first - span).isoformat()}/{(first - one).isoformat()}",
        f"{(last + one).isoformat()}/{(last + span).isoformat()}",
    )


def item_source(item: Mapping[str, Any], folder: Path, *, api_url: str | None = None) -> str:
    """Where a searched item can be opened from: its ``self`` link, else a snapshot file.

    Items without a ``self`` link are written to ``folder/ID.json`` with absolute asset
    hrefs (relative ones resolved against ``api_url``), which any satdelta input accepts.
    """
    for link in item.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(str(item.get('id') or 'item')).name}.json"
    path.write_text(json.dumps(_snapshot(item, api_url)), encoding="utf-8")
    return str(path)


def _snapshot(item: Mapping[str, Any], where: str | None) -> dict[str, Any]:
    """A copy of ``item`` whose asset hrefs are absolute (so it can live anywhere)."""
    base = where or ""
    for link in item.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "self" and link.get("href"):
            base = str(link["href"])
    snap = json.loads(json.dumps(item))
    for asset in (snap.get("assets") or {}).values():
        if isinstance(asset, dict) and asset.get("href") and base:
            asset["href"] = resolve_href(str(asset["href"]), base)
    return snap


def clip_item(item_path: Path, bbox: BBox, out: Path, *, asset: str | None = None) -> Path:
    """Write the part of an item's image inside ``bbox`` to ``out`` as a COG.

    Only the windows covering the area are read.  The COG keeps the source's data type,
    nodata and CRS, and tags the item id, datetime and asset href.

    Raises
    ------
    StacError
        The item's image does not reach the area.
    """
    from rasterio.errors import WindowError
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds
    from satdelta.imagery.cog import write_cog
    from satdelta.imagery.scene import open_scene

    scene = open_scene(item_path, asset=asset)
    if scene.crs is None:
        raise StacError(f"{scene.scene_id} is not georeferenced; it cannot be clipped to a bbox.")
    left, bottom, right, top = transform_bounds("EPSG:4326", scene.crs, *bbox, densify_pts=21)
    win = from_bounds(left, bottom, right, top, scene.transform).round_offsets().round_lengths()
    try:
        win = win.intersection(Window(0, 0, scene.width, scene.height))
    except WindowError:
        win = None
    if win is None or win.width < 1 or win.height < 1:
        raise StacError(
            f"item {scene.scene_id} does not cover the area {bbox}; pick another item or area."
        )
    with scene.open() as src:
        data = src.read(window=win)
    stac = scene.stac or {}
    tags = {
        "ACQUISITION_DATETIME": str(stac.get("datetime") or ""),
        "STAC_ITEM_ID": str(stac.get("item_id") or ""),
        "STAC_ASSET_HREF": str(stac.get("href") or ""),
    }
    return write_cog(
        out,
        data,
        transform=scene.window_transform(win),
        crs=scene.crs,
        nodata=scene.nodata,
        tags=tags,
    )


def write_pair(
    outdir: Path,
    name: str,
    before: ItemChoice,
    after: ItemChoice,
    *,
    api_url: str | None = None,
    clip_bbox: BBox | None = None,
) -> Path:
    """Write the chosen items (and optionally clipped COGs) and a one-row ``pairs.csv``.

    Parameters
    ----------
    outdir : pathlib.Path
        Created if missing.  Gets ``NAME_before.json``/``NAME_after.json`` (the items, asset
        hrefs made absolute), with ``clip_bbox`` also ``NAME_before.tif``/``NAME_after.tif``,
        and ``pairs.csv`` (``name,before,after``, paths relative to it).
    name : str
        The pair's name (its output folder in ``satdelta batch``).
    before, after : ItemChoice
        The chosen items.
    api_url : str, optional
        Where they were found (base for relative hrefs of items without a self link).
    clip_bbox : (W, S, E, N), optional
        Clip local COGs of this area and list them instead of the items.

    Returns
    -------
    pathlib.Path
        The ``pairs.csv`` written.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    sources = []
    for side, choice in (("before", before), ("after", after)):
        item_file = outdir / f"{name}_{side}.json"
        item_file.write_text(json.dumps(_snapshot(choice.item, api_url), indent=2))
        if clip_bbox is not None:
            clip_item(item_file, clip_bbox, outdir / f"{name}_{side}.tif")
            sources.append(f"{name}_{side}.tif")
        else:
            sources.append(item_file.name)
    pairs = outdir / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "before", "after", "before_item", "after_item"])
        writer.writerow([name, *sources, before.item_id, after.item_id])
    return pairs
