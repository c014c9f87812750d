"""The stabilizer's added time beside a GPU, measured without one: a stand-in backend whose ``infer``
sleeps (the cores stay idle, as while a GPU runs the network), the flow and warp on the side thread
against the same work done in sequence, interleaved in blocks of frames.

    python scripts/stabilize_overlap.py [--frames 120] [--sleep-ms 15] [--source footage]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--sleep-ms", type=float, default=15.0, help="the stand-in network's time")
    ap.add_argument("--source", default="footage")
    ap.add_argument("--style", default="7")
    args = ap.parse_args()

    from engine.backends.ort import OrtCpuBackend
    from engine.capture import SourceSettings, open_source
    from engine.pipeline import Pipeline, StyleSettings
    from engine.styles import StylePack

    class GpuStandIn(OrtCpuBackend):
        """ONNX Runtime's output, computed once per size; then each frame only sleeps."""

        on_cpu = False
        outputs: dict = {}

        def infer(self, x, style_weights):
            if x.shape not in self.outputs:
                self.outputs[x.shape] = super().infer(x, style_weights)
            time.sleep(args.sleep_ms / 1000.0)
            return self.outputs[x.shape]

    pack = StylePack.load()
    source = open_source(SourceSettings(spec=args.source, size=(640, 480), paced=False))
    times: dict[str, list] = {"overlapped": [], "sequential": []}
    with Pipeline(source, GpuStandIn(pack=pack), pack, settings=StyleSettings(style=args.style, stabilize=True)) as pipe:
        for _ in range(8):
            pipe.step()
        for block in range(args.frames // 12):
            for way in (("overlapped", "sequential") if block % 2 == 0 else ("sequential", "overlapped")):
                pipe.overlap_prepare = way == "overlapped"
                for _ in range(6):
                    times[way].append(pipe.step().times_ms)
    for way, rows in times.items():
        print(f"{way:10s} " + "  ".join(f"{k} p50 {np.median([r[k] for r in rows]):.2f} ms"
                                        for k in ("infer", "stabilize", "total")))


if __name__ == "__main__":
    main()
