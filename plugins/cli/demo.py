"""``satdelta demo``: run change detection on the embedded synthetic sample pairs.

For each sample site the command runs :func:`satdelta.imagery.pipeline.run_detection` and
:func:`satdelta.imagery.outputs.write_outputs` into ``OUTDIR/<site>/``, then scores the
detected polygons against the site's true change polygons
(:func:`satdelta.sample_data.evaluate.match_truth`) and prints where ``changes.geojson`` is,
how many polygons it holds and how well they match.  The scores are also written to
``OUTDIR/demo.json``.  Finally the sample report and its claims are loaded into an annotation
store (``OUTDIR/satdelta.gpkg`` unless ``--store`` is given) and each site's candidates are
imported under the claim about that site. The counts of objects that disappeared, appeared
or stayed (``objects.csv``/``objects.geojson``) are printed per site; ``satdelta import``
brings a site's ``objects.geojson`` into the store.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from satdelta.imagery.errors import InvalidParameterError, OutputError, SatdeltaError, one_line
from satdelta.plugins.cli.hints import next_steps, shown_path
from satdelta.sample_data import SITES, load_report, report_path, site_paths

if TYPE_CHECKING:
    from satdelta.imagery.options import DetectionOptions

log = logging.getLogger(__name__)

#: Polygons smaller than this are dropped (m²): about 16 pixels of 0.5 m, well below the
#: smallest sample object (a 13 m² airport tug) yet above single-pixel noise specks.
DEFAULT_MIN_AREA_M2 = 4.0


def _run_site(site: str, site_out: Path, options: DetectionOptions) -> dict[str, Any]:
    """Detect, write and score one site; return its summary for demo.json."""
    from satdelta.imagery.outputs import write_outputs
    from satdelta.imagery.pipeline import run_detection
    from satdelta.sample_data.evaluate import match_truth, read_polygons

    paths = site_paths(site)
    run = run_detection(paths.before, paths.after, options)
    written = write_outputs(run, site_out)
    changes = written.get("changes.geojson")
    if changes is None:  # pragma: no cover - the sample scenes are georeferenced
        raise OutputError(f"no changes.geojson was written for {site} in {site_out}.")
    crs = run.aligned.crs.to_string()
    scores = match_truth(read_polygons(changes, crs), read_polygons(paths.truth, crs))
    return {
        "site": site,
        "before": {"file": paths.before.name, "acquired": str(run.before.acquired)},
        "after": {"file": paths.after.name, "acquired": str(run.after.acquired)},
        "outputs": {name: str(p) for name, p in sorted(written.items())},
        "changes": str(changes),
        "polygons": len(run.polygons),
        "polygon_area_m2": round(sum(p.area_m2 for p in run.polygons), 2),
        "method": run.maps.method,
        "threshold_method": run.maps.threshold_method,
        "threshold": float(run.maps.threshold),
        "shift_before_px": [round(float(v), 3) for v in run.aligned.shift_before_px],
        "shift_after_px": [round(float(v), 3) for v in run.aligned.shift_after_px],
        "truth": str(paths.truth),
        "scores": scores.to_dict(),
        "objects": None if run.objects is None else run.objects.counts(),
    }


def _print_site(s: dict[str, Any]) -> None:
    sc = s["scores"]
    click.echo(f"{s['site']}  ({s['before']['acquired']} -> {s['after']['acquired']})")
    click.echo(f"  changes:   {s['changes']}")
    click.echo(
        f"  polygons:  {s['polygons']} change polygons, {s['polygon_area_m2']:.1f} m² "
        f"({s['method']} score, {s['threshold_method']} threshold {s['threshold']:.3g})"
    )
    b, a = s["shift_before_px"], s["shift_after_px"]
    click.echo(
        f"  alignment: residual shift (dy, dx) {b[0]:+.2f}, {b[1]:+.2f} px, "
        f"{a[0]:+.2f}, {a[1]:+.2f} px after correction"
    )
    click.echo(
        f"  vs truth:  precision {sc['precision']:.3f}  recall {sc['recall']:.3f}  "
        f"IoU {sc['iou']:.3f}  objects found {sc['objects_found']}/{sc['objects_total']}  "
        f"false alarms {sc['false_alarms']}"
    )
    if s["objects"] is not None:
        click.echo(
            "  objects:   "
            + " · ".join(
                f"{kind} {n['total']} ({n['aircraft-sized']} aircraft-sized, {n['vehicle']} "
                "vehicle)"
                for kind, n in s["objects"].items()
            )
        )


def _fill_store(store_path: Path, results: list[dict[str, Any]], *, fresh: bool) -> dict[str, Any]:
    """Load the sample report and import each site's candidates under its claim."""
    from satdelta.annotations import Store

    if fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    data = load_report()
    with Store.open(store_path) as store:
        report, claims = store.load_report(data)
        claim_of = {c["site"]: claim for c, claim in zip(data["claims"], claims, strict=True)}
        imported = 0
        for s in results:
            claim = claim_of.get(s["site"])
            if claim is None:
                continue
            imported += len(
                store.import_geojson(Path(s["changes"]), report_id=report.id, claim_id=claim.id)
            )
    return {
        "path": str(store.path),  # a PostgreSQL store's address without its password
        "report_id": report.id,
        "claims": [c.id for c in claims],
        "candidates": imported,
    }


