"""Small measurements shared by the pipeline, the app, the bench and the evaluation."""
from __future__ import annotations

import collections
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
