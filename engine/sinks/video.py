"""File outputs: a video that survives a crash, and a numbered image sequence."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import SinkError
from .base import Sink
from .. import defaults


# What each container holds, chosen so a file cut short by a crash or a kill still plays: MP4 and MOV
# are written fragmented (an empty index first, then one self-contained fragment per keyframe: OBS's
# default for the same reason), Matroska and WebM close a cluster every second (without that the WebM
# muxer kept every cluster in memory: 0 bytes on disk after a kill), AVI is read without its closing
# index by FFmpeg-based players. Every packet is handed to the OS as it is made (flush_packets).
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
_CLUSTERED = {"cluster_time_limit": "1000", "flush_packets": "1"}
_H264 = ("libx264", {"preset": "superfast"})  # 4 ms of CPU a 640x480 frame on a Zen 3 core; veryfast: 5
CONTAINERS = {  # extension → (format, (codec, codec options), muxer options)
    ".mp4": ("mp4", _H264, _FRAGMENTED),
    ".m4v": ("mp4", _H264, _FRAGMENTED),
    ".mov": ("mov", _H264, _FRAGMENTED),
    ".mkv": ("matroska", _H264, _CLUSTERED),
    ".webm": ("webm", ("libvpx", {"deadline": "realtime", "cpu-used": "8"}), _CLUSTERED),
    ".avi": ("avi", ("mpeg4", {}), {"flush_packets": "1"}),
}
KEYFRAME_S = 1.0  # a fragment per keyframe: a kill loses at most about this much of the end


class VideoFileSink(Sink):
    """A video file via PyAV (FFmpeg): H.264 in fragmented MP4 for ``.mp4`` (CONTAINERS for the rest),
    opened at the first frame's size, one keyframe a second. A recording cut short by a crash, a
    ``kill -9`` or a power cut still plays up to its last second; ``close()`` only finishes the last
    fragment. H.264 needs even sides: an odd width or height gets one repeated edge column or row."""

    name = "video"

    def __init__(self, path: "str | Path", fps: float = defaults.FPS):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else defaults.FPS
        self._container = None
        self._stream = None
        self._size = None  # (width, height) of the frames given; the stream's is rounded up to even
        self.frames = 0
        if not self.path.parent.is_dir():
            raise SinkError(f"output folder does not exist: {self.path.parent}")
        if self.path.suffix.lower() not in CONTAINERS:
            raise SinkError(f"cannot write video {self.path}: use one of {', '.join(sorted(CONTAINERS))}")

    def _open(self, width: int, height: int) -> None:
        from fractions import Fraction

        try:
            import av
        except ImportError:
            raise SinkError("recording needs PyAV (pip install av)") from None
        fmt, (codec, codec_options), muxer_options = CONTAINERS[self.path.suffix.lower()]
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            container = av.open(str(self.path), "w", format=fmt, options=muxer_options)
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot write video {self.path}: {exc}") from None
        try:
            stream = container.add_stream(codec, rate=rate, options=codec_options)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = 1 / rate
            stream.codec_context.gop_size = max(1, round(self.fps * KEYFRAME_S))
        except Exception:
            container.close()
            raise
        self._container, self._stream, self._size = container, stream, (width, height)

    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        import av

        h, w = frame.shape[:2]
        if self._container is None:
            self._open(w, h)
        elif (w, h) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        if w % 2 or h % 2:
            frame = cv2.copyMakeBorder(frame, 0, self._stream.height - self._size[1], 0,
                                       self._stream.width - self._size[0], cv2.BORDER_REPLICATE)
        picture = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        picture.pts = self.frames
        try:
            self._container.mux(self._stream.encode(picture))
        except (OSError, av.FFmpegError) as exc:  # a full disk, a removed drive
            raise SinkError(f"cannot write video {self.path}: {exc}") from None
        self.frames += 1
        self.delivered(grabbed_at)

    def close(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            container.mux(self._stream.encode(None))  # the frames the encoder still holds
        finally:
            container.close()


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
