"""The latest-value slot: producers overwrite one value and bump a sequence number; nobody queues.

A consumer that was busy simply gets the newest value next time (DeepFaceLive's camera source).
Used by the camera reader, the MJPEG hub, the virtual camera sender and the live session."""
from __future__ import annotations

import threading
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: Optional[T] = None
        self._seq = 0
        self._closed = False

    def publish(self, value: T) -> int:
        """Replace the value; returns its sequence number (1, 2, …)."""
        with self._cond:
            self._value, self._seq = value, self._seq + 1
            self._cond.notify_all()
            return self._seq

    def latest(self) -> tuple[int, Optional[T]]:
        """(sequence number, value) now, without waiting; (0, None) before the first publish."""
        with self._cond:
            return self._seq, self._value

    def wait_newer(self, seq: int, timeout: Optional[float] = None) -> tuple[int, Optional[T]]:
        """The first value newer than ``seq``; (seq, None) on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seq or self._closed, timeout)
            if self._seq > seq:
                return self._seq, self._value
            return seq, None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every waiter; later waits return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
