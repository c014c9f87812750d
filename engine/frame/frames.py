"""Frame conversions and the cheap per-pixel effects applied after the network.

Frames are uint8 H×W×3 RGB numpy arrays everywhere in the engine; OpenCV's BGR stays inside
capture and the sinks. Conversions use cv2 because it is several times faster than numpy here.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..errors import InputError
from .upscale import guided_filter_upscale


def pad_amounts(h: int, w: int, multiple: int) -> tuple[int, int]:
    """Bottom/right padding that makes both sides a multiple of the network's downsampling."""
    return (-h) % multiple, (-w) % multiple


def to_input(frame: np.ndarray, multiple: int) -> np.ndarray:
    """uint8 H×W×3 → float32 [1,3,H',W'] in 0..1, reflect-padded to a multiple of ``multiple``."""
    check_frame(frame)
    h, w = frame.shape[:2]
    ph, pw = pad_amounts(h, w, multiple)
    if ph or pw:
        frame = cv2.copyMakeBorder(frame, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
    x = np.empty((1, 3, h + ph, w + pw), dtype=np.float32)
    for c in range(3):
        x[0, c] = frame[:, :, c]
    x *= 1.0 / 255.0
    return x


def from_output(y: np.ndarray, h: int, w: int) -> np.ndarray:
    """float [1,3,H',W'] in 0..1 → uint8 H×W×3, cropped back to the frame's size (rounded)."""
    planes = [cv2.convertScaleAbs(y[0, c, :h, :w], alpha=255.0) for c in range(3)]
    return cv2.merge(planes)


def check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = getattr(frame, "shape", type(frame).__name__), getattr(frame, "dtype", "")
        raise InputError(f"expected a uint8 H×W×3 RGB frame, got {got}")
    if min(frame.shape[:2]) < 16:
        raise InputError(f"frame is too small ({frame.shape[1]}x{frame.shape[0]}); both sides need ≥ 16 px")


def preserve_colors(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Stylized luminance with the original's chroma (YCrCb recombination)."""
    if original.shape != stylized.shape:
        original = cv2.resize(original, (stylized.shape[1], stylized.shape[0]), interpolation=cv2.INTER_AREA)
    ycc = cv2.cvtColor(original, cv2.COLOR_RGB2YCrCb)
    ycc[:, :, 0] = cv2.cvtColor(stylized, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def mix(stylized: np.ndarray, original: np.ndarray, strength: float) -> np.ndarray:
    """strength·stylized + (1−strength)·original; 1 returns ``stylized`` untouched."""
    if strength >= 1.0:
        return stylized
    if original.shape != stylized.shape:
        original = cv2.resize(original, (stylized.shape[1], stylized.shape[0]), interpolation=cv2.INTER_AREA)
    return cv2.addWeighted(stylized, strength, original, 1.0 - strength, 0.0)


def check_strength(strength: float) -> float:
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    return float(strength)


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' → (640, 480)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"bad size {text!r}: use WIDTHxHEIGHT, e.g. 640x480") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise InputError(f"size {text} out of range: each side must be 16 to 8192")
    return w, h


def guided_upscale(stylized_small: np.ndarray, original: np.ndarray, source_small: Optional[np.ndarray] = None,
                   radius: int = 4, eps: float = 1e-3, pool=None) -> np.ndarray:
    """Upscale a low-resolution stylization to the original's size, re-snapping it to the original's
    edges with a guided filter (He et al. 2010; luminance of the original as the guide).

    The fast guided filter (He & Sun 2015): the linear coefficients are fitted at the small size and
    only upsampled, so the full-resolution work is one multiply-add. ``source_small``, the frame the
    network saw, gives the small guide without another pass over the full frame. The filter itself is
    engine/upscale_kernel.py (numba); ``pool`` (an executor) takes half of its rows."""
    h, w = original.shape[:2]
    hs, ws = stylized_small.shape[:2]
    guide = cv2.cvtColor(original, cv2.COLOR_RGB2GRAY)
    if source_small is not None and source_small.shape[:2] == (hs, ws):
        small_guide = cv2.cvtColor(source_small, cv2.COLOR_RGB2GRAY)
    else:
        small_guide = cv2.resize(guide, (ws, hs), interpolation=cv2.INTER_AREA)
    r = max(1, round(radius * ws / w))
    return guided_filter_upscale(stylized_small, small_guide, guide, r, eps * 255.0 * 255.0, pool)  # eps in 0..255²


def check_render_scale(scale: float) -> float:
    if not 0.25 <= scale <= 1.0:
        raise InputError(f"--render-scale must be between 0.25 and 1, got {scale}")
    return float(scale)


def fit_long(img: np.ndarray, size: int) -> np.ndarray:
    """Resized so the long side is ``size`` (perceptual losses are only comparable at one scale)."""
    h, w = img.shape[:2]
    s = size / max(h, w)
    return cv2.resize(img, (max(16, round(w * s)), max(16, round(h * s))), interpolation=cv2.INTER_AREA)


def fit_cover(image: np.ndarray, size: Optional[tuple[int, int]]) -> np.ndarray:
    """Centre-crop to the target aspect, then resize: frames fill ``size`` without distortion."""
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    tw, th = size
    h, w = image.shape[:2]
    scale = max(tw / w, th / h)
    cw, ch = min(w, round(tw / scale)), min(h, round(th / scale))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = image[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(crop, (tw, th), interpolation=interp)


def scaled_shape(shape: tuple, render_scale: float) -> tuple:
    """The shape of what the network sees for frames of ``shape`` at ``render_scale``."""
    if render_scale >= 1.0:
        return tuple(shape)
    h, w = shape[:2]
    return (max(16, round(h * render_scale)), max(16, round(w * render_scale)), *shape[2:])


def scaled_input(frame: np.ndarray, render_scale: float) -> np.ndarray:
    """The frame the network sees: the frame itself, or a smaller copy for --render-scale."""
    if render_scale >= 1.0:
        return frame
    h, w = scaled_shape(frame.shape, render_scale)[:2]
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
