"""The MJPEG hub: the pipeline's frames become shared JPEGs for any number of network clients.

The pipeline only drops the newest frame into a slot (no copy, no wait). An encoder thread turns
the newest frame into a JPEG once — only while someone is watching — and publishes it with a
sequence number. Each client waits for a newer number than the one it last sent, so a slow client
skips frames instead of queueing them: memory stays flat and nobody slows anybody else.
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

import cv2
import numpy as np

from .base import Sink

log = logging.getLogger(__name__)


class MjpegHub(Sink):
    name = "mjpeg"

    def __init__(self, quality: int = 85):
        self.quality = quality
        self._cond = threading.Condition()
        self._raw: Optional[np.ndarray] = None
        self._raw_seq = 0
        self._jpeg: Optional[bytes] = None
        self._jpeg_seq = 0
        self._watchers = 0
        self._stop = threading.Event()
        self.encoded = 0
        self._thread = threading.Thread(target=self._encode_loop, name="mjpeg-encoder", daemon=True)
        self._thread.start()

    # -- pipeline side -------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        with self._cond:
            self._raw, self._raw_seq = frame, self._raw_seq + 1
            self._cond.notify_all()

    # -- encoder thread ------------------------------------------------------------------------
    def _encode(self, frame: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return buf.tobytes()

    def _encode_loop(self) -> None:
        done = 0
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set() and (self._raw_seq == done or self._watchers == 0):
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                frame, seq = self._raw, self._raw_seq
            jpeg = self._encode(frame)
            with self._cond:
                self._jpeg, self._jpeg_seq = jpeg, seq
                self.encoded += 1
                self._cond.notify_all()
            done = seq

    # -- client side ---------------------------------------------------------------------------
    def watch(self) -> "Watcher":
        return Watcher(self)

    def latest_jpeg(self, timeout: float = 5.0) -> Optional[bytes]:
        """The newest frame as JPEG (encoded on demand when no stream is running)."""
        with self._cond:
            if self._jpeg is not None and self._jpeg_seq == self._raw_seq:
                return self._jpeg
            if self._raw is None:
                self._cond.wait_for(lambda: self._raw is not None or self._stop.is_set(), timeout)
            frame = self._raw
        return None if frame is None else self._encode(frame)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=2.0)


class Watcher:
    """One client's view of the hub: ``next()`` blocks until a JPEG newer than the last one."""

    def __init__(self, hub: MjpegHub):
        self.hub = hub
        self.seq = 0

    def __enter__(self) -> "Watcher":
        with self.hub._cond:
            self.hub._watchers += 1
            self.hub._cond.notify_all()
        return self

    def __exit__(self, *exc) -> None:
        with self.hub._cond:
            self.hub._watchers -= 1

    def next(self, timeout: float = 5.0) -> Optional[bytes]:
        hub = self.hub
        with hub._cond:
            if not hub._cond.wait_for(lambda: hub._jpeg_seq > self.seq or hub._stop.is_set(), timeout):
                return None
            if hub._stop.is_set():
                return None
            self.seq = hub._jpeg_seq
            return hub._jpeg
