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

AFFORD_SHARE = 0.5  # carry + steadying may take this share of a source frame's interval (the rest: output, capture)
AFFORD_FRAMES = 30  # frames timed before deciding


class SteadyCarried:
    """Not thread-safe: the display loop owns it (and the pipeline's stabilizer it shares)."""

    def __init__(self, stabilizer: Stabilizer):
        self.stabilizer = stabilizer
        self.affordable = True  # until a source's frames show otherwise
        self._last: Optional[tuple] = None  # the keyframe last blended: (look, index, its frame's trust)
        self._times: deque[float] = deque(maxlen=AFFORD_FRAMES)  # carry + steadying, ms
        self._shape: Optional[tuple] = None  # the frames timed

    def restart(self) -> None:
        """A new source or frame size: forget the frames and time it again."""
        self.affordable = True
        self._times.clear()
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
        if len(self._times) == AFFORD_FRAMES and np.percentile(self._times, 90) > AFFORD_SHARE * interval_ms:
            log.info("steady video off for carried frames: carrying and steadying took %.0f ms of a %.0f ms frame",
                     np.percentile(self._times, 90), interval_ms)
            self.affordable = False
            self._reset()
        return out, ms
