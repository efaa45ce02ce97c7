"""Write ``store_v3.gpkg``: a store as satdelta schema 3 wrote it (for the v3 -> v4 migration).

Run once with the schema-3 code (commit bbfe2c5) from the repository root::

    .venv/bin/python tests/annotations/data/make_store_v3.py

The file is then vacuumed to 1 KiB pages so it stays small; VACUUM rewrites
pages, not the schema or the rows.  Running this script with a later
satdelta would write that later schema, so the committed file is the fixture.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from satdelta.annotations import Store

HERE = Path(__file__).resolve().parent


def square(x: float, y: float, d: float = 0.001) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
    }


def main() -> None:
    path = HERE / "store_v3.gpkg"
    path.unlink(missing_ok=True)
    with Store.open(path, analyst="v3") as s:
        assert s.schema_version == 3
        rep = s.add_report(
            title="Sunan cleared 순안",
            outlet="Wire",
            url="https://example.org/a",
            published="2024-06-14",
            language="en",
            notes="v3 report",
        )
        other = s.add_report(title="Second report")
        c1 = s.add_claim(
            report_id=rep.id,
            text="Aircraft gone",
            place="Sunan",
            bbox=(125.66, 39.22, 125.68, 39.23),
            time_start="2024-06-01",
            time_end="2024-06-14",
        )
        c2 = s.add_claim(report_id=rep.id, text="Apron repainted", point=(125.67, 39.225))
        s.add_claim(report_id=other.id, text="Nothing here")
        a1 = s.add_annotation(
            square(125.670, 39.224),
            claim_id=c1.id,
            label="aircraft",
            verdict="supports",
            confidence=0.8,
            status="accepted",
            id="33333333-3333-4333-8333-333333333333",
        )
        s.add_annotation(
            square(125.672, 39.224),
            claim_id=c2.id,
            label="ground marking",
            id="44444444-4444-4444-8444-444444444444",
        )
        gone = s.add_annotation(
            square(125.674, 39.224),
            claim_id=c1.id,
            label="other",
            id="55555555-5555-4555-8555-555555555555",
        )
        s.update_annotation(a1.id, notes="checked")
        s.delete_annotation(gone.id)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("PRAGMA page_size = 1024")
    con.execute("VACUUM")
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    print(path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
