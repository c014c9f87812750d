"""The bundled demo clip: a slow pan/zoom over the photos in assets/ (scikit-image's), made once and cached.

Built from pictures a package ships (no opaque video in the repo), so `make run` has a moving
source on machines without a camera.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..paths import asset_photo, cache_dir
from .. import defaults

log = logging.getLogger(__name__)
PHOTOS = ("astronaut", "coffee", "chelsea")
DEMO_SIZE = defaults.FRAME_SIZE
SECONDS_PER_PHOTO = 3.0
FADE_FRAMES = 12


def _kenburns(photo: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
    """Crop window that zooms 1.0→1.25 and drifts across the photo as t goes 0→1."""
    w, h = size
    ph, pw = photo.shape[:2]
    zoom = 1.0 + 0.25 * t
    scale = max(w / pw, h / ph) * zoom
    cw, ch = w / scale, h / scale
    x0 = (pw - cw) * (0.2 + 0.6 * t)
    y0 = (ph - ch) * (0.5 - 0.3 * t)
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float32)
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def demo_frames(size: tuple[int, int] = DEMO_SIZE, fps: float = 30.0):
    """Yield the demo's RGB frames."""
    photos = [asset_photo(name) for name in PHOTOS]
    n = int(SECONDS_PER_PHOTO * fps)
    for k, photo in enumerate(photos):
        nxt = photos[(k + 1) % len(photos)]
        for i in range(n):
            frame = _kenburns(photo, i / (n - 1), size)
            fade = i - (n - FADE_FRAMES)
            if fade >= 0:
                alpha = (fade + 1) / (FADE_FRAMES + 1)
                frame = cv2.addWeighted(frame, 1 - alpha, _kenburns(nxt, 0.0, size), alpha, 0)
            yield frame


def write_clip(path: Path, frames, fps: float, size: tuple[int, int], fourcc: str = "mp4v",
               quality: int | None = None) -> Path:
    """Write RGB frames as a video (default MP4/mp4v: what OpenCV's headless build encodes; "MJPG" with
    ``quality`` for Motion-JPEG AVI), atomically: a half-written file never has the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise InputError(f"cannot write {path}: OpenCV has no {fourcc} writer here")
    if quality is not None:
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(tmp, path)
    return path


def demo_clip(fps: float = 30.0) -> Path:
    """Path of the cached demo clip, writing it on first use (~1 s)."""
    path = cache_dir() / "demo" / f"demo-{DEMO_SIZE[0]}x{DEMO_SIZE[1]}.mp4"
    if not path.is_file():
        log.info("writing the demo clip to %s", path)
        write_clip(path, demo_frames(DEMO_SIZE, fps), fps, DEMO_SIZE)
    return path
