"""Benchmark the napari plugin: Run-to-layers, the NAIP pair, a 10,000² COG, 5,000 polygons.

Run under a display (Xvfb on a headless machine)::

    xvfb-run -a .venv/bin/python benchmarks/gui.py            # all four
    xvfb-run -a .venv/bin/python benchmarks/gui.py --quick    # smaller COG (2,000²)
    xvfb-run -a .venv/bin/python benchmarks/gui.py --only run # Run -> layers shown only

The Run rows time Run -> score, mask and candidate layers drawn (the end of the
window's first on-screen draw that holds them; the older measure, which also waits
for the worker thread to end and then forces one offscreen render, is its own row)
with the detection child process already warm (the dock starts it when it opens; its
warm-up is its own row) and on a settled window: events are processed until the
canvas size stops changing (the dock's layout settles a pass after docking), as
an analyst presses Run on a window that has finished laying itself out.

Inputs are synthetic and generated in a temporary folder: a 2048 x 2048 4-band
uint8 pair (smooth texture, the after date shifted by (0.4, -0.3) px with gain,
offset, noise and 40 changed rectangles), a 10,000 x 10,000 3-band tiled
GeoTIFF with internal overviews (COG layout), and 5,000 small square
candidates.  The NAIP row runs the real pair in ../shared/data/naip-nd from the
dock's Run button; it and the 5,000-polygon row report the longest event-loop stall
(a 10 ms QTimer heartbeat, kept beating for a second after the end), the main thread's
CPU time in it (less sensitive to the machine's load) and the longest slice of outlines
the desk added in one turn; ``--trace SECONDS`` prints where the main thread was in each
longer stall.  Prints one table; times are wall-clock seconds, memory is the
growth of the process's resident set size.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy import ndimage

CRS = "EPSG:32651"
ORIGIN = (500000.0, 4000000.0)


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def make_pair(folder: Path, size: int = 2048) -> tuple[Path, Path]:
    """A before/after 4-band pair with 40 changed rectangles and a sub-pixel shift."""
    rng = np.random.default_rng(0)
    tex = ndimage.gaussian_filter(rng.random((4, size, size)), (0, 3, 3))
    tex = (tex - tex.min()) / np.ptp(tex)
    before = 40 + 150 * tex
    after = ndimage.shift(before, (0, 0.4, -0.3), order=1, mode="nearest") * 1.05 + 4
    for _ in range(40):
        r, c = rng.integers(0, size - 80, 2)
        h, w = rng.integers(10, 70, 2)
        after[:, r : r + h, c : c + w] = rng.uniform(20, 230, (4, 1, 1))
    after += rng.normal(0, 1.5, after.shape)
    paths = []
    for name, arr in (("before_2024-05-01.tif", before), ("after_2024-06-01.tif", after)):
        p = folder / name
        with rasterio.open(
            p, "w", driver="GTiff", width=size, height=size, count=4, dtype="uint8",
            crs=CRS, transform=Affine(0.5, 0, ORIGIN[0], 0, -0.5, ORIGIN[1]),
            tiled=True, blockxsize=512, blockysize=512,
        ) as ds:  # fmt: skip
            ds.write(np.clip(arr, 0, 255).astype("uint8"))
        paths.append(p)
    return paths[0], paths[1]


def make_big_cog(folder: Path, size: int) -> Path:
    """A size x size 3-band tiled GeoTIFF with internal overviews, written in strips."""
    path = folder / f"big_{size}.tif"
    yy = np.arange(512, dtype=np.float32)[:, None]
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
        crs=CRS, transform=Affine(0.5, 0, ORIGIN[0], 0, -0.5, ORIGIN[1]),
        tiled=True, blockxsize=512, blockysize=512, compress="deflate",
    ) as ds:  # fmt: skip
        xx = np.arange(size, dtype=np.float32)[None, :]
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            y = yy[:h] + r0
            strip = np.stack(
                [
                    (xx * 0.05 + y * 0.03) % 255,
                    (np.sin(xx / 97.0) * np.cos(y / 53.0) * 120 + 128),
                    ((xx // 256 + y // 256) % 2) * 180 + 40,
                ]
            ).astype("uint8")
            ds.write(strip, window=Window(0, r0, size, h))
        factors = [2**k for k in range(1, 8) if size // 2**k >= 256]
        ds.build_overviews(factors, Resampling.average)
    return path


def _wait(app, cond, timeout: float = 300.0) -> None:  # noqa: ANN001
    t0 = time.perf_counter()
    while not cond():
        app.processEvents()
        time.sleep(0.002)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("benchmark step did not finish")


def _drawn(viewer) -> None:  # noqa: ANN001
    """Process events and force one full redraw of the canvas, so 'shown' means drawn."""
    from qtpy.QtWidgets import QApplication

    QApplication.instance().processEvents()
    viewer.window._qt_viewer.canvas._scene_canvas.render()


def _settle(app, viewer, quiet: float = 0.3, timeout: float = 10.0) -> None:  # noqa: ANN001
    """Process events until the canvas size has not changed for ``quiet`` seconds."""
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    size, since, t0 = tuple(canvas.size), time.perf_counter(), time.perf_counter()
    while time.perf_counter() - since < quiet and time.perf_counter() - t0 < timeout:
        app.processEvents()
        time.sleep(0.01)
        if tuple(canvas.size) != size:
            size, since = tuple(canvas.size), time.perf_counter()
    _drawn(viewer)


def bench_run(viewer, folder: Path, rows: list) -> None:  # noqa: ANN001
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    before, after = make_pair(folder)
    viewer.open([str(before), str(after)], plugin="satdelta")
    t_dock = time.perf_counter()
    dock, w = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    # the dock starts the detection child; the window keeps handling events meanwhile
    # (no child: a widget from before the child process, for A/B runs of this script)
    detector = getattr(w.detect_panel, "detector", None)
    child = psutil.Process(detector.pid) if detector is not None else psutil.Process()
    while detector is not None and not detector.wait_ready(0.005):
        app.processEvents()
    if detector is not None:
        rows.append(
            (
                "dock opened -> detection child ready",
                time.perf_counter() - t_dock,
                f"child RSS {child.memory_info().rss / 1e6:.0f} MB after its imports",
            )
        )
    w.open_store(folder / "bench.gpkg")
    w.detect_panel.before_edit.setEditText(viewer.layers[0].name)
    w.detect_panel.after_edit.setEditText(viewer.layers[1].name)
    # the analyst sees the opened pair before pressing Run: draw it first, so its first
    # texture upload (about 0.5 s here) is not counted as the worker's start-up
    t0 = time.perf_counter()
    _drawn(viewer)
    rows.append(("open 2048x2048x4 pair, first frame drawn", time.perf_counter() - t0, ""))
    _settle(app, viewer)
    steps: list[tuple[float, str]] = []
    from qtpy.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    # step times as the widget receives them (wrapping its slot: the worker may yield
    # before a connection made after run() returns)
    on_step = w.detect_panel._on_step

    def timed_step(s) -> None:  # noqa: ANN001
        steps.append((time.perf_counter() - t0, s[2]))
        on_step(s)

    w.detect_panel._on_step = timed_step
    # "shown" = the end of the first on-screen draw (after its GL flush) of a frame that
    # holds the layers: the change mask (the maps are shown before the candidates are
    # saved), then everything with the candidates.  Draws run on this (the main) thread,
    # never inside show_maps or _on_result, so a draw that ends after the flag was set
    # began after the layers were in place.
    maps_drawn: list[float] = []
    all_drawn: list[float] = []
    result_in: list[bool] = []
    on_result = w.detect_panel._on_result

    def timed_result(r) -> None:  # noqa: ANN001
        on_result(r)
        result_in.append(True)

    w.detect_panel._on_result = timed_result
    scene_canvas = viewer.window._qt_viewer.canvas._scene_canvas

    def on_draw(_event) -> None:  # noqa: ANN001
        if not maps_drawn and w.detect_panel._maps_shown is not None:  # set once show_maps is done
            maps_drawn.append(time.perf_counter() - t0)
        if not all_drawn and result_in and not w.evidence.loading:
            all_drawn.append(time.perf_counter() - t0)

    scene_canvas.events.draw.connect(on_draw, position="last")
    canvas_size = tuple(scene_canvas.size)  # a resize during Run redraws everything once more
    t0 = time.perf_counter()
    steps.append((0.0, "start worker"))
    worker = w.run()
    started = time.perf_counter() - t0
    # idle in Qt's own event loop (as a user's napari does), no polling
    from qtpy.QtCore import QEventLoop

    loop = QEventLoop()
    worker.finished.connect(loop.quit)
    if w.detect_panel.worker is not None:
        loop.exec()
    _wait(
        app,
        lambda: (
            w.detect_panel.worker is None
            and "change mask" in viewer.layers
            and not w.evidence.loading
        ),
    )
    try:
        _wait(app, lambda: bool(all_drawn), timeout=2.0)  # the window's own next frame
    except TimeoutError:
        pass  # no frame of its own (hidden window): the forced render below counts
    # then one forced offscreen render, as this benchmark measured before (an upper bound:
    # it waits for the worker thread to end and renders the whole scene once more)
    _drawn(viewer)
    forced = time.perf_counter() - t0
    total = all_drawn[0] if all_drawn else forced
    timer.stop()
    scene_canvas.events.draw.disconnect(on_draw)
    w.detect_panel._on_result = on_result
    freeze = float(np.max(np.diff([t0, *ticks, t0 + total])))
    n = len(set(viewer.layers["evidence"].features["annotation_id"]))
    # each yielded message announces the step that starts at that moment
    marks = [*steps, (total, "")]
    for (t, label), (t_next, _) in zip(marks, marks[1:], strict=False):
        rows.append((f"  {label}", t_next - t, ""))
    rows[-1] = (rows[-1][0] + " + layers shown", rows[-1][1], f"{n} candidates")
    rows.append(
        (
            "Run -> layers shown, 2048x2048x4 pair",
            total,
            f"target < 1.5 s; run() {started:.2f} s; longest event-loop stall {freeze:.2f} s",
        )
    )
    if tuple(scene_canvas.size) != canvas_size:  # e.g. the dock still settling its layout
        rows[-1] = (
            rows[-1][0],
            rows[-1][1],
            f"{rows[-1][2]}; canvas resized during Run {canvas_size} -> {tuple(scene_canvas.size)}",
        )
    maps_at = maps_drawn[0] if maps_drawn else float("nan")
    rows.append(("  Run -> score + mask first drawn", maps_at, "before the candidates"))
    rows.append(("  maps drawn -> candidates drawn", total - maps_at, ""))
    rows.append(("  Run -> worker ended + forced offscreen render", forced, "the earlier measure"))
    t0 = time.perf_counter()
    worker = w.run()
    loop = QEventLoop()
    worker.finished.connect(loop.quit)
    if w.detect_panel.worker is not None:
        loop.exec()
    _wait(app, lambda: w.detect_panel.worker is None and not w.evidence.loading)
    _drawn(viewer)
    rows.append(
        (
            "  second Run, same pair",
            time.perf_counter() - t0,
            f"layers updated in place; {'child' if detector else 'napari'} RSS "
            f"{child.memory_info().rss / 1e6:.0f} MB after two runs",
        )
    )
    w.detect_panel._on_step = on_step
    from satdelta.imagery.options import DetectionOptions
    from satdelta.plugins.napari._detection import run_detection_sync

    t0 = time.perf_counter()
    run_detection_sync(
        before, after, DetectionOptions(min_area_m2=w.detect_panel.min_area.value() or None)
    )
    rows.append(("  same run, library only, no GUI", time.perf_counter() - t0, "main thread"))
    viewer.layers.clear()
    # a fresh dock for the next part (napari hands back a dock still in the window, with
    # the before/after names of this part's layers)
    viewer.window.remove_dock_widget(dock)


class Heartbeat:
    """A 10 ms QTimer: the longest gap between its ticks is the longest event-loop stall.

    Each tick also records the main thread's CPU time (``time.thread_time``), so a stall
    can be told apart from waiting for the CPU on a loaded machine: the CPU time of the
    longest stall, and the longest CPU time spent between two ticks, change little with
    load.  With ``trace`` a sampling thread records where the main thread was during each
    stall over ``trace`` seconds (printed by :meth:`report`).
    """

    def __init__(self, trace: float | None = None) -> None:
        from qtpy.QtCore import QTimer

        self.ticks = [time.perf_counter()]
        self.cpu = [time.thread_time()]
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(10)
        self.samples: list[tuple[float, list[str]]] = []
        self._stop = threading.Event()
        self._trace = trace
        if trace is not None:
            self._main = threading.get_ident()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())
        self.cpu.append(time.thread_time())

    def _sample(self) -> None:
        """Every 20 ms while the main thread is late: its stack (satdelta/napari frames)."""
        import traceback

        while not self._stop.wait(0.01):
            late = time.perf_counter() - self.ticks[-1]
            if late < 0.05:
                continue
            frame = sys._current_frames().get(self._main)
            stack = traceback.extract_stack(frame) if frame is not None else []
            names = [
                f"{Path(f.filename).name}:{f.lineno} {f.name}"
                for f in stack
                if any(k in f.filename for k in ("satdelta", "napari", "vispy", "superqt"))
                and not f.filename.endswith(("gui.py", "event.py", "qt_main_window.py"))
            ]
            # where the event loop entered our code or napari's, and where it was
            self.samples.append((self.ticks[-1], [*names[:3], "…", *names[-2:]]))

    def stop(self) -> float:
        """Stop; the longest gap between ticks (seconds of wall-clock time)."""
        self.timer.stop()
        self._stop.set()
        self._tick()
        return float(np.max(np.diff(self.ticks)))

    def longest_cpu(self) -> tuple[float, float]:
        """(main-thread CPU seconds in the longest stall, longest CPU seconds between ticks)."""
        gaps, cpu = np.diff(self.ticks), np.diff(self.cpu)
        return float(cpu[int(np.argmax(gaps))]), float(cpu.max())

    def summary(self) -> str:
        """The figures the benchmark rows print."""
        wall = float(np.max(np.diff(self.ticks)))
        in_longest, most = self.longest_cpu()
        return (
            f"longest event-loop stall {wall:.2f} s (main-thread CPU {in_longest:.2f} s; "
            f"most CPU between ticks {most:.2f} s; target <= 0.25 s)"
        )

    def report(self) -> str:
        """Each stall over the trace threshold: its length and the frames sampled in it."""
        if self._trace is None:
            return ""
        lines = []
        starts = np.asarray(self.ticks[:-1])
        gaps = np.diff(self.ticks)
        for k in np.flatnonzero(gaps > self._trace):
            t = starts[k]
            seen: dict[str, int] = {}
            for at, names in self.samples:
                if at == t and names:
                    key = " > ".join(names)
                    seen[key] = seen.get(key, 0) + 1
            lines.append(
                f"stall {gaps[k]:.3f} s at +{t - self.ticks[0]:.2f} s "
                f"(cpu {self.cpu[k + 1] - self.cpu[k]:.3f} s)"
            )
            for key, n in sorted(seen.items(), key=lambda kv: -kv[1])[:4]:
                lines.append(f"    {n:3d}x {key}")
        cpu = np.diff(self.cpu)
        for k in np.argsort(cpu)[::-1][:3]:
            at = starts[k] - self.ticks[0]
            lines.append(f"most CPU: {cpu[k]:.3f} s in a {gaps[k]:.3f} s gap at +{at:.2f} s")
        return "\n".join(lines)


def timed_slices(w) -> list[float]:  # noqa: ANN001
    """Durations of the evidence layer's redraw slices (the desk's own main-thread work)."""
    times: list[float] = []
    add = w.evidence._add_slice

    def timed(load, count) -> None:  # noqa: ANN001
        t0 = time.perf_counter()
        add(load, count)
        times.append(time.perf_counter() - t0)

    w.evidence._add_slice = timed
    return times


def _idle(app, seconds: float) -> None:  # noqa: ANN001
    """Keep handling events for ``seconds`` (work the window does after a step ends)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        app.processEvents()
        time.sleep(0.002)


