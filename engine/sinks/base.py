"""Sinks receive every stylized frame (RGB uint8) at the end of the pipeline."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Sink(ABC):
    name = "sink"

    @abstractmethod
    def write(self, frame: np.ndarray) -> None:
        """Take one RGB frame; must not block the pipeline for long."""

    def wants_frames(self) -> bool:
        """Someone reads what it is given now (a stream with no client does not): an app whose window is
        hidden stylizes nothing while no sink wants frames."""
        return True

    def close(self) -> None:
        pass


class NullSink(Sink):
    """Discards frames (benchmarks)."""

    name = "null"

    def write(self, frame: np.ndarray) -> None:
        pass
