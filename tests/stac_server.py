"""A small STAC API on 127.0.0.1 over static items, beside the range file server (for tests).

Usage: ``python tests/stac_server.py ROOT LOGFILE`` -- like ``range_server.py`` (files under
ROOT with Range support, ``PORT <n>`` on stdout, one JSON log line per request), plus a STAC API
over the items in ``ROOT/items/*.json``: ``/`` (landing page with a ``search`` link),
``/conformance``, ``/collections/<c>``, ``/collections/<c>/items/<id>`` and ``/search`` (GET or
POST; filters ``collections``, ``bbox``, ``datetime`` and ``ids``; no paging).  The text
``{BASE}`` in item files is replaced by the server's base URL, so items can point at files the
same server serves.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from range_server import make_handler, serve

CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


def _when(text: str, end: bool) -> dt.datetime:
    if text in ("", ".."):
        return (
            dt.datetime.max.replace(tzinfo=dt.UTC)
            if end
            else dt.datetime.min.replace(tzinfo=dt.UTC)
        )
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _bbox_of(item: dict[str, Any]) -> list[float]:
    return [float(v) for v in item["bbox"]]


def matches(item: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether ``item`` passes the search ``params`` (already parsed to lists/strings)."""
    if params.get("collections") and item.get("collection") not in params["collections"]:
        return False
    if params.get("ids") and item["id"] not in params["ids"]:
        return False
    if params.get("bbox"):
        w, s, e, n = (float(v) for v in params["bbox"])
        iw, is_, ie, in_ = _bbox_of(item)
        if iw > e or ie < w or is_ > n or in_ < s:
            return False
    if params.get("datetime"):
        start, _, stop = str(params["datetime"]).partition("/")
        stop = stop if "/" in str(params["datetime"]) else start
        when = _when(item["properties"]["datetime"], False)
        if not _when(start, False) <= when <= _when(stop, True):
            return False
    return True


def _listify(value: Any) -> list[str]:
    return value.split(",") if isinstance(value, str) else list(value or [])


def main(argv: list[str]) -> int:
    root, log_path = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    files = make_handler(root, log_path)

    class Handler(files):  # type: ignore[misc, valid-type]
        def _base(self) -> str:
            return f"http://127.0.0.1:{self.server.server_address[1]}"

        def _items(self) -> list[dict[str, Any]]:
            out = []
            for p in sorted((root / "items").glob("*.json")):
                out.append(json.loads(p.read_text().replace("{BASE}", self._base())))
            return out

        def _json(self, data: Any, status: int = 200) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self._log(status, len(body))
            self.end_headers()
            self.wfile.write(body)

        def _api(self, params: dict[str, Any]) -> bool:
            path = urllib.parse.urlsplit(self.path).path.rstrip("/")
            base = self._base()
            parts = path.strip("/").split("/")
            if path == "":
                links = [
                    {"rel": "self", "href": base + "/", "type": "application/json"},
                    {"rel": "root", "href": base + "/", "type": "application/json"},
                    {
                        "rel": "search",
                        "href": base + "/search",
                        "type": "application/geo+json",
                        "method": "GET",
                    },
                    {
                        "rel": "search",
                        "href": base + "/search",
                        "type": "application/geo+json",
                        "method": "POST",
                    },
                    {"rel": "conformance", "href": base + "/conformance"},
                ]
                self._json(
                    {
                        "type": "Catalog",
                        "id": "test",
                        "description": "test API",
                        "stac_version": "1.0.0",
                        "conformsTo": CONFORMS,
                        "links": links,
                    }
                )
            elif path == "/conformance":
                self._json({"conformsTo": CONFORMS})
            elif path == "/search":
                params = {
                    k: _listify(v) if k in ("collections", "ids", "bbox") else v
                    for k, v in params.items()
                }
                found = [i for i in self._items() if matches(i, params)]
                self._json({"type": "FeatureCollection", "features": found, "links": []})
            elif len(parts) == 2 and parts[0] == "collections":
                self._json(
                    {
                        "type": "Collection",
                        "id": parts[1],
                        "stac_version": "1.0.0",
                        "description": "test",
                        "license": "CC-BY-4.0",
                        "links": [],
                        "extent": {
                            "spatial": {"bbox": [[-180, -90, 180, 90]]},
                            "temporal": {"interval": [[None, None]]},
                        },
                    }
                )
            elif len(parts) == 4 and parts[0] == "collections" and parts[2] == "items":
                found = [i for i in self._items() if i["id"] == parts[3]]
                if not found:
                    self._empty(404)
                else:
                    self._json(found[0])
            else:
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if not self._api({k: v[-1] for k, v in query.items()}):
                super().do_GET()

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            params = json.loads(self.rfile.read(length) or b"{}")
            if not self._api(params):
                self._empty(404)

    return serve(Handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