def bench_naip(viewer, folder: Path, rows: list, trace: float | None = None) -> None:  # noqa: ANN001
    """Run on the real NAIP pair from the Run button, default settings; longest stall.

    The heartbeat keeps beating for a second after the status says "done", so work the
    window does after the run (store reads, counts, redraws) is counted too.
    """
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    naip = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "naip-nd"
    pair = [naip / "m_4709963_se_14_1_20090818.tif", naip / "m_4709963_se_14_1_20200831.tif"]
    if not all(p.exists() for p in pair):
        rows.append(("NAIP pair: not found", float("nan"), str(naip)))
        return
    viewer.open([str(p) for p in pair], plugin="satdelta")
    dock, w = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    while not w.detect_panel.detector.wait_ready(0.005):
        app.processEvents()
    w.open_store(folder / "naip.gpkg")
    _settle(app, viewer)
    slices = timed_slices(w)
    beat = Heartbeat(trace)
    label = w.detect_panel.progress_label
    said: list[tuple[float, str]] = []  # the status line's changes (with --trace)

    def note_status() -> None:
        text = (
            label.text().split(" candidates")[0]
            if label.text().startswith("drawing")
            else label.text()
        )
        if not said or said[-1][1] != text:
            said.append((time.perf_counter() - t0, text))

    if trace is not None:
        beat.timer.timeout.connect(note_status)
    t0 = time.perf_counter()
    w.detect_panel.run_button.click()
    _wait(app, lambda: label.text().startswith(("done", "failed")))
    total = time.perf_counter() - t0
    _idle(app, 1.0)
    beat.stop()
    n = len(set(viewer.layers["evidence"].features["annotation_id"]))
    rows.append(
        (
            "NAIP pair, Run button -> 'done', candidates shown",
            total,
            f"{n} candidates; {beat.summary()}; "
            f"{len(slices)} outline slices, longest {max(slices, default=0):.2f} s",
        )
    )
    if trace is not None:
        print("NAIP stalls:\n" + beat.report(), flush=True)
        print("\n".join(f"  +{t:.2f} s {text[:60]}" for t, text in said), flush=True)
    viewer.layers.clear()
    # a fresh dock for the next part (napari hands back a dock still in the window, with
    # the before/after names of this part's layers)
    viewer.window.remove_dock_widget(dock)


