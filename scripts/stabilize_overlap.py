"""The stabilizer's added time with its flow and warp on a side thread, against the same work done in
sequence, interleaved in blocks of frames. Beside a GPU, measured without one: a stand-in backend whose
``infer`` sleeps (the cores stay idle, as while a GPU runs the network). On a CPU (``--cpu-scale``): the
real network (``--backend``) at that render scale, the flow beside the upscale, or at 1.0 beside the
network itself.

    python scripts/stabilize_overlap.py [--frames 120] [--sleep-ms 15] [--source footage]
    python scripts/stabilize_overlap.py --cpu-scale 0.5
    python scripts/stabilize_overlap.py --cpu-scale 1.0 --backend openvino --frames 252
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
    ap.add_argument("--backend", default="onnxruntime", help="the CPU backend with --cpu-scale")
    ap.add_argument("--cpu-scale", type=float, default=0.0,
                    help="measure on the CPU backend at this render scale instead (the flow beside the upscale)")
    args = ap.parse_args()

    from engine.backends import create_backend
    from engine.backends.ort import OrtCpuBackend
    from engine.video.capture import SourceSettings, open_source
    from engine.live.pipeline import Pipeline, StyleSettings
    from engine.styles.packs import StylePack

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
    ways = ("overlapped", "sequential", "off")  # off: no stabilizer, what the other two add to
    times: dict[str, list] = {way: [] for way in ways}
    backend = create_backend(args.backend, pack=pack) if args.cpu_scale else GpuStandIn(pack=pack)
    settings = StyleSettings(style=args.style, stabilize=True, render_scale=args.cpu_scale or 1.0)
    switch = "overlap_cpu" if args.cpu_scale else "overlap_prepare"
    with Pipeline(source, backend, pack, settings=settings) as pipe:
        for _ in range(8):
            pipe.step()
        for block in range(args.frames // 18):
            for way in ways[block % 3:] + ways[:block % 3]:
                setattr(pipe, switch, way == "overlapped")
                pipe.update(stabilize=way != "off")
                pipe.step()  # the change is taken up here; the stabilizer starts from a clean frame
                for _ in range(6):
                    times[way].append(pipe.step().times_ms)
    off = np.median([r["total"] for r in times["off"]])
    for way, rows in times.items():
        total = np.median([r["total"] for r in rows])
        print(f"{way:10s} " + "  ".join(f"{k} p50 {np.median([r[k] for r in rows]):.2f} ms"
                                        for k in ("infer", "postprocess", "stabilize", "total"))
              + f"  added {total - off:+.2f} ms")


if __name__ == "__main__":
    main()
