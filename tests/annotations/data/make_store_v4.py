"""Write ``store_v4.gpkg``: a store as satdelta schema 4 wrote it (for the v4 -> v5 migration).

Run once with the schema-4 code (commit 7b309bf) from the repository root, e.g. with that
commit's ``annotations`` and ``errors`` folders unpacked as ``satdelta/`` under a folder on
``PYTHONPATH``::

    PYTHONPATH=/tmp/v4 .venv/bin/python tests/annotations/data/make_store_v4.py

Running it with a later satdelta would write that later schema, so the committed file is
the fixture.
"""

from __future__ import annotations

import sqlite3

from make_store_v3 import HERE, square  # this folder is the script's sys.path[0]
from satdelta.annotations import Store


def main() -> None:
    path = HERE / "store_v4.gpkg"
    path.unlink(missing_ok=True)
    with Store.open(path, analyst="v4") as s:
        assert s.schema_version == 4
        rep = s.add_report(title="Sunan cleared", outlet="Wire", published="2024-06-14")
        claim = s.add_claim(
            report_id=rep.id, text="Aircraft gone", bbox=(125.66, 39.19, 125.68, 39.21)
        )
        candidates = {
            "type": "FeatureCollection",
            "satdelta": {"kind": "change-candidates", "run": {"method": "cva"}},
            "features": [
                {
                    "type": "Feature",
                    "id": i,
                    "geometry": square(125.67 + i * 0.002, 39.2),
                    "properties": {"id": i, "area_m2": None, "score": 2.0 - i / 10},
                }
                for i in (1, 2)
            ],
        }
        s.import_geojson(candidates, report_id=rep.id, claim_id=claim.id)
        s.add_annotation(
            square(125.675, 39.205), claim_id=claim.id, label="aircraft", notes="drawn"
        )
    con = sqlite3.connect(path)
    con.execute("PRAGMA page_size = 1024")
    con.execute("VACUUM")
    con.close()


if __name__ == "__main__":
    main()
