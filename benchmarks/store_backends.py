"""Benchmark the two store backends: insert and export N annotations, GeoPackage vs PostGIS.

    .venv/bin/python benchmarks/store_backends.py              # N = 10000, throw-away server
    .venv/bin/python benchmarks/store_backends.py --postgres postgresql://me@host:5432/empty_db

Without ``--postgres`` a throw-away PostgreSQL + PostGIS server is started (as the tests do:
``tests/pg_server.py``; needs the Debian packages ``postgresql`` and
``postgresql-15-postgis-3``) and removed at the end.  Its fsync is off, as in the tests, so
PostgreSQL's figures are those of the database work, not of a disk.  Prints a table: step,
then seconds and features per second for each backend.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from satdelta.annotations import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.store import make_items, make_polygons  # noqa: E402


def time_backend(location: Any, n: int, single: int, out: Path) -> dict[str, tuple[float, int]]:
    """Seconds and feature count of each step on the store at ``location`` (empty)."""
    steps: dict[str, tuple[float, int]] = {}
    with Store.open(location, analyst="bench") as store:
        rep = store.add_report(title="benchmark")
        claim = store.add_claim(report_id=rep.id, text="benchmark claim")
        items = make_items(make_polygons(n), claim.id)
        t = time.perf_counter()
        store.add_annotations(items)
        steps[f"insert {n} (one transaction)"] = (time.perf_counter() - t, n)
        t = time.perf_counter()
        listed = len(store.list_annotations())
        steps[f"list {n}"] = (time.perf_counter() - t, listed)
        t = time.perf_counter()
        exported = store.export(out)
        steps[f"export {n} to GeoJSON"] = (time.perf_counter() - t, exported)
        t = time.perf_counter()
        box = (125.7, 39.0, 125.75, 39.05)
        for _ in range(20):
            found = len(store.list_annotations(bbox=box))
        steps["20 map-view box queries"] = (time.perf_counter() - t, found * 20)
        if single:
            t = time.perf_counter()
            for p in make_polygons(single, seed=1):
                store.add_annotation(p, claim_id=claim.id, label="other")
            steps[f"insert {single} one at a time"] = (time.perf_counter() - t, single)
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="number of annotations")
    ap.add_argument("--single", type=int, default=200, help="one-at-a-time inserts (0: skip)")
    ap.add_argument("--postgres", help="an EMPTY PostgreSQL database with PostGIS available")
    args = ap.parse_args()
    server = None
    url = args.postgres
    if url is None:
        from tests.pg_server import PgServer

        server = PgServer()
        url = server.url(server.new_database())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            gpkg = time_backend(tmpd / "bench.gpkg", args.n, args.single, tmpd / "a.geojson")
            pg = time_backend(url, args.n, args.single, tmpd / "b.geojson")
            same = (tmpd / "a.geojson").stat().st_size == (tmpd / "b.geojson").stat().st_size
    finally:
        if server is not None:
            server.stop()
    print(f"{'step':36s} {'GeoPackage s':>12s} {'feat/s':>9s} {'PostGIS s':>10s} {'feat/s':>9s}")
    for step, (seconds, count) in gpkg.items():
        pg_seconds, pg_count = pg[step]
        print(
            f"{step:36s} {seconds:12.3f} {count / seconds:9.0f} {pg_seconds:10.3f} "
            f"{pg_count / pg_seconds:9.0f}"
        )
    print(f"exports of the same size on both: {same}")


if __name__ == "__main__":
    main()
