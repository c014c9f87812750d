"""Sinks receive every stylized frame (RGB uint8) at the end of the pipeline."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

import numpy as np

from ..metrics import LatencyMeter


class Sink(ABC):
    name = "sink"
    latency: Optional[LatencyMeter] = None  # grab → delivery of each frame; the pipeline gives each sink one

    @abstractmethod
    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        """Take one RGB frame, grabbed from the source at ``grabbed_at`` (perf_counter; 0: unknown); must
        not block the pipeline for long. The frame's delivery (written, sent, encoded for the clients)
        goes to ``delivered``."""

    def delivered(self, grabbed_at: float) -> None:
        """The frame grabbed at ``grabbed_at`` has left this sink (its latency, grab → delivery)."""
        if self.latency is not None:
            self.latency.since(grabbed_at)

    def wants_frames(self) -> bool:
        """Someone reads what it is given now (a stream with no client does not): an app whose window is
        hidden stylizes nothing while no sink wants frames."""
        return True

    def close(self) -> None:
        pass


class NullSink(Sink):
    """Discards frames (benchmarks)."""

    name = "null"

    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        self.delivered(grabbed_at)
