"""``satdelta view [BEFORE AFTER]``: open napari with the Change annotator docked.

Inputs are checked before napari starts, so a wrong path is one line on
stderr and exit status 1, not a window.  ``--screenshot`` renders the window
once (after detection with ``--run``) to a PNG and exits: used for docs and
headless smoke tests.
"""

from __future__ import annotations

from pathlib import Path

import click
from satdelta.imagery.errors import SatdeltaError, SceneReadError


class ViewerUnavailableError(SatdeltaError, RuntimeError):
    """napari (the ``napari`` extra) is not installed or cannot start."""


def _check_source(source: str) -> None:
    if source.startswith(("http://", "https://")):
        return
    path = Path(source)
    if not path.exists():
        raise SceneReadError(
            f"expected a raster file or http(s) URL, got {source!r} which does not exist; "
            "check the path."
        )
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path):
            pass
    except RasterioIOError as exc:
        raise SceneReadError(
            f"{source} is not a raster GDAL can read ({' '.join(str(exc).split())}); "
            "give a GeoTIFF or another GDAL format."
        ) from None


@click.command("view")
@click.argument("sources", nargs=-1, metavar="[BEFORE AFTER]")
@click.option(
    "--sample", "sample", default=None, help="Open a sample site instead (e.g. sunan-airport)."
)
@click.option("--run", "run_now", is_flag=True, help="Run detection at once.")
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save a PNG of the window and exit (headless use).",
)
@click.pass_context
def view(
    ctx: click.Context,
    sources: tuple[str, ...],
    sample: str | None,
    run_now: bool,
    screenshot: Path | None,
) -> None:
    """Open napari with the Change annotator; BEFORE and AFTER are files or https:// COGs."""
    if len(sources) not in (0, 2):
        raise click.UsageError(f"give BEFORE and AFTER, or nothing; got {len(sources)} paths")
    for s in sources:
        _check_source(s)
    store = ctx.obj["store"] if ctx.obj else Path("satdelta.gpkg")
    try:
        import napari
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ViewerUnavailableError(
            f"napari is not installed ({exc}); install the extra: pip install 'satdelta[napari,qt]'"
        ) from None
    from satdelta.plugins.napari._reader import read_rasters

    viewer = napari.Viewer(show=True)
    if sample:
        viewer.open_sample("satdelta", sample)
    elif sources:
        for data, kwargs, kind in read_rasters(list(sources)):
            kwargs["metadata"]["satdelta"]["role"] = "before" if not len(viewer.layers) else "after"
            getattr(viewer, f"add_{kind}")(data, **kwargs)
    _dock, widget = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    widget.open_store(store)
    if run_now:
        worker = widget.run()
        if worker is not None and screenshot is not None:
            from qtpy.QtCore import QEventLoop

            loop = QEventLoop()
            worker.finished.connect(loop.quit)
            loop.exec()
            while widget.evidence.loading:  # the outlines are drawn a slice per turn
                loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    if screenshot is not None:
        viewer.window._qt_window.resize(1400, 900)
        viewer.reset_view()
        viewer.screenshot(str(screenshot), canvas_only=False, flash=False)
        viewer.close()
        click.echo(str(screenshot))
        return
    napari.run()
