"""``satdelta view [BEFORE AFTER]``: open napari with the Change annotator docked.

Inputs are checked before napari starts, so a wrong path is one line on
stderr and exit status 1, not a window.  ``--screenshot`` renders the window
once (after detection with ``--run``) to a PNG and exits: used for docs and
headless smoke tests.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import click
from satdelta.imagery.errors import SatdeltaError, SceneReadError


class ViewerUnavailableError(SatdeltaError, RuntimeError):
    """napari (the ``napari`` extra) is not installed or cannot start."""


def _check_source(source: str) -> None:
    from satdelta.imagery.stac import read_item

    if source.startswith(("http://", "https://")) or read_item(source) is not None:
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
    from satdelta.imagery.scene import open_scene

    open_scene(path, checksum=False)  # what detection cannot compare (no band, complex...)


def _display_problem(env: Mapping[str, str]) -> str | None:
    """Why Qt could not open a window here, or None when it can (checked before Qt starts:
    without a display Qt aborts the whole process)."""
    if sys.platform != "linux" or env.get("QT_QPA_PLATFORM", "").split(":")[0] in _NO_DISPLAY_QPA:
        return None
    wayland = env.get("WAYLAND_DISPLAY")
    if wayland:
        runtime = env.get("XDG_RUNTIME_DIR", "")
        path = Path(wayland) if wayland.startswith("/") else Path(runtime, wayland)
        return None if path.exists() else f"WAYLAND_DISPLAY={wayland} but {path} does not exist"
    display = env.get("DISPLAY")
    if not display:
        return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY={display} is not a display name like :0"
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except OSError as exc:
        return f"cannot connect to the X display {display} ({exc.strerror or exc})"
    return None


# Qt platforms that need no display
_NO_DISPLAY_QPA = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb")


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
    problem = _display_problem(os.environ)
    if problem is not None:
        raise ViewerUnavailableError(
            f"cannot open the napari window: {problem}. Run it on a desktop session, set "
            "DISPLAY to a running X server, or wrap it: xvfb-run satdelta view ... (with "
            "--screenshot for a picture)"
        )
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
