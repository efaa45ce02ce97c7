"""Entry point of the ``satdelta`` command line.

One click group; each subcommand lives in its own module and is imported only
when it runs, so ``satdelta detect`` never pays for napari.  Errors are
translated here, in one place: a :class:`~satdelta.imagery.errors.SatdeltaError`
(or a click usage error) becomes one line on stderr and exit status 1; ``-v``
adds the traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click
from satdelta.imagery import file_digest
from satdelta.imagery.errors import SatdeltaError, one_line
from satdelta.imagery.worker_setup import limit_library_threads, quiet_no_geotransform

# name -> "module:attribute"; each front-end module registers itself here.
COMMANDS: dict[str, str] = {
    "detect": "satdelta.plugins.cli.detect:detect",
    "batch": "satdelta.plugins.cli.batch:batch",
    "demo": "satdelta.plugins.cli.demo:demo",
    "view": "satdelta.plugins.cli.view:view",
    "report": "satdelta.plugins.cli.report:report",
    "claim": "satdelta.plugins.cli.claim:claim",
    "annotation": "satdelta.plugins.cli.annotation:annotation",
    "import": "satdelta.plugins.cli.importing:import_cmd",
    "export": "satdelta.plugins.cli.export:export",
    "undo": "satdelta.plugins.cli.undo:undo",
    "store": "satdelta.plugins.cli.store:store",
    "imagery": "satdelta.plugins.cli.imagery:imagery",
    "evidence": "satdelta.plugins.cli.evidence:evidence",
}

#: Commands whose file arguments are hashed while the command loads: their inputs' sha256
#: goes into run.json (other files among the arguments cost a read, and are not used).
HASH_EARLY = frozenset({"detect"})


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in HASH_EARLY:
            # the inputs' sha256 on the idle core while the command's module (the engine:
            # scipy, GDAL, scikit-image) is imported on the other (imagery/file_digest.py)
            file_digest.start(a for a in args[1:] if not a.startswith("-"))
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="More log output; with -v errors show a traceback."
)
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("satdelta.gpkg"),
    show_default=True,
    envvar="SATDELTA_STORE",
    help="Annotation store: a GeoPackage file, or a PostgreSQL/PostGIS database as "
    "postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass).",
)
@click.option(
    "--analyst",
    envvar="SATDELTA_ANALYST",
    default=None,
    help="Name recorded in every revision this command writes [default: $USER; for a "
    "PostgreSQL store the database user].",
)
@click.version_option(package_name="satdelta")
@click.pass_context
def cli(ctx: click.Context, verbose: int, store: Path, analyst: str | None) -> None:
    """satdelta: find what changed between before/after imagery and tie the evidence to a report."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["store"] = store
    ctx.obj["analyst"] = analyst or None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status instead of raising."""
    args = sys.argv[1:] if argv is None else argv
    limit_library_threads()  # before numpy loads: satdelta's threads, not BLAS's, do the work
    quiet_no_geotransform()  # before any thread starts (batch workers set it too)
    verbose = any(a in ("-v", "-vv", "--verbose") for a in args)
    try:
        cli.main(args=args, prog_name="satdelta", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("satdelta: aborted", err=True)
        return 1
    except click.ClickException as exc:
        # usage errors too: one line, exit 1, with where to find help
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"satdelta: error: {one_line(exc.format_message())}{hint}", err=True)
        return 1
    except SatdeltaError as exc:
        if verbose:
            raise
        click.echo(f"satdelta: error: {one_line(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("satdelta: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line unless -v
        if verbose:
            raise
        click.echo(
            f"satdelta: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(rerun with -v for the traceback and report it)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
