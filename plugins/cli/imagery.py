"""``satdelta imagery``: find public imagery of a place and dates (STAC) or mosaic web tiles.

* ``search`` lists the items of a STAC API collection over an area and time window;
* ``pair`` picks the best before and after items and writes a ``pairs.csv`` for
  ``satdelta batch`` (the items, or with ``--clip`` local COGs of the area);
* ``tiles`` mosaics an XYZ template or a WMTS layer into a georeferenced GeoTIFF.

The area is ``--bbox W,S,E,N`` or ``--claim ID`` (the claim's bbox in the store).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from satdelta.imagery.errors import InvalidParameterError, StacError
from satdelta.plugins.cli.annotation import echo_table, info, open_store

__all__ = ["imagery"]

BBox = tuple[float, float, float, float]


def _area(ctx: click.Context, bbox: str | None, claim_id: int | None) -> BBox:
    """The bbox given, or the bbox of the claim in the store."""
    from satdelta.imagery.stac_search import parse_bbox

    if (bbox is None) == (claim_id is None):
        raise click.UsageError("give the area as either --bbox W,S,E,N or --claim ID.")
    if bbox is not None:
        return parse_bbox(bbox)
    with open_store(ctx) as store:
        claim = store.get_claim(int(claim_id))  # type: ignore[arg-type]
    if claim.bbox is None:
        raise InvalidParameterError(
            f"claim {claim_id} has no bbox; set one with `satdelta claim edit {claim_id} --bbox "
            "W,S,E,N` or pass --bbox."
        )
    return claim.bbox


@dataclass(frozen=True)
class StacQuery:
    """What ``search`` and ``pair`` ask the catalogue: where, which collection, which area."""

    api_url: str
    collection: str
    area: BBox
    claim_id: int | None
    max_cloud: float | None

    def search(self, window: str) -> list[dict[str, Any]]:
        """The items of the time window ``window`` (START/END)."""
        from satdelta.imagery.stac_search import search_items

        return search_items(
            self.api_url,
            collection=self.collection,
            bbox=self.area,
            datetime=window,
            max_cloud=self.max_cloud,
        )


def _area_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--bbox``/``--claim``, handed to the command as ``area`` (W, S, E, N) and ``claim_id``."""

    @functools.wraps(fn)
    def command(*args: Any, bbox: str | None, claim_id: int | None, **kwargs: Any) -> Any:
        area = _area(click.get_current_context(), bbox, claim_id)
        return fn(*args, area=area, claim_id=claim_id, **kwargs)

    command = click.option("--claim", "claim_id", type=int, help="Use this claim's bbox.")(command)
    return click.option("--bbox", help="Area W,S,E,N in WGS84 degrees.")(command)


def _stac_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The catalogue options, handed to the command as one :class:`StacQuery` ``query``."""

    @functools.wraps(fn)
    def command(
        *args: Any,
        api_url: str,
        collection: str,
        area: BBox,
        claim_id: int | None,
        max_cloud: float | None,
        **kwargs: Any,
    ) -> Any:
        query = StacQuery(api_url, collection, area, claim_id, max_cloud)
        return fn(*args, query=query, **kwargs)

    for option in (
        click.option(
            "--max-cloud",
            type=click.FloatRange(0, 100),
            help="Drop items with more cloud (percent); items that do not say are kept.",
        ),
        click.option("--collection", required=True, help="Collection id (e.g. naip)."),
        click.option("--stac", "api_url", required=True, help="STAC API root URL."),
    ):
        command = option(command)
    return _area_options(command)


@click.group("imagery")
def imagery() -> None:
    """Public imagery of a claim's place and dates: STAC catalogues and web tile services."""


@imagery.command("search")
@_stac_options
@click.option("--datetime", "window", required=True, help="Time window START/END.")
@click.option("--json", "as_json", is_flag=True, help="Print the items as JSON lines.")
def search_cmd(query: StacQuery, window: str, as_json: bool) -> None:
    """List the items over the area in the time window, best first."""
    from satdelta.imagery.stac import choose_assets
    from satdelta.imagery.stac_search import rank_items

    items = query.search(window)
    ranked = rank_items(items, query.area, window=window, side="after")
    if as_json:
        for choice in ranked:
            click.echo(json.dumps(choice.item))
        return
    rows = []
    for c in ranked:
        props = c.item.get("properties") or {}
        try:
            asset = ",".join(choose_assets(c.item))
        except StacError:
            asset = None
        cloud = None if math.isnan(c.cloud) else f"{c.cloud:.0f}"
        rows.append([c.item_id, props.get("datetime"), f"{100 * c.coverage:.0f}", cloud, asset])
    echo_table(["id", "datetime", "coverage_%", "cloud_%", "asset"], rows)


