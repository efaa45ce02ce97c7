"""Change-detection quality on labelled public pairs, printed as one table.

Datasets (in ``<repo>/../shared/data``, never copied into the repository):

* ``taizhou`` - Landsat 7 ETM+, 6 bands, 30 m, sparse change / no-change reference pixels.
  The default row runs the shipped path, :func:`satdelta.imagery.pipeline.run_detection`
  on the two GeoTIFFs (open, co-register, detect); the other rows call
  :func:`satdelta.imagery.detect.detect_change` on the arrays.
* ``levir`` - 11 LEVIR-CD pairs, RGB PNG, 0.5 m, dense building-change labels; TP/FP/FN are
  pooled over all pairs. ``pixel_size_m=0.5`` is passed (the images carry no georeferencing;
  the CLI's ``--pixel-size``), except in the row marked ``px=None``.

* ``sample sites`` - the package's own synthetic demo scenes (4 bands, 0.5 m), through
  ``run_detection``; precision/recall are area-based against the true change polygons.

Every row uses the same library defaults unless the row says otherwise; nothing is tuned per
dataset. "(plain)" rows switch off the no-change floor of the automatic thresholds
(``null_quantile=None``), i.e. they are the published methods as such. Run::

    .venv/bin/python benchmarks/quality.py
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import (  # noqa: E402
    TAIZHOU,
    TAIZHOU_AFTER,
    TAIZHOU_BEFORE,
    LabelledPair,
    confusion,
    data_path,
    load_levir,
    load_taizhou,
    prf,
)
from satdelta.imagery.detect import detect_change  # noqa: E402
from satdelta.imagery.options import DetectionOptions  # noqa: E402

Row = tuple[str, str, tuple[int, int, int], float, str]


def _detect_rows(
    pairs: list[LabelledPair], label: str, kwargs: dict, *, pixel_size: bool = True
) -> Row:
    t0 = time.perf_counter()
    tot = np.zeros(3, dtype=np.int64)
    used = ""
    for p in pairs:
        maps = detect_change(
            p.before,
            p.after,
            DetectionOptions(**kwargs),
            pixel_size_m=p.pixel_size_m if pixel_size else None,
            band_names=p.band_names,
        )
        tot += confusion(maps.changed, p)
        used = f"{maps.method}/{maps.threshold_method}/{maps.parameters['normalise']}"
    return label, used, (int(tot[0]), int(tot[1]), int(tot[2])), time.perf_counter() - t0, ""


def _flag_all(pairs: list[LabelledPair]) -> Row:
    tot = np.zeros(3, dtype=np.int64)
    for p in pairs:
        tot += confusion(np.ones_like(p.positive), p)
    return "flag everything", "-", (int(tot[0]), int(tot[1]), int(tot[2])), 0.0, ""


def _taizhou_pipeline(pair: LabelledPair) -> Row:
    from satdelta.imagery.pipeline import run_detection

    root = data_path(TAIZHOU)
    t0 = time.perf_counter()
    run = run_detection(root / TAIZHOU_BEFORE, root / TAIZHOU_AFTER)
    maps = run.maps
    used = f"{maps.method}/{maps.threshold_method}/{maps.parameters['normalise']}"
    note = "pipeline: open+align+detect"
    if maps.changed.shape != pair.positive.shape:
        raise SystemExit("pipeline output grid differs from the reference grid")
    tp, fp, fn = confusion(maps.changed, pair)
    return "DEFAULT (run_detection)", used, (tp, fp, fn), time.perf_counter() - t0, note


def rows_taizhou() -> list[Row]:
    t = load_taizhou()
    pairs = [t]
    rows = [_taizhou_pipeline(t)]
    plain = {"null_quantile": None}
    variants: list[tuple[str, dict]] = [
        ("default (detect_change)", {}),
        (
            "baseline CVA + Otsu (plain)",
            dict(method="cva", threshold="otsu", normalise="none", **plain),
        ),
        ("CVA + Otsu, IR-MAD normalised (plain)", dict(method="cva", threshold="otsu", **plain)),
        (
            "CVA + k-means, IR-MAD normalised (plain)",
            dict(method="cva", threshold="kmeans", **plain),
        ),
        ("default without no-change floor", plain),
        ("CVA + mixture, histogram matching", dict(method="cva", normalise="histogram")),
        ("IR-MAD chi-square + mixture", dict(method="irmad", normalise="none")),
        ("absdiff + mixture", dict(method="absdiff")),
        ("log-ratio + mixture", dict(method="logratio")),
        ("NDVI difference + mixture", dict(method="ndvi")),
        ("default + min area 5400 m2 (6 px)", dict(min_area_m2=5400.0)),
    ]
    rows += [_detect_rows(pairs, label, kw) for label, kw in variants]
    return rows


def rows_levir() -> list[Row]:
    pairs = load_levir()
    plain = {"null_quantile": None}
    variants: list[tuple[str, dict]] = [
        ("DEFAULT", {}),
        (
            "baseline RGB absdiff + Otsu (plain)",
            dict(method="absdiff", threshold="otsu", normalise="none", **plain),
        ),
        ("CVA + Otsu (plain)", dict(method="cva", threshold="otsu", normalise="none", **plain)),
        ("CVA + mixture (plain)", dict(method="cva", normalise="none", **plain)),
        ("CVA + mixture, no-change floor", dict(method="cva", normalise="none")),
        ("default without no-change floor", plain),
        ("builtup + Otsu", dict(threshold="otsu")),
        ("builtup + k-means", dict(threshold="kmeans")),
        ("builtup + mixture, histogram matching", dict(normalise="histogram")),
        ("IR-MAD chi-square + mixture", dict(method="irmad", normalise="none")),
        ("default + min area 20 m2", dict(min_area_m2=20.0)),
    ]
    rows = [_flag_all(pairs)]
    rows += [_detect_rows(pairs, label, kw) for label, kw in variants]
    rows.append(_detect_rows(pairs, "default, px=None (no pixel size)", {}, pixel_size=False))
    return rows


def rows_sample_sites() -> list[Row]:
    """The package's synthetic demo sites (4-band 0.5 m), area-based against the true polygons.

    The "counts" are areas in 0.01 m² units: TP = overlap, FP = detected - overlap,
    FN = truth - overlap (union of polygons, :mod:`satdelta.sample_data.evaluate`).
    """
    from satdelta.imagery.pipeline import run_detection
    from satdelta.sample_data import SITES, site_paths
    from satdelta.sample_data.evaluate import match_truth, read_polygons

    rows: list[Row] = []
    for label, kw in (("DEFAULT", {}), ("CVA + Otsu (IR-MAD normalised)", {"threshold": "otsu"})):
        t0 = time.perf_counter()
        tot = np.zeros(3)
        used = ""
        alarms = 0
        for site in SITES:
            paths = site_paths(site)
            run = run_detection(paths.before, paths.after, DetectionOptions(**kw))
            m = match_truth([p.geometry for p in run.polygons], read_polygons(paths.truth))
            tot += [
                m.overlap_area_m2,
                m.detected_area_m2 - m.overlap_area_m2,
                m.truth_area_m2 - m.overlap_area_m2,
            ]
            alarms += m.false_alarms
            used = (
                f"{run.maps.method}/{run.maps.threshold_method}/{run.maps.parameters['normalise']}"
            )
        counts = tuple(int(round(v * 100)) for v in tot)
        note = f"{alarms} false-alarm polygons"
        rows.append((label, used, counts, time.perf_counter() - t0, note))  # type: ignore[arg-type]
    return rows


def main() -> int:
    root = data_path()
    if not root.exists():
        print(f"shared data not found at {root.resolve()}; nothing to measure", file=sys.stderr)
        return 1
    warnings.simplefilter("ignore")
    t_all = time.perf_counter()
    table: list[tuple[str, Row]] = []
    for name, fn in (
        ("taizhou", rows_taizhou),
        ("levir pooled", rows_levir),
        ("sample sites", rows_sample_sites),
    ):
        rows: Callable[[], list[Row]] = fn
        table += [(name, r) for r in rows()]
    head = f"{'dataset':13s} {'variant':42s} {'score/threshold/normalise':28s} "
    head += f"{'precision':>9s} {'recall':>7s} {'F1':>6s} {'sec':>5s}"
    print(head)
    print("-" * len(head))
    for name, (label, used, counts, sec, note) in table:
        p, r, f = prf(*counts)
        line = f"{name:13s} {label:42s} {used:28s} {p:9.3f} {r:7.3f} {f:6.3f} {sec:5.1f}"
        print(f"{line}  {note}" if note and not note.startswith("pipeline") else line)
    print(f"\ntotal {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