@click.command("demo")
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=True, dir_okay=True, path_type=Path),
    default=Path("sample_output"),
    show_default=True,
    help="Folder for the outputs (one sub-folder per site, demo.json, satdelta.gpkg).",
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    type=click.Choice(SITES),
    help="Run only this sample site (repeatable; default: all).",
)
@click.option(
    "--min-area",
    "min_area_m2",
    type=float,
    default=DEFAULT_MIN_AREA_M2,
    show_default=True,
    help="Drop change polygons smaller than this many m².",
)
@click.option(
    "--no-store", is_flag=True, help="Do not load the sample report and candidates into a store."
)
@click.pass_context
def demo(
    ctx: click.Context, outdir: Path, sites: tuple[str, ...], min_area_m2: float, no_store: bool
) -> None:
    """Detect changes on the synthetic sample pairs and score them against the truth.

    The sample scenes are synthetic (made by satdelta.sample_data.generate at the real
    coordinates of Pyongyang Sunan airport and Kim Il Sung Square); no real imagery is used.
    """
    from satdelta.imagery.options import DetectionOptions
    from satdelta.imagery.outputs import check_outdir

    if min_area_m2 < 0:
        raise InvalidParameterError(
            f"--min-area must be >= 0 m², got {min_area_m2:g}. Use 0 to keep every polygon."
        )
    options = DetectionOptions(min_area_m2=min_area_m2)
    out = check_outdir(outdir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SITES if not sites or s in sites]
    click.echo(
        f"satdelta demo: {len(chosen)} synthetic sample pair(s) (not real imagery), "
        f"outputs in {out}"
    )
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for site in chosen:
        try:
            result = _run_site(site, out / site, options)
        except SatdeltaError as exc:
            log.debug("site %s failed", site, exc_info=True)
            msg = one_line(exc)
            failures.append(f"{site}: {msg}")
            click.echo(f"{site}  FAILED: {msg}")
            continue
        results.append(result)
        _print_site(result)

    summary: dict[str, Any] = {
        "satdelta": {"kind": "demo"},
        "synthetic": True,
        "report": str(report_path()),
        "min_area_m2": min_area_m2,
        "sites": results,
        "failed": failures,
    }
    if results and not no_store:
        obj = ctx.find_root().obj or {}
        root = ctx.find_root()
        explicit = root.get_parameter_source("store") not in (
            None,
            click.core.ParameterSource.DEFAULT,
        )
        store_path = Path(obj["store"]) if explicit and obj.get("store") else out / "satdelta.gpkg"
        info = _fill_store(store_path, results, fresh=not explicit)
        summary["store"] = info
        click.echo(
            f"store:     {info['path']}: sample report {info['report_id']} with "
            f"{len(info['claims'])} claims, {info['candidates']} candidate polygons imported"
        )
    demo_json = out / "demo.json"
    try:
        tmp = demo_json.with_name(f".demo.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        tmp.replace(demo_json)
    except OSError as exc:
        raise OutputError(
            f"cannot write {demo_json}: {exc.strerror}. Pick an output folder you can write."
        ) from None
    click.echo(f"summary:   {demo_json}")
    if "store" in summary:
        _print_next_steps(summary["store"]["path"], results[0])
    if failures:
        raise _DemoFailed(
            f"{len(failures)} of {len(chosen)} sample site(s) failed: " + "; ".join(failures)
        )


def _print_next_steps(store: str, site: dict[str, Any]) -> None:
    """Where to look next: the candidates in the store it wrote, the desk, an export."""
    flag = f"--store {shown_path(store)}"
    steps = [
        f"{flag} annotation list   # the candidate polygons",
        f"{flag} view --sample {site['site']}   # review them on the desk",
        f"{flag} export -o evidence.geojson   # share them",
    ]
    for line in next_steps(steps):
        click.echo(line)


class _DemoFailed(SatdeltaError, RuntimeError):
    """At least one sample site could not be processed."""
