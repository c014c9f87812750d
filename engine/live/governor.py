"""Frame-rate governor: pick the render scale that holds a target frame rate (dynamic resolution).

As WebRTC's CPU-overuse detector lowers the encode resolution when frames take too long and raises
it when there is headroom, and as games scale resolution dynamically: the p90 of the recent frame
times (the work of a frame, not the wait for the camera) against the budget 1/target. A frame's time
is modelled as a fixed part (what does not shrink with the render scale: the stabilizer, the mask,
the resizes and the edge-aware upscale, which only runs below full size) plus the network's time,
∝ pixels ∝ scale². Both are measured: the fixed part below 1 and at 1 apart, since the upscale alone
can cost as much as a smaller network saves. Too slow: jump straight to the best level predicted to
fit. Headroom: up to a better level only when it is predicted to stay under ``up_margin`` of the
budget, so a step up is never followed by a step back down (hysteresis), or to cost no more than the
level in use. Never below ``min_scale``. Scales come from a short ladder, so a compiled backend builds
a few sizes, not one per decision.

A lighter network (the slim student, for the styles it renders within the quality floor) is a
level below full size on the full network and above every smaller scale: it looks like the full
network at full size, where a lower scale is softer. Its cost relative to the full network
(``offer_light``) predicts the step; the frames after a move are measured afresh, less the first
SETTLE_FRAMES (a compiled model's first runs at a new size are slow and would send it further down).

Live, the budget is the source's own frame interval when that is longer than the target's (a 24 fps
clip or a webcam in low light can never give 30 FPS: aiming there only costs sharpness), and decisions
hold in time, not only in cost: a step down needs the frames over budget for ``confirm_s`` (a burst
of work on the other core, a GUI repaint or a build, is no reason), and after any move no step up for
``hold_s``; a step up that had to be taken back doubles that wait (up to ``max_hold_s``), as WebRTC
backs off its resolution probes. A new style starts free of the hold: it is a new load, not a flip-flop;
its first decision may step up to the best level predicted to fit, as a run from the top (the bench's)
settles, where later steps up need ``up_margin``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from ..errors import InputError

LADDER = (1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25)
SETTLE_FRAMES = 2  # after a move, frames left out of the window: a compiled model's first runs are slow
LIGHT_COST_GUESS = 0.5  # the lighter network's cost ÷ the full one's until both have been measured


@dataclass(frozen=True)
class GovernorSettings:
    target_fps: Optional[float] = None  # None or 0: off (the render scale stays as set)
    min_scale: float = 0.5  # the floor: below it the picture gets too soft
    max_scale: float = 1.0  # the ceiling ("full quality" pins the scale here)
    window: int = 12  # frames per decision (and to settle after a change)
    up_margin: float = 0.8  # step up only if the predicted p90 stays under this share of the budget
    confirm_s: float = 1.0  # frames over budget this long before a step down (unless most frames are late)
    hold_s: float = 10.0  # no step up within this long of a move
    max_hold_s: float = 80.0  # ... doubled after each step up that had to be taken back, up to this

    @property
    def active(self) -> bool:
        return bool(self.target_fps)

    def check(self) -> "GovernorSettings":
        if self.target_fps is not None and not 0 <= self.target_fps <= 1000:
            raise InputError(f"--target-fps must be between 0 (off) and 1000, got {self.target_fps:g}")
        if not 0.25 <= self.min_scale <= 1.0:
            raise InputError(f"--min-scale must be between 0.25 and 1, got {self.min_scale:g}")
        if not self.min_scale <= self.max_scale <= 1.0:
            raise InputError(f"--max-scale must be between --min-scale ({self.min_scale:g}) and 1, got {self.max_scale:g}")
        return self

    def rungs(self) -> tuple[float, ...]:
        inside = [r for r in LADDER if self.min_scale <= r <= self.max_scale]
        return tuple(sorted({self.max_scale, self.min_scale, *inside}, reverse=True))


class Level(NamedTuple):
    """What the network runs at: a render scale, on the full network or the lighter one."""

    scale: float
    light: bool = False


class Governor:
    def __init__(self, settings: GovernorSettings):
        self.settings = settings.check()
        self.rungs = settings.rungs()
        self.level = Level(self.rungs[0])
        self.light_offered = False  # the style in use has a lighter network
        self.light_name = "lighter"  # ... called so (for the HUD and /stats)
        self._unit: dict[bool, float] = {}  # the network's p90 ms per pixel share (scale²), light or not
        self._fixed: dict[bool, float] = {}  # ms that do not shrink with the scale, below full size or not
        self._times: deque[float] = deque(maxlen=settings.window)
        self._network_times: deque[float] = deque(maxlen=settings.window)
        self.changes = 0
        self.held = False  # keep the level whatever the frame times (a benchmark, once settled)
        self._skip = 0  # frames not to count after a move (a build, a first run, cold caches)
        self.source_fps: Optional[float] = None  # the source's real rate (live): the budget follows it
        self._moved_at = float("-inf")  # when the governor last moved (a new style starts free of the hold)
        self._over_since: Optional[float] = None  # since when the frames have been over budget
        self._hold = settings.hold_s  # the wait before the next step up
        self._last_up: Optional[float] = None  # when the last step up happened
        self._fresh = True  # the first decision for a new look: the best level predicted to fit, either way
        self.cautious = False  # a build shares the cores: step down only when most frames are late

    @property
    def scale(self) -> float:
        return self.level.scale

    @property
    def light(self) -> bool:
        return self.level.light

    def levels(self) -> list[Level]:
        """Best first: full size on the full network, then the lighter network at each scale if the
        style has one (it is cheaper than the full network at any scale that looks as good), else
        the full network at each smaller scale."""
        if not self.light_offered:
            return [Level(r) for r in self.rungs]
        return [Level(self.rungs[0]), *(Level(r, True) for r in self.rungs)]

    def offer_light(self, name: str) -> Optional[Level]:
        """The lighter network the style in use has ("slim"; "" for none). Returns the level to move
        to when the ladder changed under the one in use: the best level on the new ladder that costs
        no more (the full network at a smaller scale when the lighter one is gone; the lighter one at
        a larger scale, sharper for the same time, when it comes while the full network runs small)."""
        if name:
            self.light_name = name
        available = bool(name)
        if available == self.light_offered:
            return None
        self.light_offered = available
        if self.level in self.levels():
            return None
        cost = self._cost(self.level)
        return next((lv for lv in self.levels() if self._cost(lv) <= cost * 1.001), self.levels()[-1])

    @property
    def light_cost(self) -> float:
        """The lighter network's time ÷ the full one's at the same scale: measured once both have run
        (the network's part of the p90, per pixel share), else a guess (its multiply-adds are ~0.3 of
        the full network's, but per-pixel passes around the convolutions do not shrink: measured 0.35
        on ONNX Runtime fp32, 0.65 int8)."""
        if True in self._unit and False in self._unit:
            return self._unit[True] / self._unit[False]
        return LIGHT_COST_GUESS

    def _cost(self, level: Level) -> float:
        """Predicted ms of a frame at ``level`` (relative units before any measurement): the fixed part
        as measured below full size or at it (the other one's until then), plus the network's cost at
        that pixel share (the other network's times the cost ratio until it has run)."""
        fixed = self._fixed.get(level.scale < 1.0, self._fixed.get(self.level.scale < 1.0, 0.0))
        unit = self._unit.get(level.light)
        if unit is None:  # not run yet: from the other network by the (guessed) cost ratio
            other = self._unit.get(not level.light, 1.0)
            unit = other * self.light_cost if level.light else other / self.light_cost
        return fixed + unit * level.scale ** 2

    @property
    def fps_goal(self) -> float:
        """The frame rate it holds: the target, or the source's own rate when that is lower."""
        target = self.settings.target_fps
        return min(target, self.source_fps) if self.source_fps and self.source_fps > 0 else target

    @property
    def budget_ms(self) -> float:
        return 1000.0 / self.fps_goal

    def observe(self, work_ms: float, network_ms: Optional[float] = None,
                now: Optional[float] = None) -> Optional[Level]:
        """Add one frame's time (``network_ms`` of it in the network, which scales with the pixels; all
        of it when not given) at time ``now`` (seconds, monotonic); returns the level to move to when
        it should change, else None."""
        now = time.monotonic() if now is None else now
        if self._skip:
            self._skip -= 1
            return None
        self._times.append(work_ms)
        self._network_times.append(work_ms if network_ms is None else min(network_ms, work_ms))
        if len(self._times) < self._times.maxlen or self.held:
            return None
        p90 = float(np.percentile(self._times, 90))
        fixed = min(float(np.median(np.subtract(self._times, self._network_times))), p90)
        self._fixed[self.level.scale < 1.0] = fixed
        self._unit[self.level.light] = (p90 - fixed) / self.level.scale ** 2
        budget = self.budget_ms
        levels = self.levels()
        here = levels.index(self.level) if self.level in levels else 0
        predicted = self._cost
        if self._fresh:  # a new look entered from below: up to where a run from the top (the bench's) settles
            self._fresh = False
            fits = next((lv for lv in levels if predicted(lv) <= 0.95 * budget), levels[-1])
            if fits in levels[:here]:
                return fits
        if p90 > budget:  # the best level predicted to fit (a better one, too, when it costs less)
            self._over_since = now if self._over_since is None else self._over_since
            late = float(np.median(self._times)) > budget  # most frames late: no need to wait
            if not late and (self.cautious or now - self._over_since < self.settings.confirm_s):
                return None
            target = next((lv for lv in levels if lv != self.level and predicted(lv) <= 0.95 * budget), levels[-1])
        else:
            self._over_since = None
            if now - self._moved_at < self._hold:
                return None
            # a better level with headroom to spare, or one that costs no more than this one (the
            # full size without the upscale can cost what a smaller scale with it does)
            better = [lv for lv in levels[:here] if predicted(lv) <= self.settings.up_margin * budget
                      or predicted(lv) <= min(p90, 0.95 * budget)]
            target = better[0] if better else self.level
        if target == self.level:
            return None
        return target

    def moved(self, level: Level, now: Optional[float] = None) -> None:
        """The pipeline now renders at ``level``: measure afresh."""
        now = time.monotonic() if now is None else now
        levels = self.levels()
        up = level in levels and self.level in levels and levels.index(level) < levels.index(self.level)
        if up:
            if self._last_up is not None and now - self._last_up > 2 * self._hold:
                self._hold = self.settings.hold_s  # the last step up held: back to the short wait
            self._last_up = now
        elif self._last_up is not None and now - self._last_up < self._hold:
            self._hold = min(2 * self._hold, self.settings.max_hold_s)  # a step up taken back: wait longer
        self._moved_at = now
        self._over_since = None
        self.level = level
        self._times.clear()
        self._network_times.clear()
        self._skip = SETTLE_FRAMES
        self.changes += 1

    def restart(self) -> None:
        """A new look (style, blend, catalog): measure afresh and find its level at once. The hold is
        against flip-flopping under one load, not against what a user's switch asks for; what each
        network costs per pixel is kept."""
        self._times.clear()
        self._network_times.clear()
        self._skip = SETTLE_FRAMES
        self._moved_at = float("-inf")
        self._over_since = None
        self._hold = self.settings.hold_s
        self._fresh = True

    def describe(self) -> str:
        light = f" on the {self.light_name} network" if self.level.light else ""
        return f"render {self.scale:.2f}×{light} to hold {self.fps_goal:g} FPS"
