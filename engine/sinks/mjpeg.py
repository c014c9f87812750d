"""The MJPEG hub: the pipeline's frames become shared JPEGs for any number of network clients.

The pipeline only drops the newest frame into a slot (no copy, no wait). An encoder thread turns
the newest frame into a JPEG once — only while someone is watching; with nobody watching it sleeps
until someone does, whatever the frames do — and publishes it into a second slot. Each client waits for a newer JPEG than the one it last sent, so a slow client skips frames
instead of queueing them: memory stays flat and nobody slows anybody else.
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

import cv2
import numpy as np

from ..slot import LatestSlot
from .base import Sink

log = logging.getLogger(__name__)


class MjpegHub(Sink):
    name = "mjpeg"

    def __init__(self, quality: int = 85):
        self.quality = quality
        self._raw: LatestSlot[tuple[np.ndarray, float]] = LatestSlot()  # (frame, when grabbed)
        self._jpeg: LatestSlot[tuple[int, bytes]] = LatestSlot()  # (raw seq it came from, JPEG)
        self._watchers = 0
        self._count_lock = threading.Lock()
        self._watched = threading.Event()  # set while at least one client watches
        self.encoded = 0
        self.wakeups = 0  # times the encoder woke up (a busy loop shows here)
        self._thread = threading.Thread(target=self._encode_loop, name="mjpeg-encoder", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    # -- pipeline side -------------------------------------------------------------------------
    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        self._raw.publish((frame, grabbed_at))

    # -- encoder thread ------------------------------------------------------------------------
    def _encode(self, frame: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return buf.tobytes()

    def _encode_loop(self) -> None:
        done = 0
        while not self.closed:
            if not self._watched.wait(timeout=0.5):
                continue  # nobody watching: sleep, whatever the frames do
            seq, raw = self._raw.wait_newer(done, timeout=0.5)
            self.wakeups += 1
            if raw is None:
                continue
            done = seq
            if self._watchers == 0:
                continue  # the last watcher left while it waited
            self._jpeg.publish((seq, self._encode(raw[0])))
            self.delivered(raw[1])  # handed to the clients
            self.encoded += 1

    # -- client side ---------------------------------------------------------------------------
    def watch(self) -> "Watcher":
        return Watcher(self)

    def latest_jpeg(self, timeout: float = 5.0) -> Optional[bytes]:
        """The newest frame as JPEG (encoded on demand when no stream is running)."""
        raw_seq, raw = self._raw.latest()
        _, jpeg = self._jpeg.latest()
        if jpeg is not None and jpeg[0] == raw_seq:
            return jpeg[1]
        if raw is None:
            _, raw = self._raw.wait_newer(0, timeout)
        return None if raw is None else self._encode(raw[0])

    def wants_frames(self) -> bool:
        return self._watchers > 0

    def close(self) -> None:
        self._raw.close()
        self._jpeg.close()
        self._watched.set()  # wake the encoder so it sees the close
        self._thread.join(timeout=2.0)


class Watcher:
    """One client's view of the hub: ``next()`` blocks until a JPEG newer than the last one."""

    def __init__(self, hub: MjpegHub):
        self.hub = hub
        self.seq = 0

    def __enter__(self) -> "Watcher":
        with self.hub._count_lock:
            self.hub._watchers += 1
            self.hub._watched.set()
        return self

    def __exit__(self, *exc) -> None:
        with self.hub._count_lock:
            self.hub._watchers -= 1
            if self.hub._watchers == 0:
                self.hub._watched.clear()

    def next(self, timeout: float = 5.0) -> Optional[bytes]:
        self.seq, item = self.hub._jpeg.wait_newer(self.seq, timeout)
        return None if item is None else item[1]
