"""``satdelta claim``: add, list, show, edit and delete the claims of a report."""

from __future__ import annotations

import click
from satdelta.annotations import AnnotationValueError
from satdelta.plugins.cli.annotation import echo_json, echo_table, info, open_store
from satdelta.plugins.cli.report import delete_command, edited, given, store_option

#: Value of an edit option that clears the field (an empty string on the command line).
CLEAR = ""


def _floats(n: int, name: str, *, clearable: bool = False):  # noqa: ANN202 - callback factory
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):  # noqa: ANN202
        if value is None:
            return None
        if clearable and value.strip() == "":
            return CLEAR
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
@store_option
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
@store_option
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
@store_option
@click.pass_context
def show_cmd(ctx: click.Context, claim_id: int) -> None:
    """Print one claim as JSON."""
    with open_store(ctx) as store:
        echo_json(store.get_claim(claim_id).to_dict())


@claim.command("edit")
@click.argument("claim_id", type=int)
@click.option("--text", help="New wording of the claim.")
@click.option(
    "--report", "report_id", type=int, help="Move the claim (and its annotations) to this report."
)
@click.option("--place", help="New place name ('' clears it).")
@click.option(
    "--point", callback=_floats(2, "LON,LAT", clearable=True), help="LON,LAT ('' clears it)."
)
@click.option(
    "--bbox", callback=_floats(4, "W,S,E,N", clearable=True), help="W,S,E,N ('' clears it)."
)
@click.option("--from", "time_start", help="Start of the time window YYYY-MM-DD ('' clears it).")
@click.option("--to", "time_end", help="End of the time window YYYY-MM-DD ('' clears it).")
@store_option
@click.pass_context
def edit_cmd(
    ctx: click.Context,
    claim_id: int,
    text: str | None,
    report_id: int | None,
    place: str | None,
    point: tuple | str | None,
    bbox: tuple | str | None,
    time_start: str | None,
    time_end: str | None,
) -> None:
    """Correct a claim (one change that `satdelta undo` reverses); prints it as JSON."""
    changes: dict = given(place=place, time_start=time_start, time_end=time_end)
    for name, value in (("point", point), ("bbox", bbox)):
        if value is not None:
            changes[name] = None if value == CLEAR else value
    if text is not None:
        changes["text"] = text  # an empty text is refused by the store, not cleared
    if report_id is not None:
        changes["report_id"] = report_id
    with open_store(ctx) as store:
        old = store.get_claim(claim_id).to_dict()
        new = store.update_claim(claim_id, **changes).to_dict()
    echo_json(new)
    info(edited("claim", claim_id, old, new))


delete_command(
    claim,
    "claim",
    """Delete a claim; refused while annotations point at it, unless --force.

    Prints what was deleted; `satdelta undo` brings it back under the same id.
    """,
    "Also delete the annotations pointing at it (tombstones; one undo brings all back).",
)
