"""Object-level change on the synthetic sample sites, through the shipped pipeline."""

from __future__ import annotations

import json
from functools import cache

from satdelta.imagery.pipeline import DetectionRun, run_detection
from satdelta.sample_data import site_paths
from shapely.geometry import box, shape

#: The An-24 that stays (sample_data/site_scenes.py: nose at P(95, -6), heading south, ~24 m),
#: as a (row_min, col_min, row_max, col_max) box on the 0.5 m before grid.
AN24_BOX = (218, 416, 270, 476)


@cache
def _run(site: str) -> DetectionRun:
    paths = site_paths(site)
    return run_detection(paths.before, paths.after)


def _truth(site: str) -> list[tuple[str, object]]:
    fc = json.loads(site_paths(site).truth.read_text(encoding="utf-8"))
    return [(f["properties"]["name"], shape(f["geometry"])) for f in fc["features"]]


def _hits(run: DetectionRun, geom, change: str) -> list:
    return [
        o
        for o in run.objects.objects
        if o.change == change and o.geometry_wgs84 is not None and o.geometry_wgs84.intersects(geom)
    ]


def test_apron_six_leave_none_arrive_the_turboprop_stays():
    run = _run("sunan-airport")
    assert run.objects is not None  # 0.5 m pixels: objects are looked for by default
    truth = dict(_truth("sunan-airport"))
    missed = [name for name, g in truth.items() if not _hits(run, g, "disappeared")]
    # the bus parked beside the Tu-204 is taken for the airliner's attached shadow: it has no
    # footprint of its own, only the Tu-204's box covers it (docs/objects.md, what is weak)
    assert missed == ["bus at stand 2"]
    boxes = [
        box(*o.geometry_wgs84.bounds) for o in run.objects.objects if o.change == "disappeared"
    ]
    assert any(b.contains(truth["bus at stand 2"].centroid) for b in boxes)
    assert [o for o in run.objects.objects if o.change == "appeared"] == []
    stays = box(AN24_BOX[1], AN24_BOX[0], AN24_BOX[3], AN24_BOX[2])
    an24 = [
        o
        for o in run.objects.objects
        if stays.contains(box(*o.found.bbox[1::-1], *o.found.bbox[:1:-1]).centroid)
    ]
    assert [(o.change, o.size_class) for o in an24] == [("unchanged", "aircraft-sized")]
    # the four airliners are aircraft-sized, with confident, plausible shapes
    big = [
        o for o in run.objects.objects if o.change == "disappeared" and o.size_class != "vehicle"
    ]
    assert len(big) == 4
    assert all(20 <= o.found.length_m <= 60 and o.confidence > 0.8 for o in big)


def test_square_six_formations_and_two_vehicle_columns_appear():
    run = _run("kim-il-sung-square")
    wanted = [
        (name, g)
        for name, g in _truth("kim-il-sung-square")
        if name.startswith(("formation", "vehicle column"))
    ]
    assert len(wanted) == 8
    found = [name for name, g in wanted if _hits(run, g, "appeared")]
    assert found == [name for name, _ in wanted]
