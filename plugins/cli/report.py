"""``satdelta report``: add, list, show, load, edit and delete news reports.

Also holds :func:`store_option`, the ``--store`` option that the store
subcommands accept after their name too (``satdelta report edit --store x.gpkg``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import click
from satdelta.annotations import AnnotationValueError
from satdelta.plugins.cli.annotation import echo_json, echo_table, info, open_store


def store_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--store FILE`` after a subcommand's name: the same as the global ``--store``."""

    def remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.find_root().ensure_object(dict)["store"] = value

    return click.option(
        "--store",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="Annotation store (GeoPackage file or postgresql:// URL); same as the global --store.",
    )(fn)


def cleared(value: str | None) -> str | None:
    """An edit option's value: an empty string clears the field (None)."""
    return None if value is None or value.strip() == "" else value


def given(**options: str | None) -> dict[str, str | None]:
    """The edit options that were given (None = not given; "" = clear the field)."""
    return {name: cleared(value) for name, value in options.items() if value is not None}


@click.group("report")
def report() -> None:
    """News reports whose claims are checked against imagery."""


@report.command("add")
@click.option("--title", required=True, help="Headline of the report.")
@click.option("--outlet", help="Publisher, e.g. the newspaper.")
@click.option("--url", help="Link to the report.")
@click.option("--published", type=click.DateTime(["%Y-%m-%d"]), help="Publication date YYYY-MM-DD.")
@click.option("--language", help="Language of the report (e.g. en, ko).")
@click.option("--notes", help="Free notes.")
@store_option
@click.pass_context
def add_cmd(ctx: click.Context, published: datetime | None, **fields: str | None) -> None:
    """Add a report; prints its new id alone on stdout."""
    pub: date | None = published.date() if published is not None else None
    with open_store(ctx, create=True) as store:
        rep = store.add_report(published=pub, **fields)  # type: ignore[arg-type]
    click.echo(rep.id)


@report.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the reports."""
    with open_store(ctx) as store, store.snapshot():
        reports = store.list_reports()
        n_claims = {r.id: len(store.list_claims(r.id)) for r in reports}
    if as_json:
        echo_json([r.to_dict() for r in reports])
        return
    echo_table(
        ["id", "published", "outlet", "claims", "title"],
        [[r.id, r.published, r.outlet, n_claims[r.id], r.title] for r in reports],
    )


@report.command("show")
@click.argument("report_id", type=int)
@store_option
@click.pass_context
def show_cmd(ctx: click.Context, report_id: int) -> None:
    """Print a report with its claims and annotation counts as JSON."""
    with open_store(ctx) as store:
        with store.snapshot():  # one state, even while another process edits
            rep = store.get_report(report_id)
            claims = store.list_claims(report_id)
            counts = {c.id: len(store.list_annotations(claim_id=c.id)) for c in claims}
    echo_json(
        {**rep.to_dict(), "claims": [{**c.to_dict(), "annotations": counts[c.id]} for c in claims]}
    )


@report.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@store_option
@click.pass_context
def load_cmd(ctx: click.Context, file: Path) -> None:
    """Add a report and its claims from a JSON file {"report": {...}, "claims": [...]}.

    Prints the new report id, then one claim id per line.
    """
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationValueError(
            f"{file} is not a JSON report file ({exc}); expected "
            '{"report": {...}, "claims": [...]}'
        ) from None
    with open_store(ctx, create=True) as store:
        rep, claims = store.load_report(data)
    info(f"loaded report {rep.id} with {len(claims)} claims from {file.name}")
    click.echo(rep.id)
    for c in claims:
        click.echo(c.id)


@report.command("edit")
@click.argument("report_id", type=int)
@click.option("--title", help="New headline.")
@click.option("--outlet", help="New publisher ('' clears it).")
@click.option("--url", help="New link ('' clears it).")
@click.option("--published", help="New publication date YYYY-MM-DD ('' clears it).")
@click.option("--language", help="New language ('' clears it).")
@click.option("--notes", help="New notes ('' clears them).")
@store_option
@click.pass_context
def edit_cmd(ctx: click.Context, report_id: int, **fields: str | None) -> None:
    """Correct fields of a report (one change that `satdelta undo` reverses); prints it as JSON."""
    changes = given(**fields)
    if fields["title"] is not None:
        changes["title"] = fields["title"]  # an empty title is refused by the store, not cleared
    with open_store(ctx) as store:
        old = store.get_report(report_id).to_dict()
        new = store.update_report(report_id, **changes).to_dict()
    echo_json(new)
    info(edited("report", report_id, old, new))


def edited(kind: str, record_id: int, old: dict[str, Any], new: dict[str, Any]) -> str:
    """What an edit changed, for stderr."""
    fields = [k for k in new if new[k] != old.get(k)]
    if not fields:
        return f"{kind} {record_id} unchanged (the values were already stored)"
    return f"{kind} {record_id}: edited {', '.join(fields)} (`satdelta undo` reverses it)"


def delete_command(
    group: click.Group, kind: Literal["report", "claim"], doc: str, force_help: str
) -> None:
    """Add ``satdelta KIND delete KIND_ID [--force]`` (help ``doc``) to ``group``."""

    @group.command("delete", help=doc)
    @click.argument("record_id", metavar=f"{kind.upper()}_ID", type=int)
    @click.option("--force", is_flag=True, help=force_help)
    @store_option
    @click.pass_context
    def delete_cmd(ctx: click.Context, record_id: int, force: bool) -> None:
        with open_store(ctx) as store:
            delete = store.delete_report if kind == "report" else store.delete_claim
            change = delete(record_id, force=force)
        click.echo(change.description)


delete_command(
    report,
    "report",
    """Delete a report and its claims; refused while annotations point at them, unless --force.

    Prints what was deleted; `satdelta undo` brings everything back under the same ids.
    """,
    "Also delete the annotations of its claims (tombstones; one undo brings all back).",
)
