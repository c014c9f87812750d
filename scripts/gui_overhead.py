"""Measure what the GUI adds to the pipeline's frame time (issue: ≤ 10% at 640×480).

Runs `stylecam bench` logic and then the real window on the same source, size and backend, and
prints both per-frame totals. Usage: python scripts/gui_overhead.py [--seconds 20] [--source demo]
(under xvfb-run for a real X server, or QT_QPA_PLATFORM=offscreen).
"""
import argparse
import json
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.settings import GuiSettings
from lab.bench import BenchSettings, run_one
from engine.styles.packs import StylePack


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="demo")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    pack = StylePack.load()
    bench = run_one(pack, args.backend, (640, 480), BenchSettings(source=args.source, frames=args.frames,
                                                                   warmup=10, progress=False))
    app = QApplication(sys.argv[:1])
    win = MainWindow(pack, GuiSettings(source=args.source, size="640x480", backend=args.backend, style_a=7))
    win.show()
    start = {}

    def warm():  # drop the first frames (session warm-up, thumbnails)
        win.worker.pipeline.stats.reset()
        start["t"], start["seq"] = time.perf_counter(), win._shown_seq

    QTimer.singleShot(4000, warm)
    QTimer.singleShot(int((4 + args.seconds) * 1000), win.close)
    app.exec()
    elapsed = time.perf_counter() - start["t"]
    gui = win.worker.pipeline.stats.summary() if win.worker.pipeline else {}
    shown = win._shown_seq - start["seq"]
    result = {
        "bench_total_p50_ms": bench["stages"]["total"]["p50_ms"], "bench_fps": bench["fps"],
        "gui_total_p50_ms": gui["total"]["p50_ms"], "gui_infer_p50_ms": gui["infer"]["p50_ms"],
        "bench_infer_p50_ms": bench["stages"]["infer"]["p50_ms"], "gui_displayed_fps": shown / elapsed,
        "platform": app.platformName(),
    }
    result["overhead_pct"] = 100 * (result["gui_total_p50_ms"] / result["bench_total_p50_ms"] - 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
