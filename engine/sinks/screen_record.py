"""What a viewer saw, frame by frame: for every source frame, the frame on screen when the next one arrived.

``stylecam stylize SRC OUT --live`` plays a file as a camera (engine/video/replay.py) through the live
session; this recorder hears each arrival and each frame the session shows, and keeps, per source
frame, the one on screen then, with a JSON line saying what it was (source index, keyframe, network,
scale, latency). The frames are spilled raw to a temporary file while the session runs (a copy, not an
encode: the live run keeps its cores) and written as numbered PNGs or a video afterwards.
"""
from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import SinkError

log = logging.getLogger(__name__)


class ScreenRecord:
    def __init__(self, shape: tuple[int, int, int], jsonl: Path):
        self.shape = shape
        self._screen = None  # the FrameResult on screen now
        self._spill = tempfile.TemporaryFile(prefix="stylecam-live-")
        self._lines = []
        self._queue: queue.Queue = queue.Queue()
        self.jsonl = jsonl
        self.count = 0
        self._thread = threading.Thread(target=self._drain, name="screen-record", daemon=True)
        self._thread.start()

    def shown(self, result) -> None:
        """The session put ``result`` on screen (its on_frame, on the session's thread)."""
        self._screen = result

    def arrived(self, index: int, at: float) -> None:
        """Source frame ``index`` arrived (on the source's thread): frame ``index - 1`` is what is on screen."""
        if index > 1:
            self._queue.put((index - 1, self._screen, at))

    def finish(self, last: int, at: float) -> None:
        """The source ended after frame ``last``: it gets what is on screen now."""
        self._queue.put((last, self._screen, at))
        self._queue.put(None)
        self._thread.join()

    def _drain(self) -> None:
        blank = np.zeros(self.shape, np.uint8)
        while (item := self._queue.get()) is not None:
            index, result, at = item
            frame = blank if result is None else result.stylized
            if frame.shape != self.shape:
                raise SinkError(f"live frame {index}: size {frame.shape} is not the source's {self.shape}")
            self._spill.write(np.ascontiguousarray(frame).tobytes())
            self.count += 1
            self._lines.append(_line(index, result, at))

    def write(self, sink_for: Callable[[], object], progress: Optional[Callable[[int], None]] = None) -> int:
        """Write the recorded frames to a sink (numbered PNGs, a video) and the JSON lines; returns the count."""
        self.jsonl.write_text("".join(json.dumps(line) + "\n" for line in self._lines))
        sink = sink_for()
        size = int(np.prod(self.shape))
        self._spill.seek(0)
        try:
            for _ in range(self.count):
                sink.write(np.frombuffer(self._spill.read(size), np.uint8).reshape(self.shape))
                if progress is not None:
                    progress(1)
        finally:
            sink.close()
            self._spill.close()
        return self.count


def _line(index: int, result, at: float) -> dict:
    """One source frame: what was on screen when the next one arrived (``shown``: its source frame)."""
    if result is None:
        return {"source": index, "shown": None}
    return {"source": index, "shown": result.index, "mode": result.mode, "keyframe": result.keyframe,
            "keyframe_age_ms": round(result.keyframe_age_ms, 1), "network": "+".join(result.networks),
            "backend": result.backend, "scale": result.render_scale,
            "carried": round(result.trusted, 3),  # share taken from the keyframe (the rest filled from the frame)
            "latency_ms": round(result.latency_ms, 1),  # the shown frame: grab → hand-over to the sinks
            "on_screen_ms": round(1000.0 * (at - result.grabbed_at), 1)}  # its grab → this frame's arrival
