"""Anti-flicker for live video: blend the previous stylized frame, moved along the optical flow.

Feed-forward style networks flicker on video: each frame's textures are re-invented, and a webcam's
sensor noise and MJPEG blocks are amplified into shimmer on walls and skin. ``__call__`` blends the
previous *stylized output*, moved along the flow of the source (OpenCV DIS at half resolution,
bilinear; sub-pixel flow where nothing moves snapped to an exact copy), into the new one: 0.93 of it
where nothing moves, 0.85 where things move, times a confidence. ``prepare`` (before the network)
measures flow and confidence once per frame; it can also denoise the network's input the same way
(``denoise``; off: measured on webcam-like footage, it bought no warp error for ~2 ms).

Confidence: the new frame minus the warped previous one, box-averaged (noise averages out, a structure
that moved does not) and with the global brightness change taken out (exposure drift is not motion),
against the noise floor measured on this very frame pair. Where the source changed (an object
arrived or left, an occlusion, flow that failed), the confidence drops to 0 and the new frame shows
through at once — so nothing trails. A scene cut or an exposure step (auto-exposure re-metering)
resets the history. Tuned on engine/footage.py's clips (see scripts/stabilize_eval.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

CUT_THRESHOLD = 40.0  # mean |Δ| of an 80×60 grey thumbnail (0..255) that counts as a new scene


@dataclass(frozen=True)
class StabilizerSettings:
    strength: float = 0.85  # share of the warped previous output kept where the flow is trusted
    still_strength: float = 0.93  # ... and where nothing moves (sub-pixel flow): shimmer there is pure noise
    denoise: float = 0.0  # input denoising (share of the warped previous input): measured, not worth its 2 ms
    tolerance: float = 4.0  # levels of box-averaged difference, above the noise floor, that halve the trust
    exposure_step: float = 4.0  # median brightness change (levels) in one frame that counts as re-metering
    window: int = 5  # box filter (half-resolution pixels) that averages noise out of the difference


class Stabilizer:
    def __init__(self, settings: StabilizerSettings = StabilizerSettings()):
        self.settings = settings
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._dis.setVariationalRefinementIterations(0)  # patch flow is enough for blending; saves ~0.1 ms
        self._grids: dict[tuple[int, int], np.ndarray] = {}  # pixel-coordinate grids, kept across resets
        self.cuts = 0
        self.exposure_resets = 0
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (cheap: the pipeline calls it every frame while stabilizing is off)."""
        self._prev_gray: Optional[np.ndarray] = None  # half-resolution grey of the previous denoised input
        self._prev_in: Optional[np.ndarray] = None  # the previous denoised input (full resolution)
        self._prev_out: Optional[np.ndarray] = None
        self._prev_thumb: Optional[np.ndarray] = None
        self._step: Optional[tuple] = None  # (source, denoised, full map, half-res confidence) of this frame

    def _grid(self, h: int, w: int) -> np.ndarray:
        """H×W×2 pixel coordinates (x, y), the base of every remap map."""
        if (h, w) not in self._grids:
            gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
            self._grids[(h, w)] = np.dstack([gx, gy])
        return self._grids[(h, w)]

    def _half_gray(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]  # grey first: a third of the pixels to average
        return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (w // 2, h // 2), interpolation=cv2.INTER_AREA)

    def _new_scene(self, thumb: np.ndarray) -> bool:
        """A cut (everything changed) or an exposure step (everything brighter or darker at once)."""
        if self._prev_thumb is None:
            return True
        delta = thumb - self._prev_thumb
        if np.abs(delta).mean() > CUT_THRESHOLD:
            self.cuts += 1
            return True
        if abs(float(np.median(delta))) > self.settings.exposure_step:
            self.exposure_resets += 1
            return True
        return False

    def prepare(self, source: np.ndarray) -> np.ndarray:
        """The network's input for ``source``: motion-compensated temporal denoising of it.

        Also measures the flow and confidence that ``__call__`` then reuses for the output."""
        s = self.settings
        h, w = source.shape[:2]
        gray = self._half_gray(source)
        thumb = cv2.resize(gray, (80, 60), interpolation=cv2.INTER_AREA).astype(np.float32)
        fresh = (self._prev_gray is None or self._prev_in is None or self._prev_in.shape != source.shape
                 or self._new_scene(thumb))
        self._prev_thumb = thumb
        if fresh:
            self._prev_out = None
            self._step = (source, source, None, None, None)
            self._prev_in, self._prev_gray = source, gray
            return source
        flow = self._dis.calc(gray, self._prev_gray, None)  # for each pixel now: where it was before
        # 1 where nothing moves (under a quarter of a half-resolution pixel), else 0; cv2, not numpy
        # masks (a boolean-mask assignment costs more than the whole flow here)
        fx, fy = cv2.split(flow)
        still = cv2.threshold(cv2.magnitude(fx, fy), 0.25, 1.0, cv2.THRESH_BINARY_INV)[1]
        # Where nothing moves, an exact copy: bilinear re-warping of the blended frame by a stray tenth
        # of a pixel every frame would blur it cumulatively. Where things move, bilinear (nearest
        # would jitter the strokes by up to half a pixel a frame: −50% warp error instead of −54%).
        moving = 1.0 - still
        flow = cv2.merge([cv2.multiply(fx, moving), cv2.multiply(fy, moving)])
        half_map = cv2.add(self._grid(*gray.shape), flow)
        warped_gray = cv2.remap(self._prev_gray, half_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = cv2.subtract(gray, warped_gray, dtype=cv2.CV_32F)
        diff -= float(np.median(diff[::8, ::8]))  # exposure drift is not motion
        local = np.abs(cv2.blur(diff, (s.window, s.window)))
        floor = float(np.median(local[::8, ::8]))  # this frame pair's noise after averaging
        conf = cv2.exp((np.maximum(local - 2.0 * floor, 0.0)) * (-0.6931 / s.tolerance))  # 1 → ½ at tolerance
        # Full-resolution map straight from the half-resolution one: bilinear resizing of 2·m + 0.5 is
        # exactly the full-res grid plus the interpolated flow (pixel centres line up).
        full_map = cv2.resize(half_map * 2.0 + 0.5, (w, h), interpolation=cv2.INTER_LINEAR)
        denoised = source
        if s.denoise > 0:
            denoised = self._blend(self._prev_in, source, full_map, conf * np.float32(s.denoise))
            self._prev_gray = self._half_gray(denoised)
        else:
            self._prev_gray = gray
        self._prev_in = denoised
        self._step = (source, denoised, full_map, conf, still)
        return denoised

    def _blend(self, previous: np.ndarray, current: np.ndarray, full_map: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """``previous`` moved along the flow, blended into ``current`` by ``weight`` (half resolution)."""
        h, w = current.shape[:2]
        warped = cv2.remap(previous, full_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # the weights are smooth (box-filtered): nearest upsampling is enough, and twice as fast
        up = lambda m: cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)  # noqa: E731
        return cv2.blendLinear(warped, current, up(weight), up(1.0 - weight))

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """The output for this frame: ``stylized`` steadied with the previous output.

        ``source`` is the camera frame given to ``prepare`` (called here if it was not)."""
        if self._step is None or self._step[0] is not source:
            self.prepare(source)
        _, _, full_map, conf, still = self._step
        self._step = None
        out = stylized
        if full_map is not None and self._prev_out is not None and self._prev_out.shape == stylized.shape:
            s = self.settings
            share = cv2.addWeighted(still, s.still_strength - s.strength, still, 0.0, s.strength)
            weight = cv2.multiply(conf, share)
            out = self._blend(self._prev_out, stylized, full_map, weight)
        self._prev_out = out
        return out
