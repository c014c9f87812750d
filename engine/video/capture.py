"""Frame sources: camera, video file, still image, synthetic pattern and the bundled demo clip.

Every source hands out RGB uint8 frames via ``read()``. Live cameras are read by a thread that keeps
only the newest frame (capture buffer of 1), so a slow consumer always gets the latest picture and
never a backlog. A camera that stops delivering is reopened in the background; ``read`` raises
``SourceLost`` meanwhile, and resumes by itself when the camera comes back.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from ..errors import InputError, SourceError, SourceLost
from .. import defaults
from ..metrics import RateMeter
from ..frame.frames import fit_cover
from ..slot import LatestSlot

log = logging.getLogger(__name__)

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class SourceSettings:
    spec: str = "demo"  # camera | camera:N | /dev/videoN | synthetic | demo | footage[:SCENE[:FPS]] | a file
    size: Optional[tuple[int, int]] = None  # requested (width, height); None = native
    fps: float = defaults.FPS  # for cameras, stills and the synthetic pattern
    loop: bool = True  # video files
    paced: bool = True  # deliver files at their own fps (False = as fast as possible)


@dataclass
class Frame:
    image: np.ndarray  # RGB uint8 H×W×3
    index: int
    timestamp: float  # when it was grabbed (perf_counter): a camera's delivery, a paced file's due time


class Source(ABC):
    """Iterate with ``read()``; None means the source has ended (a non-looping file)."""

    name = "source"
    live = False
    frame_size: Optional[tuple[int, int]] = None  # (width, height) where known before the first frame
    frame_count: int = 0  # a file's frames (0: unknown or endless)

    def __init__(self, settings: SourceSettings):
        self.settings = settings
        self._index = 0

    @property
    def fps(self) -> float:
        return self.settings.fps

    @property
    def paced(self) -> bool:
        """Frames come in real time (a camera, a paced file); False: as fast as they are read (bench)."""
        return self.settings.paced

    @abstractmethod
    def read(self, timeout: float = 2.0) -> Optional[Frame]:
        """The next frame; None at the end; SourceLost while a live device is away."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PacedSource(Source):
    """A source that makes frames on demand, paced at ``fps`` unless ``settings.paced`` is off."""

    def __init__(self, settings: SourceSettings):
        super().__init__(settings)
        self._next_due = 0.0

    @abstractmethod
    def _grab(self) -> Optional[np.ndarray]:
        """Next RGB frame (already sized) or None at the end."""

    def read(self, timeout: float = 2.0) -> Optional[Frame]:
        grabbed = now = time.perf_counter()
        if self.settings.paced and self.fps > 0:
            if self._next_due > now:
                time.sleep(self._next_due - now)
            grabbed = max(now, self._next_due)  # when a camera would have delivered it
            self._next_due = grabbed + 1.0 / self.fps
        image = self._grab()
        if image is None:
            return None
        self._index += 1
        return Frame(image, self._index, grabbed)


