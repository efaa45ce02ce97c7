"""Benchmark the desk on a pair that runs block by block: memory, progress, event-loop stalls.

Run under a display (Xvfb on a headless machine)::

    xvfb-run -a .venv/bin/python benchmarks/desk_blocks.py --pair DIR   # DIR/before_*.tif ...
    xvfb-run -a .venv/bin/python benchmarks/desk_blocks.py --size 8192  # generated pair
    xvfb-run -a .venv/bin/python benchmarks/desk_blocks.py --pair DIR --whole  # for contrast

The pair is opened in a shown napari window (the satdelta reader, as File > Open does), the
Change annotator docked with a store in a temporary folder, and Run pressed once the
detection child is warm. Printed: Run -> "done" seconds, the GUI process's peak resident
set (sampled every 20 ms during the run, and its lifetime high-water mark), the detection
child's high-water mark (VmHWM), each status line the dock showed with its time, the
progress bar's values, and the longest event-loop stall (benchmarks/gui.py's 10 ms
heartbeat; ``--trace SECONDS`` prints where the main thread was in each longer stall).
``--whole`` runs the same pair on the whole-array path (the dock's ``blocks_from_px``
raised above the grid) for comparison. Inputs without overviews make napari read their
full resolution when zoomed out; build them (``gdaladdo -r average``) on a copy first.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gui import Heartbeat, _idle, _settle, _wait  # noqa: E402


def _hwm_mb(pid: int) -> float:
    """A process's resident high-water mark (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(pair: list[Path], folder: Path, *, whole: bool, trace: float | None) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    app = QApplication.instance()
    viewer.open([str(p) for p in pair], plugin="satdelta")
    _dock, w = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    panel = w.detect_panel
    if whole:
        panel.blocks_from_px = 2**62
    while not panel.detector.wait_ready(0.005):
        app.processEvents()
    w.open_store(folder / "desk.gpkg")
    _settle(app, viewer)
    me = psutil.Process()
    rss0 = me.memory_info().rss / 1e6
    peak = [rss0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], me.memory_info().rss / 1e6)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    label, bar = panel.progress_label, panel.progress
    said: list[tuple[float, str, int, int]] = []

    def note() -> None:
        text = label.text()
        if not said or said[-1][1] != text:
            said.append((time.perf_counter() - t0, text, bar.value(), bar.maximum()))

    beat = Heartbeat(trace)
    beat.timer.timeout.connect(note)
    t0 = time.perf_counter()
    panel.run_button.click()
    _wait(app, lambda: label.text().startswith(("done", "failed")), timeout=1800)
    total = time.perf_counter() - t0
    _wait(app, lambda: not w.evidence.loading, timeout=600)
    _idle(app, 1.0)
    drawn = time.perf_counter() - t0
    beat.stop()
    stop.set()
    sampler.join()
    child = panel.detector.pid
    child_hwm = _hwm_mb(child) if child else float("nan")
    mask = viewer.layers["change mask"]
    kind = "multiscale (COG levels)" if mask.multiscale else "in-memory array"
    print(f"path: {'whole array' if whole else 'block runner'}; mask layer: {kind}")
    print(f"Run -> 'done' {total:.1f} s; candidates drawn {drawn:.1f} s: {label.text()}")
    print(
        f"GUI process RSS: {rss0:.0f} MB before Run, peak {peak[0]:.0f} MB during the run "
        f"(+{peak[0] - rss0:.0f} MB); lifetime high-water "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    print(f"detection child high-water (VmHWM, since it started): {child_hwm:.0f} MB")
    print(beat.summary())
    if trace is not None:
        print(beat.report())
    print("status lines (seconds after Run, text, bar value/maximum):")
    for t, text, value, top in said:
        print(f"  +{t:6.2f} s  {value:4d}/{top:<4d} {text[:70]}")
    viewer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", type=Path, help="folder with before_*.tif and after_*.tif")
    ap.add_argument("--size", type=int, default=8192, help="generated pair's side (no --pair)")
    ap.add_argument("--whole", action="store_true", help="the whole-array path, for contrast")
    ap.add_argument("--trace", type=float, metavar="SECONDS")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="satdelta-desk-bench-") as tmp:
        folder = Path(tmp)
        if args.pair is not None:
            pair = [next(args.pair.glob("before_*.tif")), next(args.pair.glob("after_*.tif"))]
        else:
            from speed import make_pair

            pair = list(make_pair(folder, args.size)[:2])
        run(pair, folder, whole=args.whole, trace=args.trace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
