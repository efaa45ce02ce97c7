"""``satdelta claim``: add, list and show the claims of a report."""

from __future__ import annotations

import click
from satdelta.annotations import AnnotationValueError
from satdelta.plugins.cli.annotation import echo_json, echo_table, open_store


def _floats(n: int, name: str):  # noqa: ANN202 - click callback factory
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):  # noqa: ANN202
        if value is None:
            return None
        try:
            nums = tuple(float(v) for v in value.split(","))
        except ValueError:
            nums = ()
        if len(nums) != n:
            raise AnnotationValueError(
                f"--{param.name}: expected {name} (numbers separated by commas), got {value!r}"
            )
        return nums

    return parse


@click.group("claim")
def claim() -> None:
    """Claims of a report, in the analyst's words."""


@claim.command("add")
@click.option("--report", "report_id", type=int, required=True, help="Report id.")
@click.option("--text", required=True, help="The claim in the analyst's words.")
@click.option("--place", help="Place name.")
@click.option("--point", callback=_floats(2, "LON,LAT"), help="Location LON,LAT (WGS84).")
@click.option("--bbox", callback=_floats(4, "W,S,E,N"), help="Area W,S,E,N (WGS84 degrees).")
@click.option(
    "--from", "time_start", type=click.DateTime(["%Y-%m-%d"]), help="Start of the time window."
)
@click.option("--to", "time_end", type=click.DateTime(["%Y-%m-%d"]), help="End of the time window.")
@click.pass_context
def add_cmd(
    ctx: click.Context,
    report_id: int,
    text: str,
    place: str | None,
    point: tuple | None,
    bbox: tuple | None,
    time_start: object,
    time_end: object,
) -> None:
    """Add a claim; prints its new id alone on stdout."""
    with open_store(ctx) as store:
        c = store.add_claim(
            report_id=report_id,
            text=text,
            place=place,
            point=point,
            bbox=bbox,
            time_start=time_start.date() if time_start else None,  # type: ignore[attr-defined]
            time_end=time_end.date() if time_end else None,  # type: ignore[attr-defined]
        )
    click.echo(c.id)


@claim.command("list")
@click.option("--report", "report_id", type=int, help="Only claims of this report.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def list_cmd(ctx: click.Context, report_id: int | None, as_json: bool) -> None:
    """List claims."""
    with open_store(ctx) as store:
        if report_id is not None:
            store.get_report(report_id)
        claims = store.list_claims(report_id)
    if as_json:
        echo_json([c.to_dict() for c in claims])
        return
    echo_table(
        ["id", "report", "place", "text"], [[c.id, c.report_id, c.place, c.text] for c in claims]
    )


@claim.command("show")
@click.argument("claim_id", type=int)
@click.pass_context
def show_cmd(ctx: click.Context, claim_id: int) -> None:
    """Print one claim as JSON."""
    with open_store(ctx) as store:
        echo_json(store.get_claim(claim_id).to_dict())
