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
from .pipeline import STAGES, Pipeline, StyleSettings
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
    pipe = Pipeline(source, backend, pack, [NullSink()], StyleSettings(style=settings.style))
    label = f"{backend.name} {size[0]}x{size[1]}"
    try:
        with tqdm(total=settings.warmup + settings.frames, desc=label, unit="frame", leave=False,
                  disable=not settings.progress) as bar:
            pipe.run(settings.warmup, on_frame=lambda r: bar.update())
            pipe.stats.reset()
            n = pipe.run(settings.frames, on_frame=lambda r: bar.update())
        summary = pipe.stats.summary()
        total_s = sum(pipe.stats.samples["total"]) / 1000.0
        return {"backend": backend.name, "detail": backend.describe(), "width": size[0], "height": size[1],
                "frames": n, "fps": n / total_s if total_s else 0.0, "stages": summary}
    finally:
        pipe.close()


def run_bench(pack: StylePack, settings: BenchSettings) -> dict:
    runs = [run_one(pack, b, s, settings) for b in settings.backends for s in settings.sizes]
    return {"runs": runs, "machine": machine_info(), "source": settings.source, "style": settings.style}


def format_table(result: dict) -> str:
    cols = (*STAGES, "total")
    head = f"{'backend':<18}{'size':>10}{'fps':>8}  " + "".join(f"{c:>17}" for c in cols)
    lines = [head, " " * 38 + "".join(f"{'p50/p95 ms':>17}" for _ in cols)]
    for r in result["runs"]:
        cells = "".join(
            f"{r['stages'][c]['p50_ms']:>9.2f}/{r['stages'][c]['p95_ms']:<7.2f}" for c in cols)
        lines.append(f"{r['backend']:<18}{r['width']:>5}x{r['height']:<4}{r['fps']:>8.1f}  {cells}")
    return "\n".join(lines)


def write_json(result: dict, path: Optional[Path]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n")
