"""Quality metrics: perceptual content/style losses (VGG16) and the temporal warp error of a video.

Warp error (Lai et al. 2018): optical flow between consecutive *source* frames (OpenCV Farnebäck),
stylized frame t−1 warped to t, mean absolute difference over pixels that are not occluded
(forward-backward flow consistency). Lower is steadier.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.frame.frames import fit_long
from engine.training.vgg import CONTENT_LAYER, Vgg16Features, gram

EVAL_SIZE = 384  # long side for the perceptual losses


class PerceptualMetrics:
    def __init__(self, style_picture: Optional[np.ndarray] = None):
        self.torch, self.gram = torch, gram
        self.vgg = Vgg16Features()
        self.style_grams = None
        if style_picture is not None:
            with torch.no_grad():
                f = self.vgg(self._t(fit_long(style_picture, 256)))
            self.style_grams = {k: gram(v) for k, v in f.items()}

    def _t(self, img: np.ndarray):
        return self.torch.from_numpy(img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)

    def losses(self, photo: np.ndarray, stylized: np.ndarray) -> dict[str, float]:
        """Content loss (relu3_3 MSE vs the photo) and style loss (Gram MSE vs the style picture)."""
        with self.torch.no_grad():
            fs = self.vgg(self._t(stylized))
            fp = self.vgg(self._t(photo), (CONTENT_LAYER,))
            out = {"content_loss": F.mse_loss(fs[CONTENT_LAYER], fp[CONTENT_LAYER]).item()}
            if self.style_grams is not None:
                out["style_loss"] = sum(F.mse_loss(self.gram(fs[k]), self.style_grams[k]).item()
                                        for k in self.style_grams)
        return out


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
    return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class WarpError:
    """Accumulates the warp error frame by frame (so long videos need no memory). ``add(source, *outputs)``
    takes several outputs of the same source (plain and steadied) that share one pair of flows."""

    totals: list = field(default_factory=list)
    pairs: int = 0
    _prev_src: Optional[np.ndarray] = None
    _prev_outs: tuple = ()

    def add(self, source: np.ndarray, *outputs: np.ndarray) -> Optional[float]:
        err = None
        if self._prev_src is not None:
            back = _flow(source, self._prev_src)  # for each pixel of t: where it was in t−1
            fwd = _flow(self._prev_src, source)
            fwd_at_t = _warp(fwd, back)  # forward flow sampled where each pixel of t came from
            mismatch = np.sum((back + fwd_at_t) ** 2, axis=2)
            mask = mismatch < 0.01 * (np.sum(back ** 2, axis=2) + np.sum(fwd_at_t ** 2, axis=2)) + 0.5
            if mask.any():
                errs = [float((np.abs(_warp(prev, back).astype(np.float32) - out.astype(np.float32))
                               .mean(axis=2) / 255.0)[mask].mean()) for prev, out in zip(self._prev_outs, outputs)]
                self.totals = [t + e for t, e in zip(self.totals or [0.0] * len(errs), errs)]
                self.pairs += 1
                err = errs[0]
        self._prev_src, self._prev_outs = source, outputs
        return err

    @property
    def values(self) -> list[float]:
        return [t / self.pairs for t in self.totals] if self.pairs else [float("nan")]

    @property
    def value(self) -> float:
        return self.values[0]


def _smooth_gray(frame: np.ndarray) -> np.ndarray:
    """Grey, blurred enough that sensor noise does not count as change (σ 3 px)."""
    return cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 3.0)


STATIC_LEVELS = 6.0  # a blurred source pixel that moves less than this (0..255) counts as static
MOVED_LEVELS = 25.0  # ... and one that changes more than this in a frame has had something move over it


@dataclass
class StaticNoise:
    """Temporal noise where the source is static: the output's std over time (0..1) in windows of
    ``window`` frames, after taking out each pixel's linear trend over the window (a slow exposure
    drift is a change, not noise), over the pixels whose blurred source stayed within STATIC_LEVELS
    of the window's first frame, away from anything that moved (eroded). Shimmer on walls and skin;
    lower is steadier. Windows with an exposure step or a cut simply have few static pixels."""

    window: int = 8
    totals: list = field(default_factory=list)
    pixels: int = 0
    _src: list = field(default_factory=list)
    _out: list = field(default_factory=list)

    def add(self, source: np.ndarray, *outputs: np.ndarray) -> None:
        """One frame: its source and one or more outputs of it (plain, steadied) judged on the same pixels."""
        self._src.append(_smooth_gray(source))
        self._out.append(outputs)
        if len(self._src) == self.window:
            ref = self._src[0]
            static = np.ones(ref.shape, np.uint8)
            for s in self._src[1:]:
                static &= (np.abs(s - ref) < STATIC_LEVELS).astype(np.uint8)
            static = cv2.erode(static, np.ones((9, 9), np.uint8)).astype(bool)
            if static.any():
                t = np.arange(self.window, dtype=np.float32) - (self.window - 1) / 2
                sums = []
                for k in range(len(self._out[0])):
                    x = np.stack([o[k][static] for o in self._out]).astype(np.float32)  # T × N × 3
                    x -= x.mean(axis=0)
                    x -= t[:, None, None] * (np.tensordot(t, x, axes=1) / float(t @ t))[None]
                    sums.append(float((np.sqrt((x ** 2).mean(axis=0)).mean(axis=1) / 255.0).sum()))
                self.totals = [a + b for a, b in zip(self.totals or [0.0] * len(sums), sums)]
                self.pixels += int(static.sum())
            self._src.clear()
            self._out.clear()

    @property
    def values(self) -> list[float]:
        return [t / self.pixels for t in self.totals] if self.pixels else [float("nan")]

    @property
    def value(self) -> float:
        return self.values[0]


@dataclass
class Ghosting:
    """Trails behind moving objects: in the region something moved over ``after`` frames ago and that has
    been static since, how far the steadied output is from the plain one (error), against how much the
    plain output itself changes there from one frame to the next (its flicker, the reference).
    ``value`` = error / reference: about 0.7 means no trail at all (steady ≈ the plain output's mean),
    above 1.5 a visible ghost."""

    after: int = 3
    error: float = 0.0
    reference: float = 0.0
    frames: int = 0
    _src: list = field(default_factory=list)
    _prev_plain: Optional[np.ndarray] = None

    def add(self, source: np.ndarray, plain: np.ndarray, steady: np.ndarray) -> None:
        self._src.append(_smooth_gray(source))
        self._src = self._src[-(self.after + 2):]
        if len(self._src) == self.after + 2 and self._prev_plain is not None:
            before, moved, *since = self._src  # t−after−1, t−after, …, t
            region = np.abs(moved - before) > MOVED_LEVELS
            for s in since:
                region &= np.abs(s - moved) < STATIC_LEVELS
            if region.mean() > 0.002:
                p, q = plain.astype(np.float32), steady.astype(np.float32)
                self.error += float(np.abs(q - p).mean(axis=2)[region].mean()) / 255.0
                self.reference += float(np.abs(p - self._prev_plain).mean(axis=2)[region].mean()) / 255.0
                self.frames += 1
        self._prev_plain = plain.astype(np.float32)

    @property
    def value(self) -> float:
        return self.error / self.reference if self.reference > 0 else float("nan")


def steadiness(run, frames, stabilizer) -> dict[str, float]:
    """Warp error, static-region noise and ghosting of a video, plain and steadied.

    ``run(frame) → stylized`` is the network path; the steadied path runs it on the stabilizer's
    denoised input, as the pipeline does. Also the stabilizer's own time per frame (p50, ms)."""
    import time

    warp = WarpError()
    noise = StaticNoise()
    ghost, times = Ghosting(), []
    for frame in frames:
        plain = run(frame)
        t0 = time.perf_counter()
        steady_in = stabilizer.prepare(frame)
        t1 = time.perf_counter()
        styled = plain if steady_in is frame else run(steady_in)
        t2 = time.perf_counter()
        steady = stabilizer(frame, styled)
        times.append((t1 - t0) + (time.perf_counter() - t2))
        warp.add(frame, plain, steady)  # one pair of flows for both
        noise.add(frame, plain, steady)
        ghost.add(frame, plain, steady)
    result = {"warp_error": warp.values[0], "warp_error_stabilized": warp.values[-1],
              "static_noise": noise.values[0], "static_noise_stabilized": noise.values[-1],
              "ghosting": ghost.value, "ghosting_frames": ghost.frames, "frames": warp.pairs + 1,
              "stabilize_ms_p50": 1000 * float(np.percentile(times, 50)) if times else float("nan")}
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in result.items()}  # JSON has no NaN
