"""The keyframe renderer: the network at full size on its own thread, always on the newest frame.

The display loop (the pipeline) hands every source frame to ``offer`` and never waits for the
network: it shows the newest keyframe carried to the current frame by engine/frame/carry.py, and steady
video runs there, on what is shown (a keyframe's arrival is one more frame to blend; at the keyframe
rate it smoothed little: docs/keyframes.md). This thread takes the newest offered frame, renders it
with the look it was offered with, prepares what carrying it needs, and publishes it.

A job carries everything it needs (the backend, the weights, the look's tag), taken on the display
loop's thread, so a change of style reaches the very next render. A backend the display loop replaced
is ``retire``d: this thread closes it once no render uses it, so a swap never makes a frame wait.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..cpu_tuning import yield_to_display
from ..frame.carry import Carrier, Keyframe
from ..metrics import RateMeter
from ..slot import LatestSlot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One frame to render as a keyframe, with the look it was offered with."""

    index: int  # the source frame's index
    image: np.ndarray
    grabbed_at: float  # when the source frame was grabbed (perf_counter)
    tag: int  # the look's number: a keyframe of an older look is never shown as the new one
    backend: object  # what renders it (a backend retired meanwhile drops the job)
    render: Callable[[object, np.ndarray], tuple[np.ndarray, dict]]  # (backend, image) → (output, what ran)


@dataclass(frozen=True)
class Rendered:
    """A published keyframe."""

    key: Keyframe
    grabbed_at: float
    info: dict  # what ran: networks, backend, render_scale


class KeyframeRenderer:
    def __init__(self, carrier: Carrier):
        self.carrier = carrier
        self._jobs: LatestSlot[Job] = LatestSlot()
        self.latest: LatestSlot[Rendered] = LatestSlot()
        self._busy = threading.Lock()  # held while a job renders
        self._publishing = threading.Lock()  # a render's publishing against ``forget``
        self._floor = 0  # the oldest look whose keyframes are still wanted (``forget``)
        self._retire_lock = threading.Lock()
        self._retired: list = []  # replaced backends, closed when no render uses them
        self._gone: deque = deque(maxlen=8)  # the backends closed so (a late job for one is dropped)
        self._stop = threading.Event()
        self._taken = 0
        self.rate = RateMeter(30)  # keyframes per second
        self.times: deque[float] = deque(maxlen=24)  # render ms of the last keyframes
        self.error: Optional[BaseException] = None  # the last render's failure (the display loop reports it)
        self._thread = threading.Thread(target=self._loop, name="keyframes", daemon=True)
        self._thread.start()

    def offer(self, job: Job) -> None:
        """The newest frame to render next (an older one not started yet is dropped)."""
        self._jobs.publish(job)

    def newest(self) -> Optional[Rendered]:
        return self.latest.latest()[1]

    def wait(self, tag: int, timeout: float) -> Optional[Rendered]:
        """The first keyframe of look ``tag`` (at start, when nothing can be shown yet)."""
        deadline = time.monotonic() + timeout
        seq, value = self.latest.latest()
        while (value is None or value.key.tag != tag) and self.error is None:
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return None
            seq, newer = self.latest.wait_newer(seq, min(left, 0.1))
            value = newer or value
        return value

    def retire(self, backend) -> None:
        """Close ``backend`` once no render uses it (at once when none runs); jobs for it are dropped."""
        with self._retire_lock:
            self._retired.append(backend)
        if self._busy.acquire(blocking=False):
            try:
                self._close_retired()
            finally:
                self._busy.release()

    def _close_retired(self) -> None:
        """(``_busy`` held) close every retired backend."""
        with self._retire_lock:
            retired, self._retired = self._retired, []
        for backend in retired:
            self._gone.append(backend)
            backend.close()

    def forget(self, tag: int) -> None:
        """Start over from look ``tag`` (a new source): the old keyframes mean nothing to its frames. Never
        waits: a render in flight for an older look is dropped when it ends."""
        with self._publishing:
            self._floor = tag
            self._taken = max(self._taken, self._jobs.latest()[0])  # the frames offered so far are not rendered
            self.latest = LatestSlot()

    def _loop(self) -> None:
        yield_to_display()
        while not self._stop.is_set():
            seq, job = self._jobs.wait_newer(self._taken, 0.2)
            if job is None:
                continue
            with self._busy:
                self._close_retired()
                if seq <= self._taken or job.tag < self._floor or any(job.backend is b for b in self._gone):
                    continue  # dropped meanwhile
                self._taken = seq
                try:
                    self._render(job)
                    self.error = None
                except Exception as exc:  # noqa: BLE001 - the display loop reports it and goes on
                    log.exception("a keyframe failed")
                    self.error = exc
                    self._stop.wait(0.2)
                self._close_retired()

    def _render(self, job: Job) -> None:
        t0 = time.perf_counter()
        out, info = job.render(job.backend, job.image)
        key = self.carrier.keyframe(job.index, job.image, out, job.tag)
        ms = 1000.0 * (time.perf_counter() - t0)
        self.times.append(ms)
        self.rate.tick()
        with self._publishing:
            if job.tag >= self._floor:
                self.latest.publish(Rendered(key, job.grabbed_at, info))

    def render_p90_ms(self) -> Optional[float]:
        """The 90th percentile of the last keyframes' render times (None before a few)."""
        times = list(self.times)
        return float(np.percentile(times, 90)) if len(times) >= 6 else None

    def close(self) -> None:
        """Stop after the render in flight (the backend it uses is closed after this returns)."""
        self._stop.set()
        self._jobs.close()
        self.latest.close()
        self._thread.join(timeout=30.0)
        with self._busy:
            self._close_retired()