@imagery.command("pair")
@_stac_options
@click.option("--before", "before_window", required=True, help="Before window START/END.")
@click.option("--after", "after_window", required=True, help="After window START/END.")
@click.option(
    "-o", "--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Folder for the items, pairs.csv and (with --clip) the clipped COGs.",
)  # fmt: skip
@click.option("--name", default=None, help="Pair name [default: claim-ID or pair].")
@click.option("--clip", is_flag=True, help="Also write local COGs of the area and list those.")
def pair_cmd(
    query: StacQuery,
    before_window: str,
    after_window: str,
    outdir: Path,
    name: str | None,
    clip: bool,
) -> None:
    """Pick the best before and after items and write OUTDIR/pairs.csv for `satdelta batch`.

    Best = most of the area covered, then least cloud, then closest to the event (the end
    of the before window, the start of the after window).
    """
    from satdelta.imagery.stac_search import best_items, write_pair

    chosen = []
    for side, window in (("before", before_window), ("after", after_window)):
        ranked = best_items(
            query.api_url,
            collection=query.collection,
            bbox=query.area,
            window=window,
            side=side,  # type: ignore[arg-type]
            max_cloud=query.max_cloud,
        )
        best = ranked[0]
        info(
            f"{side}: {best.item_id} ({(best.item.get('properties') or {}).get('datetime')}, "
            f"{100 * best.coverage:.0f} % of the area, best of {len(ranked)})"
        )
        chosen.append(best)
    label = name or (f"claim-{query.claim_id}" if query.claim_id is not None else "pair")
    clip_bbox = query.area if clip else None
    pairs = write_pair(
        outdir, label, chosen[0], chosen[1], api_url=query.api_url, clip_bbox=clip_bbox
    )
    click.echo(str(pairs))


@imagery.command("tiles")
@click.argument("template", metavar="TEMPLATE")
@_area_options
@click.option("--zoom", type=click.IntRange(0, 24), required=True, help="Tile zoom level.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="GeoTIFF to write (EPSG:3857, RGB).",
)  # fmt: skip
@click.option("--layer", help="WMTS layer (TEMPLATE is then the capabilities URL).")
@click.option("--time", "when", help="WMTS time or release value (default: the layer's).")
@click.option("--attribution", help="Credit line to record (XYZ templates).")
@click.option("--date", "acquired", help="Acquisition/release date to record (YYYY-MM-DD).")
@click.option(
    "--cache", type=click.Path(file_okay=False, path_type=Path),
    help="Tile cache folder [default: $SATDELTA_TILE_CACHE or ~/.cache/satdelta/tiles].",
)  # fmt: skip
def tiles_cmd(
    template: str,
    area: BBox,
    claim_id: int | None,
    zoom: int,
    output: Path,
    layer: str | None,
    when: str | None,
    attribution: str | None,
    acquired: str | None,
    cache: Path | None,
) -> None:
    """Mosaic the tiles of TEMPLATE ({z}/{x}/{y} URL, or a WMTS capabilities URL with --layer)."""
    from satdelta.imagery.tiles import TileSource, wmts_source, write_tiles

    if layer:
        source = wmts_source(template, layer, time=when)
        if attribution:
            source = TileSource(source.template, attribution, source.matrix_ids, source.values)
    else:
        if when:
            raise click.UsageError("--time needs a WMTS layer (--layer).")
        source = TileSource(template, attribution=attribution or "")
    path, mosaic = write_tiles(output, source, area, zoom, acquired=acquired, cache_dir=cache)
    info(
        f"{mosaic.tiles} tiles ({mosaic.fetched} fetched, the rest cached) at zoom {zoom}; "
        f"imagery: {source.attribution or 'unknown attribution'}"
    )
    click.echo(str(path))
