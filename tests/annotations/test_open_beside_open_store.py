"""Opening a store again in a process that already has it open, after another process wrote.

The pre-open inspection once read the file's header with Python's ``open()``; closing that
descriptor dropped the POSIX locks the store already open in this process held (SQLite's
"How To Corrupt" section 2.2), and the inspection's own read then often saw "database disk
image is malformed" (13 of 15 opens here) on a healthy file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from satdelta.annotations import Store

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def test_reopen_in_a_process_holding_the_store_after_another_process_wrote(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.gpkg"
    held = Store.open(path)
    claim = held.add_claim(report_id=held.add_report(title="R").id, text="t")
    writer = textwrap.dedent(
        f"""
        from satdelta.annotations import Store
        with Store.open({str(path)!r}) as s:
            s.add_annotations(
                [dict(geometry={SQUARE!r}, claim_id={claim.id}, label="other")] * 200
            )
        """
    )
    for round_ in range(8):
        subprocess.run([sys.executable, "-c", writer], check=True, timeout=120)
        again = Store.open(path)  # raised StoreCorruptError on a healthy file
        assert len(again.list_annotations()) == 200 * (round_ + 1)
        again.close()
    assert len(held.list_annotations()) == 1600
    held.close()
    con_check = subprocess.run(
        [sys.executable, "-c", f"import sqlite3; print(sqlite3.connect({str(path)!r})"
         ".execute('PRAGMA integrity_check').fetchone()[0])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert con_check.stdout.strip() == "ok"
