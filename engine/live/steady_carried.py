"""Steady video on the frames the keyframe mode shows.

A carried keyframe drifts from the true motion as it ages, and the next one snaps back: blending the
frame shown before, moved by the one-frame flow, hides the snap and the flow's jitter (on the keyframes
themselves, at their rate, it did little: docs/keyframes.md). It starts over with a new look's first
keyframe and with the first keyframe after a cut, so neither leaves a ghost; and it stands down where the
display loop cannot afford it (1280×720 on two cores), since a frame shown late is worse than a flicker.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Optional

import numpy as np

from ..frame.carry import CUT_TRUST, Keyframe
from ..frame.stabilize import Stabilizer

log = logging.getLogger(__name__)

AFFORD_SHARE = 0.9  # carry + steadying (the median of their sum) may take this share of a source frame's interval
RETRY_FRAMES = 60  # stood down, it tries again after this many frames, twice as many after each failed try
AFFORD_FRAMES = 15  # frames timed before deciding


class SteadyCarried:
    """Not thread-safe: the display loop owns it (and the pipeline's stabilizer it shares)."""

    def __init__(self, stabilizer: Stabilizer):
        self.stabilizer = stabilizer
        self.affordable = True
        self._last: Optional[tuple] = None  # the keyframe last blended: (look, index, its frame's trust)
        self._times: deque[float] = deque(maxlen=AFFORD_FRAMES)  # carry + steadying, ms, the frames steadied
        self._retry = RETRY_FRAMES  # frames to wait after the next stand-down
        self._wait = 0  # frames left before the next try
        self._shape: Optional[tuple] = None  # the frames timed

    def restart(self) -> None:
        """A new source or frame size: forget the frames and the times."""
        self.affordable = True
        self._times.clear()
        self._retry, self._wait = RETRY_FRAMES, 0
        self._reset()

    def _reset(self) -> None:
        self.stabilizer.reset()
        self._last = None

    def __call__(self, image: np.ndarray, out: np.ndarray, key: Keyframe, trusted: float, steady: bool,
                 carry_ms: float, interval_ms: float) -> tuple[np.ndarray, float]:
        """The frame to show, and the ms steadying took. ``trusted``: the carry's share of this frame."""
        if image.shape != self._shape:
            self.restart()
            self._shape = image.shape
        if not self.affordable:
            self._wait -= 1
            self.affordable = self._wait <= 0  # try again: timed afresh
        if not (steady and self.affordable):
            self._reset()
            return out, 0.0
        last = self._last
        if last is not None and key.index != last[1] and (key.tag != last[0] or last[2] < CUT_TRUST):
            self.stabilizer.reset()
        self._last = (key.tag, key.index, trusted)
        t0 = time.perf_counter()
        out = self.stabilizer(image, out)
        ms = 1000.0 * (time.perf_counter() - t0)
        self._times.append(carry_ms + ms)
        self._decide(interval_ms)
        return out, ms

    def _decide(self, interval_ms: float) -> None:
        """After ``AFFORD_FRAMES`` frames steadied: stand down if carry + steadying (their median: the loop
        keeps up on the typical frame, a slow one skips a frame) take more than ``AFFORD_SHARE`` of the
        frame's interval (a slow start, a big frame, a busy machine), and try again later; else a later
        stand-down waits the shortest time again."""
        if len(self._times) < AFFORD_FRAMES:
            return
        need = float(np.median(self._times))
        self._times.clear()
        if need <= AFFORD_SHARE * interval_ms:
            self._retry = RETRY_FRAMES
            return
        self.affordable, self._wait = False, self._retry
        log.info("steady video off for carried frames for %d frames: carrying and steadying take %.0f ms of a "
                 "%.0f ms frame", self._wait, need, interval_ms)
        self._retry = min(2 * self._retry, 64 * RETRY_FRAMES)
