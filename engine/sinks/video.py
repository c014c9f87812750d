"""File outputs: an MP4 video and a numbered image sequence."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import SinkError
from .base import Sink
from .. import defaults


class VideoFileSink(Sink):
    """MP4 via OpenCV (mp4v; the headless build has no H.264), opened at the first frame's size."""

    name = "video"

    def __init__(self, path: "str | Path", fps: float = defaults.FPS):
        self.path = Path(path)
        self.fps = fps
        self._writer = None
        self._size = None
        self.frames = 0
        if not self.path.parent.is_dir():
            raise SinkError(f"output folder does not exist: {self.path.parent}")

    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                raise SinkError(f"cannot write video {self.path} (use a .mp4 name in a writable folder)")
            self._size = size
        elif size != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1
        self.delivered(grabbed_at)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class ImageSequenceSink(Sink):
    """``DIR/frame_000001.png`` … (lossless, for editing or tests)."""

    name = "images"

    def __init__(self, folder: "str | Path", pattern: str = "frame_{:06d}.png"):
        self.folder = Path(folder)
        self.pattern = pattern
        self.frames = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create {self.folder}: {exc.strerror}") from None

    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        self.frames += 1
        path = self.folder / self.pattern.format(self.frames)
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise SinkError(f"cannot write {path}")
        self.delivered(grabbed_at)


def write_image(path: "str | Path", frame: np.ndarray) -> None:
    """Save one RGB frame; the format follows the extension."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SinkError(f"output folder does not exist: {path.parent}")
    ok, buf = False, None
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise SinkError(f"cannot write image {path}: unsupported extension {path.suffix!r} (use .png or .jpg)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    buf.tofile(str(tmp))
    os.replace(tmp, path)