def bench_cog(viewer, folder: Path, size: int, rows: list) -> None:  # noqa: ANN001
    t0 = time.perf_counter()
    path = make_big_cog(folder, size)
    gen = time.perf_counter() - t0
    raw_mb = size * size * 3 / 1e6
    gc.collect()
    rss0 = _rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    viewer.open(str(path), plugin="satdelta")
    viewer.reset_view()
    _drawn(viewer)
    opened = time.perf_counter() - t0
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    layer = viewer.layers[-1]
    rows.append(
        (
            f"open {size}x{size}x3 COG, first frame drawn",
            opened,
            f"{_rss_mb() - rss0:+.0f} MB RSS, {peak_mb:.0f} MB peak numpy/Python "
            f"allocations vs {raw_mb:.0f} MB raw; "
            f"{len(layer.data)} levels; generated in {gen:.1f} s",
        )
    )
    viewer.scene.camera.zoom = viewer.scene.camera.zoom * 16  # zoom in: full-res tiles
    t0 = time.perf_counter()
    _drawn(viewer)
    rows.append(
        (
            "  zoom x16 redraw",
            time.perf_counter() - t0,
            f"level {layer.data_level}; {_rss_mb() - rss0:+.0f} MB RSS since open",
        )
    )
    viewer.layers.clear()


