"""``satdelta report``: add, list, show and load news reports."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from satdelta.annotations import AnnotationValueError
from satdelta.plugins.cli.annotation import echo_json, echo_table, info, open_store


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
@click.pass_context
def add_cmd(
    ctx: click.Context,
    title: str,
    outlet: str | None,
    url: str | None,
    published: object,
    language: str | None,
    notes: str | None,
) -> None:
    """Add a report; prints its new id alone on stdout."""
    pub: date | None = published.date() if published is not None else None  # type: ignore[attr-defined]
    with open_store(ctx, create=True) as store:
        rep = store.add_report(
            title=title, outlet=outlet, url=url, published=pub, language=language, notes=notes
        )
    click.echo(rep.id)


@report.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the reports."""
    with open_store(ctx) as store:
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
@click.pass_context
def show_cmd(ctx: click.Context, report_id: int) -> None:
    """Print a report with its claims and annotation counts as JSON."""
    with open_store(ctx) as store:
        rep = store.get_report(report_id)
        claims = store.list_claims(report_id)
        counts = {c.id: len(store.list_annotations(claim_id=c.id)) for c in claims}
    echo_json(
        {**rep.to_dict(), "claims": [{**c.to_dict(), "annotations": counts[c.id]} for c in claims]}
    )


@report.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
