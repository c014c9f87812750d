"""A video file played as a camera delivers it: in real time, at the file's own rate, on its own thread.

A camera does not wait for its reader: frames arrive on time and a busy reader gets the newest one,
the others are gone. ``stylecam stylize SRC OUT --live`` plays a file this way through the real live
session, so what it writes is what a viewer would have seen (engine/sinks/screen_record.py). Each
arrival is announced (``on_arrival``) before the frame is handed over, so a recorder knows what was
on screen when every source frame arrived, taken or not.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import cv2

from ..errors import SourceError, SourceLost
from ..frame.frames import fit_cover
from ..slot import LatestSlot
from .capture import Frame, Source, SourceSettings

log = logging.getLogger(__name__)


class ReplaySource(Source):
    """Frames of ``path`` published at its frame rate; ``read`` gives the newest not yet taken, with
    its index in the file (1, 2, …) and the moment it arrived."""

    name = "replay"
    live = True

    def __init__(self, settings: SourceSettings, path: Path, on_arrival: Callable[[int, float], None] = lambda i, t: None):
        super().__init__(settings)
        self.path = Path(path)
        self.cap = cv2.VideoCapture(str(self.path))
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok:
            self.cap.release()
            raise SourceError(f"cannot read video {self.path}: no decodable frames")
        native = self.cap.get(cv2.CAP_PROP_FPS)
        self._fps = native if 1 <= native <= 240 else settings.fps
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_size = settings.size or (first.shape[1], first.shape[0])
        self.on_arrival = on_arrival
        self.arrived = 0  # frames delivered by the "camera"
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._taken = 0
        self._ended = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, args=(first,), name="replay", daemon=True)
        self._thread.start()

    @property
    def fps(self) -> float:
        return self._fps

    def _play(self, bgr) -> None:
        due = time.perf_counter()
        while bgr is not None and not self._stop.is_set():
            rgb = fit_cover(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.settings.size)
            wait = due - time.perf_counter()
            if wait > 0 and self._stop.wait(wait):
                break
            arrived = max(due, time.perf_counter())
            self.arrived += 1
            self.on_arrival(self.arrived, arrived)
            self._slot.publish(Frame(rgb, self.arrived, arrived))
            due += 1.0 / self._fps
            ok, bgr = self.cap.read()
            if not ok:
                bgr = None
        self._ended.set()

    def read(self, timeout: float = 2.0) -> Optional[Frame]:
        """The newest frame not handed out yet; None once the file has ended and its last frame was taken."""
        deadline = time.perf_counter() + timeout
        while True:
            seq, frame = self._slot.wait_newer(self._taken, 0.05)
            if frame is not None:
                self._taken = seq
                return frame
            if self._ended.is_set() and self._slot.latest()[0] == self._taken:
                return None
            if time.perf_counter() > deadline:
                raise SourceLost(f"{self.path.name} delivered no frame for {timeout:.1f} s")

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def close(self) -> None:
        self._stop.set()
        self._slot.close()
        self._thread.join(timeout=2.0)
        self.cap.release()