def bench_polygons(  # noqa: ANN001
    viewer, folder: Path, rows: list, n: int = 5000, trace: float | None = None
) -> None:
    from satdelta.imagery.vectorize import ChangePolygon
    from satdelta.plugins.napari._frame import MapFrame
    from shapely.geometry import box

    small = folder / "small"
    small.mkdir(exist_ok=True)
    before, _after = make_pair(small, size=256)
    viewer.open(str(before), plugin="satdelta")
    dock, w = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    w.open_store(folder / "polys.gpkg")
    frame = MapFrame(CRS, *ORIGIN)
    side = int(np.ceil(np.sqrt(n)))
    polys = []
    for k in range(n):
        r, c = divmod(k, side)
        x0, y0 = ORIGIN[0] + c * 2.0, ORIGIN[1] - r * 2.0
        g = box(x0, y0 - 1.5, x0 + 1.5, y0)
        ll = frame.map_to_lonlat(np.asarray(g.exterior.coords))
        polys.append(ChangePolygon(g, box(*ll.min(0), *ll.max(0)), 2.25, 1.0, 9))
    t0 = time.perf_counter()
    w.session.add_candidates(polys, {"method": "benchmark"})
    stored = time.perf_counter() - t0
    from qtpy.QtWidgets import QApplication

    # the window's first paints (the image, the dock's layout, the canvas's first glyphs)
    # come before the candidates are shown, as on an analyst's screen: not in the stall
    _settle(QApplication.instance(), viewer)
    slices = timed_slices(w)
    beat = Heartbeat(trace)
    t0 = time.perf_counter()
    w.evidence.reload()
    _wait(QApplication.instance(), lambda: not w.evidence.loading)
    _drawn(viewer)
    shown = time.perf_counter() - t0
    _idle(QApplication.instance(), 1.0)
    beat.stop()
    rows.append((f"save {n} candidates to the store", stored, "one transaction"))
    rows.append(
        (
            f"show {n} candidate polygons",
            shown,
            f"store read + Shapes layer + draw; {beat.summary()}; "
            f"{len(slices)} slices, longest {max(slices):.2f} s",
        )
    )
    if trace is not None:
        print(f"{n} polygons stalls:\n" + beat.report(), flush=True)
    viewer.layers.clear()
    # a fresh dock for the next part (napari hands back a dock still in the window, with
    # the before/after names of this part's layers)
    viewer.window.remove_dock_widget(dock)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 2,000² COG instead of 10,000²")
    ap.add_argument(
        "--only",
        choices=("cog", "run", "naip", "polygons"),
        action="append",
        help="run only this part (repeatable); default all four",
    )
    ap.add_argument(
        "--trace",
        type=float,
        metavar="SECONDS",
        help="print where the main thread was in each stall longer than this",
    )
    args = ap.parse_args(argv)
    import napari

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="satdelta-bench-") as tmp:
        folder = Path(tmp)
        viewer = napari.Viewer(show=True)
        viewer.window._qt_window.resize(1400, 900)
        # the COG first, so the RSS growth is not hidden by memory freed from earlier steps
        only = set(args.only or ("cog", "run", "naip", "polygons"))
        if "cog" in only:
            bench_cog(viewer, folder, 2000 if args.quick else 10_000, rows)
        if "run" in only:
            bench_run(viewer, folder, rows)
        if "naip" in only:
            bench_naip(viewer, folder, rows, args.trace)
        if "polygons" in only:
            bench_polygons(viewer, folder, rows, trace=args.trace)
        viewer.close()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  seconds  note")
    for name, secs, note in rows:
        print(f"{name.ljust(width)}  {secs:7.3f}  {note}")
    print(f"(cpus: {os.cpu_count()}, python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