class StillSource(PacedSource):
    """One picture, repeated at ``fps`` (a live-like source from a photo)."""

    name = "image"

    def __init__(self, settings: SourceSettings, image: np.ndarray):
        super().__init__(settings)
        self.image = fit_cover(image, settings.size)

    def _grab(self) -> np.ndarray:
        return self.image


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 image from a file; one clear error if it is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"file not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise SourceError(f"cannot read image {path}: not a supported picture (png, jpg, bmp, webp, tiff)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class SyntheticSource(PacedSource):
    """A moving test pattern: colour gradients, a bouncing disc and stripes that drift."""

    name = "synthetic"

    def __init__(self, settings: SourceSettings):
        super().__init__(settings)
        w, h = settings.size or defaults.FRAME_SIZE
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._xx, self._yy, self._w, self._h = xx, yy, w, h
        base = np.empty((h, w, 3), np.float32)
        base[..., 0] = 255 * xx / max(w - 1, 1)
        base[..., 1] = 255 * yy / max(h - 1, 1)
        base[..., 2] = 128
        self._base = base

    def _grab(self) -> np.ndarray:
        t = self._index / 30.0
        img = self._base.copy()
        img[..., 2] = 128 + 100 * np.sin(self._xx / 23.0 + 3 * t) * np.cos(self._yy / 31.0 - 2 * t)
        img = np.clip(img, 0, 255).astype(np.uint8)
        cx = int((0.5 + 0.35 * math.sin(1.3 * t)) * self._w)
        cy = int((0.5 + 0.3 * math.cos(0.9 * t)) * self._h)
        cv2.circle(img, (cx, cy), max(self._h // 6, 4), (250, 240, 40), -1, cv2.LINE_AA)
        cv2.putText(img, f"{self._index:05d}", (10, self._h - 12), cv2.FONT_HERSHEY_SIMPLEX,
                    max(self._h / 480, 0.3), (255, 255, 255), 2, cv2.LINE_AA)
        return img


class VideoFileSource(PacedSource):
    """A video file, looping or not, paced at its own frame rate or as fast as possible."""

    name = "video"

    def __init__(self, settings: SourceSettings, path: Path):
        super().__init__(settings)
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"file not found: {self.path}")
        self.cap = cv2.VideoCapture(str(self.path))
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok:
            self.cap.release()
            raise SourceError(f"cannot read video {self.path}: no decodable frames")
        self._pending: Optional[np.ndarray] = first
        native = self.cap.get(cv2.CAP_PROP_FPS)
        self._fps = native if 1 <= native <= 240 else settings.fps
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_size = settings.size or (first.shape[1], first.shape[0])  # (w, h) of the frames it gives

    @property
    def fps(self) -> float:
        return self._fps

    def _grab(self) -> Optional[np.ndarray]:
        if self._pending is not None:
            bgr, self._pending = self._pending, None
        else:
            ok, bgr = self.cap.read()
            if not ok and self.settings.loop:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self.cap.read()
            if not ok:
                return None
        return fit_cover(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.settings.size)

    def close(self) -> None:
        self.cap.release()


class CameraSource(Source):
    """A live camera read by a background thread into a one-frame "latest" slot.

    ``opener`` builds the capture (``cv2.VideoCapture`` by default); when reads fail the thread
    releases it and retries every ``retry_s`` until the device returns.
    """

    name = "camera"
    live = True

    def __init__(self, settings: SourceSettings, device: "int | str",
                 opener: Callable[[object], "cv2.VideoCapture"] = cv2.VideoCapture, retry_s: float = 1.0):
        super().__init__(settings)
        self.device = device
        self._opener = opener
        self.retry_s = retry_s
        self._slot: LatestSlot[tuple[np.ndarray, float]] = LatestSlot()  # (frame, when grabbed)
        self._taken = 0  # the sequence number of the last frame handed out
        self._stop = threading.Event()
        self.connected = False
        self.reconnects = 0
        self.grabbed = 0  # frames read from the device (handed out or overwritten)
        self._rate = RateMeter(30)
        cap = self._open()
        if cap is None:
            raise SourceError(f"camera {device} not found or busy (try --source synthetic, a video file, "
                              "or another camera:N)")
        self._thread = threading.Thread(target=self._loop, args=(cap,), name=f"camera-{device}", daemon=True)
        self._thread.start()

    def _open(self):
        cap = self._opener(self.device)
        if not cap.isOpened():
            cap.release()
            return None
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self.settings.size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.settings.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.settings.size[1])
        cap.set(cv2.CAP_PROP_FPS, self.settings.fps)
        ok, bgr = cap.read()
        if not ok:
            cap.release()
            return None
        self._publish(bgr)
        return cap

    def _publish(self, bgr: np.ndarray) -> None:
        grabbed = time.perf_counter()  # the read returned: the frame is here
        rgb = fit_cover(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.settings.size)
        self._rate.tick()
        self.connected = True
        self.grabbed += 1
        self._slot.publish((rgb, grabbed))

    @property
    def fps(self) -> float:
        """Measured delivery rate (what the camera really gives), else the requested one."""
        return self._rate.rate or self.settings.fps

    def _loop(self, cap) -> None:
        while not self._stop.is_set():
            ok, bgr = cap.read() if cap is not None else (False, None)
            if ok:
                self._publish(bgr)
                continue
            if cap is not None:
                cap.release()
                cap = None
                self.connected = False
                log.warning("camera %s stopped delivering frames; retrying every %.1fs", self.device, self.retry_s)
            if self._stop.wait(self.retry_s):
                break
            cap = self._open()
            if cap is not None:
                self.reconnects += 1
                log.info("camera %s is back", self.device)
        if cap is not None:
            cap.release()

    def read(self, timeout: float = 2.0) -> Optional[Frame]:
        """The newest frame not handed out yet; SourceLost if none comes within ``timeout``."""
        seq, value = self._slot.wait_newer(self._taken, timeout)
        if value is None:
            raise SourceLost(f"camera {self.device} is not delivering frames (unplugged?); retrying")
        self._taken = seq
        self._index += 1
        return Frame(value[0], self._index, value[1])

    def close(self) -> None:
        self._stop.set()
        self._slot.close()
        self._thread.join(timeout=2.0)


def parse_camera(spec: str) -> "int | str | None":
    """Camera index or device path for a camera spec, None if the spec is not a camera."""
    if spec == "camera":
        return 0
    if spec.startswith("camera:"):
        try:
            return int(spec.split(":", 1)[1])
        except ValueError:
            raise InputError(f"bad camera spec {spec!r}: use camera:N, e.g. camera:1") from None
    if spec.startswith("/dev/video"):
        return spec
    return None


def open_source(settings: SourceSettings) -> Source:
    """Open a source from its command-line spec (see SourceSettings.spec)."""
    spec = settings.spec.strip()
    camera = parse_camera(spec)
    if camera is not None:
        return CameraSource(settings, camera)
    if spec == "synthetic":
        return SyntheticSource(settings)
    if spec == "demo":
        from .demo import demo_clip

        return VideoFileSource(settings, demo_clip())
    if spec == "footage" or spec.startswith("footage:"):
        from .footage import footage_clip, parse_footage

        return VideoFileSource(settings, footage_clip(parse_footage(spec)))
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"source not found: {spec} (use camera, camera:N, /dev/videoN, synthetic, demo, "
                          "footage[:SCENE[:FPS]] or a file)")
    if path.suffix.lower() in IMAGE_EXTS:
        return StillSource(settings, read_image(path))
    return VideoFileSource(settings, path)
