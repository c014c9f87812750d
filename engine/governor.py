"""Frame-rate governor: pick the render scale that holds a target frame rate (dynamic resolution).

As WebRTC's CPU-overuse detector lowers the encode resolution when frames take too long and raises
it when there is headroom, and as games scale resolution dynamically: the p90 of the recent frame
times (the work of a frame, not the wait for the camera) against the budget 1/target. Too slow: jump
straight to the largest scale whose predicted time (cost ∝ pixels ∝ scale²) fits. Headroom: one
rung up, and only when the rung's predicted time stays under ``up_margin`` of the budget, so a step
up is never followed by a step back down (hysteresis). Never below ``min_scale``. Scales come from
a short ladder, so a compiled backend builds a few sizes, not one per decision.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import InputError

LADDER = (1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25)


@dataclass(frozen=True)
class GovernorSettings:
    target_fps: Optional[float] = None  # None or 0: off (the render scale stays as set)
    min_scale: float = 0.5  # the floor: below it the picture gets too soft
    max_scale: float = 1.0  # the ceiling ("full quality" pins the scale here)
    window: int = 12  # frames per decision (and to settle after a change)
    up_margin: float = 0.8  # step up only if the predicted p90 stays under this share of the budget

    @property
    def active(self) -> bool:
        return bool(self.target_fps)

    def check(self) -> "GovernorSettings":
        if self.target_fps is not None and not 0 <= self.target_fps <= 1000:
            raise InputError(f"--target-fps must be between 0 (off) and 1000, got {self.target_fps:g}")
        if not 0.25 <= self.min_scale <= self.max_scale <= 1.0:
            raise InputError(f"--min-scale must be between 0.25 and 1, got {self.min_scale:g}")
        return self

    def rungs(self) -> tuple[float, ...]:
        inside = [r for r in LADDER if self.min_scale <= r <= self.max_scale]
        return tuple(sorted({self.max_scale, self.min_scale, *inside}, reverse=True))


class Governor:
    def __init__(self, settings: GovernorSettings):
        self.settings = settings.check()
        self.rungs = settings.rungs()
        self.scale = self.rungs[0]
        self._times: deque[float] = deque(maxlen=settings.window)
        self.changes = 0

    @property
    def budget_ms(self) -> float:
        return 1000.0 / self.settings.target_fps

    def observe(self, work_ms: float) -> Optional[float]:
        """Add one frame's time; returns the scale to move to when it should change, else None."""
        self._times.append(work_ms)
        if len(self._times) < self._times.maxlen:
            return None
        p90 = float(np.percentile(self._times, 90))
        budget = self.budget_ms

        def predicted(rung: float) -> float:
            return p90 * (rung / self.scale) ** 2

        if p90 > budget:
            fits = [r for r in self.rungs if r < self.scale and predicted(r) <= 0.95 * budget]
            target = fits[0] if fits else self.rungs[-1]
        else:
            up = [r for r in self.rungs if r > self.scale]
            target = up[-1] if up and predicted(up[-1]) <= self.settings.up_margin * budget else self.scale
        if target == self.scale:
            return None
        return target

    def moved(self, scale: float) -> None:
        """The pipeline now renders at ``scale``: measure afresh."""
        self.scale = scale
        self._times.clear()
        self.changes += 1

    def describe(self) -> str:
        return f"render {self.scale:.2f}× to hold {self.settings.target_fps:g} FPS"
