"""Small measurements shared by the pipeline, the app, the bench and the evaluation."""
from __future__ import annotations

import collections
import os
import platform
import time
from typing import Optional

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two uint8 (or 0..peak) images; ``inf`` when they are identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))


class RateMeter:
    """Events per second over the last ``window`` events (frames finished, frames painted)."""

    def __init__(self, window: int = 90):
        self._times: collections.deque[float] = collections.deque(maxlen=window)

    def tick(self, now: Optional[float] = None) -> None:
        self._times.append(time.perf_counter() if now is None else now)

    @property
    def rate(self) -> float:
        t = self._times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def reset(self) -> None:
        self._times.clear()


class LatencyMeter:
    """Milliseconds from a frame's grab to its delivery, one value per frame, percentiles pooled over the
    frames (not per second): the last ``keep`` frames for the live figure, up to ``total`` for a run's."""

    def __init__(self, keep: int = 300, total: int = 200_000):
        self._recent: collections.deque[float] = collections.deque(maxlen=keep)
        self._all: collections.deque[float] = collections.deque(maxlen=total)  # a run's (a soak's) frames

    def add(self, ms: float) -> None:
        self._recent.append(ms)  # deque.append is atomic: sinks add from their own threads
        self._all.append(ms)

    def pooled(self) -> dict:
        """p50/p95 over every frame kept since the start (a soak's figure), and the count."""
        values = list(self._all)
        p50, p95 = np.percentile(values, (50, 95)) if values else (0.0, 0.0)
        return {"p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1), "frames": len(values)}

    def since(self, grabbed_at: float) -> None:
        """A frame grabbed at ``grabbed_at`` (perf_counter) is delivered now."""
        if grabbed_at > 0:
            self.add(1000.0 * (time.perf_counter() - grabbed_at))

    def percentiles(self, *q: float) -> tuple[Optional[float], ...]:
        values = list(self._recent)
        if not values:
            return tuple(None for _ in q)
        return tuple(float(v) for v in np.percentile(values, q))

    def __len__(self) -> int:
        return len(self._recent)


def machine_info() -> dict:
    import cv2
    import numpy

    from .cpu_tuning import cpu_profile, cpuinfo, native_flags
    from .version import __version__

    family = cpuinfo()
    cpu = family.get("model name", platform.processor())
    # A VM may name the CPU only "AMD EPYC": family/model (23/49 is Zen 2) and the vector units say which
    vector = sorted(f for f in native_flags() if f in ("avx2", "fma") or f.startswith(("avx512", "amx"))
                    or "vnni" in f or "bf16" in f)
    info = {"stylecam": __version__, "platform": platform.platform(), "cpu": cpu,
            "cpu_family_model": f"{family.get('cpu family', '?')}/{family.get('model', '?')}",
            "cpu_vector_flags": " ".join(vector), "cpu_profile": cpu_profile(), "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": numpy.__version__, "opencv": cv2.__version__}
    try:
        import torch
    except ImportError:
        torch = None
    else:
        info["torch"] = torch.__version__
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        pass
    if torch is not None:
        info["torch_cuda"] = torch.version.cuda or "none (CPU build)"
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info
