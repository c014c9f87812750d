"""Quality metrics: perceptual content/style losses (VGG16) and the temporal warp error of a video.

Warp error (Lai et al. 2018): optical flow between consecutive *source* frames (OpenCV Farnebäck),
stylized frame t−1 warped to t, mean absolute difference over pixels that are not occluded
(forward-backward flow consistency). Lower is steadier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .frames import fit_long
from .training.vgg import CONTENT_LAYER, Vgg16Features, gram

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
    """Accumulates the warp error frame by frame (so long videos need no memory)."""

    total: float = 0.0
    pairs: int = 0
    _prev_src: Optional[np.ndarray] = None
    _prev_out: Optional[np.ndarray] = None

    def add(self, source: np.ndarray, stylized: np.ndarray) -> Optional[float]:
        err = None
        if self._prev_src is not None:
            back = _flow(source, self._prev_src)  # for each pixel of t: where it was in t−1
            fwd = _flow(self._prev_src, source)
            fwd_at_t = _warp(fwd, back)  # forward flow sampled where each pixel of t came from
            mismatch = np.sum((back + fwd_at_t) ** 2, axis=2)
            mask = mismatch < 0.01 * (np.sum(back ** 2, axis=2) + np.sum(fwd_at_t ** 2, axis=2)) + 0.5
            warped = _warp(self._prev_out, back).astype(np.float32)
            diff = np.abs(warped - stylized.astype(np.float32)).mean(axis=2) / 255.0
            if mask.any():
                err = float(diff[mask].mean())
                self.total += err
                self.pairs += 1
        self._prev_src, self._prev_out = source, stylized
        return err

    @property
    def value(self) -> float:
        return self.total / self.pairs if self.pairs else float("nan")
