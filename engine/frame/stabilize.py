"""Anti-flicker for live video: blend the previous stylized frame, moved along the optical flow.

Feed-forward style networks flicker on video: each frame's textures are re-invented, and a webcam's
sensor noise and MJPEG blocks are amplified into shimmer on walls and skin. ``__call__`` blends the
previous *stylized output*, moved along the flow of the source, into the new one: 0.93 of it where
nothing moves, 0.85 where things move, times a confidence. ``prepare`` (before the network) measures
flow and confidence once per frame, on a grey copy at a quarter of the size (half below 400 rows):
DIS's coarse patch flow, then one Lucas–Kanade step where things move (``refine``). It can also
denoise the network's input the same way (``denoise``; off: it bought no warp error).

Still: where the flow is under half a pixel, or where no motion explains the new frame as well as
the flow does (``zero_wins``; on real footage DIS reports jittery motion on still walls and on a
shaking camera's background). There the previous output is copied exactly (re-warping it by stray
tenths of a pixel would blur it frame after frame, and following jittery flow shimmers).

Confidence: the new frame minus the warped previous one, box-averaged (noise averages out, a structure
that moved does not) and with the global brightness change taken out (exposure drift is not motion),
against the noise floor measured on this very frame pair. Where the source changed (an object
arrived or left, an occlusion, flow that failed), the confidence drops to 0 and the new frame shows
through at once — so nothing trails; then it comes back over a few frames (``recover``: the network's
strokes near an object's old edge keep changing after the source there is still), and it is 0 for what
came in over the frame's edge and where the flow back and the flow forth disagree (background an object
uncovered: DIS borrows a look-alike patch nearby, whose past output carries the object's strokes, and
that smear would stay). A scene cut resets the history. An exposure step (auto-exposure re-metering)
does not: the network's instance normalization cancels a global gain (its output's mean moved by
under half a level across a 25% step), so the old strokes stay valid, and dropping them made the step
frame flicker more than the plain output did (``exposure_step`` brings that reset back).

Cost: the full-resolution flow map and the bilinear warp are made only in rects of tiles that hold
motion (``_active_rects``), or over the whole frame when those cover most of it; elsewhere the previous
output is taken as it is. Then one per-pixel blend (engine/weighted_blend.py). Both are split over
``threads`` workers where the cores are free (a GPU runs the network). Beside a GPU the
pipeline runs ``prepare`` and ``warp_ahead`` on a side thread while the network runs; on a CPU
(ONNX Runtime, OpenVINO) while the upscale runs when the render scale is below 1, and beside the
network itself at full scale. Only the blend is left in line.
Tuned on engine/footage.py's clips and real clips from packages (see scripts/stabilize_eval.py).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, Optional

import cv2
import numpy as np

from .weighted_blend import blend_rows

CUT_THRESHOLD = 40.0  # mean |Δ| of an 80×60 grey thumbnail (0..255) that counts as a new scene
TILE = 4  # analysis pixels per side of the tiles that are warped (or copied) as a whole
BAND = 4  # tile rows per band of rects
WHOLE_FRAME = 0.6  # rects covering more of the frame than this: one whole-frame pass is cheaper
ZERO_NOISE = 8.0  # zero flow is chosen only where its misfit is within this many times the median one
REFINE_REG = 50.0  # Tikhonov term of the flow refinement (squared grey levels per pixel): flat areas keep DIS's flow
MAX_THREADS = 4  # workers for the full-resolution warp and blend (memory-bound: more do not pay)


@dataclass(frozen=True)
class StabilizerSettings:
    strength: float = 0.85  # share of the warped previous output kept where the flow is trusted
    still_strength: float = 0.93  # ... and where nothing moves (sub-pixel flow): shimmer there is pure noise
    denoise: float = 0.0  # input denoising (share of the warped previous input): measured, not worth its 2 ms
    tolerance: float = 4.0  # levels of box-averaged difference, above the noise floor, that halve the trust
    exposure_step: float = 0.0  # reset where the median brightness steps by more than this (levels; 0: never)
    zero_wins: float = 2.0  # zero flow where it explains the change within this factor of the flow (0: off)
    refine: bool = True  # one Lucas–Kanade step on DIS's coarse flow where things move
    consistency: float = 6.0  # frame pixels by which the flow back and forth may disagree (0: no check)
    recover: float = 0.2  # per frame, how fast lost trust comes back (0: at once)
    scale: int = 0  # flow and trust are measured at 1/scale of the frame's size (0: 4 from 400 rows up, else 2)
    window: int = 10  # box filter (frame pixels) that averages noise out of the difference
    threads: int = 0  # workers for the full-resolution warp and blend (0: one per core, at most MAX_THREADS)

    def check(self) -> None:
        if self.scale not in (0, 2, 4) or self.window < 2 or self.threads < 0:
            raise ValueError(f"stabilizer: scale must be 0, 2 or 4, window at least 2 and threads not negative "
                             f"(got {self.scale}, {self.window}, {self.threads})")

    def analysis(self, height: int) -> tuple[int, int]:
        """(scale, box window in analysis pixels, odd) for frames of this height."""
        k = self.scale or (4 if height >= 400 else 2)
        return k, max(3, round(self.window / k) | 1)


def _without_global_change(diff: np.ndarray) -> np.ndarray:
    """``diff`` (float, in place) less its median over a sparse grid: exposure drift is not motion.
    ``np.partition``, not ``np.median``: a tenth of its fixed cost, paid three times a frame."""
    sample = diff[::8, ::8].ravel()
    diff -= float(np.partition(sample, sample.size // 2)[sample.size // 2])
    return diff


def _local_change(diff: np.ndarray, window: int) -> tuple[np.ndarray, float]:
    """|box-averaged difference| (noise averages out, a moved structure does not) without the global
    brightness change, and its median: this frame pair's noise floor."""
    diff = _without_global_change(diff)
    local = np.abs(cv2.blur(diff, (window, window)))
    return local, float(np.median(local[::8, ::8]))


def _misfit(diff: np.ndarray, window: int) -> np.ndarray:
    """Box-averaged squared difference, the global brightness change taken out: how badly a motion
    explains the new frame (squared, so a texture that moved counts even where its mean did not)."""
    diff = _without_global_change(diff)
    return cv2.blur(cv2.multiply(diff, diff), (window, window))


def _refine(flow: np.ndarray, gray: np.ndarray, prev: np.ndarray, window: int) -> np.ndarray:
    """``flow`` (gray → prev) after one Lucas–Kanade step: DIS's patch flow is made on a grid of 8 frame
    pixels with 32-pixel patches, too coarse for a face that turns or an arm that bends, and the strokes
    warped by it miss by pixels. Each pixel's correction (at most one analysis pixel) is solved on a box
    of ``window``, regularised so that flat areas keep DIS's flow. Warp error −2…−5 points for 0.5 ms
    (cv2 calls throughout: numpy temporaries took a third more)."""
    prev = cv2.GaussianBlur(prev, (0, 0), 0.8, borderType=cv2.BORDER_REPLICATE)
    cur = cv2.GaussianBlur(gray, (0, 0), 0.8, borderType=cv2.BORDER_REPLICATE)
    warped = cv2.remap(prev, flow, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    r = _without_global_change(cv2.subtract(cur, warped, dtype=cv2.CV_32F))
    gx = cv2.Sobel(warped, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(warped, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    box = (window, window)
    a11, a12, a22, b1, b2 = (cv2.blur(cv2.multiply(u, v), box) for u, v in
                             ((gx, gx), (gx, gy), (gy, gy), (gx, r), (gy, r)))
    a11 += REFINE_REG
    a22 += REFINE_REG
    det = cv2.subtract(cv2.multiply(a11, a22), cv2.multiply(a12, a12))
    dx = cv2.divide(cv2.subtract(cv2.multiply(a22, b1), cv2.multiply(a12, b2)), det)
    dy = cv2.divide(cv2.subtract(cv2.multiply(a11, b2), cv2.multiply(a12, b1)), det)
    limit = cv2.max(cv2.magnitude(dx, dy), 1.0)  # linearised: trusted up to one analysis pixel
    return cv2.add(flow, cv2.merge([cv2.divide(dx, limit), cv2.divide(dy, limit)]))


def _outside(flow: np.ndarray) -> np.ndarray:
    """Where the flow comes from outside the frame (boolean, analysis size)."""
    h, w = flow.shape[:2]
    xs = flow[..., 0] + np.arange(w, dtype=np.float32)
    ys = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    return (xs < -0.5) | (xs > w - 0.5) | (ys < -0.5) | (ys > h - 0.5)


def _active_rects(active: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Analysis-resolution (x, y, w, h) rects, by tiles, that cover every nonzero pixel of ``active``.

    Bands of BAND tile rows, each cut into runs of tiles that hold any (gaps of up to two tiles
    bridged): close to the tiles' own area in a dozen rects, where one bounding box per blob would
    take half as much again."""
    h, w = active.shape
    th, tw = -(-h // TILE), -(-w // TILE)
    padded = cv2.copyMakeBorder(active, 0, th * TILE - h, 0, tw * TILE - w, cv2.BORDER_CONSTANT, value=0)
    tiles = cv2.resize(padded, (tw, th), interpolation=cv2.INTER_AREA) > 0
    rects = []
    for ty in range(0, th, BAND):
        xs = np.flatnonzero(tiles[ty:ty + BAND].any(axis=0)).tolist()
        y0, y1 = ty * TILE, min((ty + BAND) * TILE, h)
        start = prev = None
        for x in xs + [None]:  # runs of tiles; a gap of 3+ tiles starts a new one
            if start is not None and (x is None or x - prev > 3):
                rects.append((start * TILE, y0, min((prev + 1) * TILE, w) - start * TILE, y1 - y0))
                start = None
            if start is None:
                start = x
            prev = x
    return rects


def _plan(active: np.ndarray) -> Optional[list[tuple[int, int, int, int]]]:
    """The rects to warp and blend pixel by pixel, or None for the whole frame: when they would cover
    more than WHOLE_FRAME of it, one pass is cheaper. Rects cover at least the active pixels, so when
    those alone pass it (most frames of a noisy webcam) no rects are cut (0.15 ms saved)."""
    limit = WHOLE_FRAME * active.size
    if cv2.countNonZero(active) > limit:
        return None
    rects = _active_rects(active)
    return None if sum(rw * rh for _, _, rw, rh in rects) > limit else rects


class _Step(NamedTuple):
    """What ``prepare`` measured for one frame (all None but the source on a fresh start)."""

    source: np.ndarray
    flow: Optional[np.ndarray] = None  # analysis-size map, zero where still
    conf: Optional[np.ndarray] = None
    still: Optional[np.ndarray] = None
    rects: Optional[list[tuple[int, int, int, int]]] = None  # None also means the whole frame


class Stabilizer:
    def __init__(self, settings: StabilizerSettings = StabilizerSettings()):
        settings.check()
        self.settings = settings
        self._dis: dict[int, cv2.DISOpticalFlow] = {}  # per analysis scale
        self._pool: Optional[ThreadPoolExecutor] = None  # made at the first frame that has work for it
        self.cuts = 0
        self.exposure_resets = 0
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (cheap: the pipeline calls it every frame while stabilizing is off)."""
        self._prev_gray: Optional[np.ndarray] = None  # analysis-size grey of the previous denoised input
        self._prev_in: Optional[np.ndarray] = None  # the previous denoised input (full resolution)
        self._prev_out: Optional[np.ndarray] = None
        self._prev_thumb: Optional[np.ndarray] = None
        self._trust: Optional[np.ndarray] = None  # last frame's confidence (analysis size), for ``recover``
        self._step: Optional[_Step] = None  # this frame's, until its output is made
        self._moved: Optional[np.ndarray] = None  # the previous output already warped (``warp_ahead``)

    def _flow(self, k: int) -> cv2.DISOpticalFlow:
        if k not in self._dis:
            dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            dis.setVariationalRefinementIterations(0)  # patch flow is enough for blending; saves ~0.1 ms
            if k == 4:  # the flow grid of a half-size input (1/8 of the frame) from a quarter-size one
                dis.setFinestScale(1)
                dis.setPatchStride(6)  # 6, not 4: 0.3 ms less for 1–2 points of warp error
            self._dis[k] = dis
        return self._dis[k]

    def _small_gray(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        k = self.settings.analysis(h)[0]  # grey first: a third of the pixels to average
        return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (w // k, h // k), interpolation=cv2.INTER_AREA)

    def _new_scene(self, thumb: np.ndarray) -> bool:
        """A cut (everything changed), or an exposure step (everything brighter or darker at once) where
        those reset (``exposure_step``)."""
        if self._prev_thumb is None:
            return True
        delta = thumb - self._prev_thumb
        if np.abs(delta).mean() > CUT_THRESHOLD:
            self.cuts += 1
            return True
        step = self.settings.exposure_step
        if step > 0 and abs(float(np.median(delta))) > step:
            self.exposure_resets += 1
            return True
        return False

    def prepare(self, source: np.ndarray) -> np.ndarray:
        """The network's input for ``source`` (itself, or denoised when ``denoise`` is set).

        Measures the flow and confidence that ``__call__`` then reuses for the output."""
        s = self.settings
        self._moved = None
        gray = self._small_gray(source)
        thumb = cv2.resize(gray, (80, 60), interpolation=cv2.INTER_AREA).astype(np.float32)
        fresh = (self._prev_gray is None or self._prev_in is None or self._prev_in.shape != source.shape
                 or self._new_scene(thumb))
        self._prev_thumb = thumb
        if fresh:
            self._prev_out = None
            self._step = _Step(source)
            self._prev_in, self._prev_gray, self._trust = source, gray, None
            return source
        k, window = s.analysis(source.shape[0])
        flow = raw = self._flow(k).calc(gray, self._prev_gray, None)  # for each pixel now: where it was before
        # 1 where nothing moves (under half a frame pixel), else 0; cv2, not numpy masks (a boolean-mask
        # assignment costs more than the whole flow here)
        fx, fy = cv2.split(flow)
        still = self._still(flow, fx, fy, gray, k, window)
        # Where nothing moves, an exact copy: bilinear re-warping of the blended frame by a stray tenth
        # of a pixel every frame would blur it cumulatively. Where things move, bilinear (nearest
        # would jitter the strokes by up to half a pixel a frame: 3–4 points less warp error).
        moving = 1.0 - still
        if s.refine:  # after the still test: a refined flow fits noise too, and zero would win less
            # on a box a little wider than the trust's (5×5 at a quarter size; 3×3 let ghosting rise 1.00 → 1.08)
            fx, fy = cv2.split(_refine(flow, gray, self._prev_gray, window + 2))
        flow = cv2.merge([cv2.multiply(fx, moving), cv2.multiply(fy, moving)])
        warped_gray = cv2.remap(self._prev_gray, flow, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        conf = self._confidence(flow, raw, gray, warped_gray, k, window)
        # rects of what moves, grown by one analysis pixel: every frame pixel whose interpolated flow is
        # not zero lies in one; the rest of the previous frame is taken as it is
        rects = _plan(cv2.dilate(cv2.compare(still, 1.0, cv2.CMP_LT), np.ones((3, 3), np.uint8)))
        denoised = source
        if s.denoise > 0:
            denoised = self._blend(self._prev_in, source, flow, conf * np.float32(s.denoise), rects)
            self._prev_gray = self._small_gray(denoised)
        else:
            self._prev_gray = gray
        self._prev_in = denoised
        self._step = _Step(source, flow, conf, still, rects)
        return denoised

    def _still(self, flow, fx, fy, gray, k: int, window: int) -> np.ndarray:
        """1 where nothing moves (under half a frame pixel, or where no motion explains the frame as well
        as the measured flow does), else 0."""
        s = self.settings
        still = cv2.threshold(cv2.magnitude(fx, fy), 0.5 / k, 1.0, cv2.THRESH_BINARY_INV)[1]
        if s.zero_wins > 0:
            # ... or where no motion explains this frame as well as the measured flow does: on real
            # footage DIS reports a jittery sub-pixel to pixel motion on still walls and a shaking
            # camera's background, and following it shimmers (static noise −53% → −72% on a real clip)
            warped = cv2.remap(self._prev_gray, flow, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
            flow_misfit = _misfit(cv2.subtract(gray, warped, dtype=cv2.CV_32F), window)
            zero_misfit = _misfit(cv2.subtract(gray, self._prev_gray, dtype=cv2.CV_32F), window)
            # ... and only where what is left is noise (not where an object left: its wake matches
            # no motion, and the flow there is no better)
            noise = float(np.median(flow_misfit[::4, ::4]))
            zero = cv2.min(cv2.compare(zero_misfit, flow_misfit * np.float32(s.zero_wins) + 1.0, cv2.CMP_LE),
                           cv2.compare(zero_misfit, ZERO_NOISE * noise + 1.0, cv2.CMP_LE))
            still = cv2.max(still, zero.astype(np.float32) * np.float32(1 / 255))
        return still

    def _confidence(self, flow, raw, gray, warped_gray, k: int, window: int) -> np.ndarray:
        """How far to trust the past output along the flow, per analysis pixel (0..1)."""
        s = self.settings
        local, floor = _local_change(cv2.subtract(gray, warped_gray, dtype=cv2.CV_32F), window)
        conf = cv2.exp((np.maximum(local - 2.0 * floor, 0.0)) * (-0.6931 / s.tolerance))  # 1 → ½ at tolerance
        # what came in over the frame's edge has no past to blend with (the warp would smear the edge)
        conf[_outside(flow)] = 0.0
        if s.consistency > 0:  # one more DIS at analysis size, ~0.3 ms
            # where the flow back and the flow forth disagree, what is here now was hidden before (a
            # background an object uncovered): DIS then borrows a look-alike patch from nearby, whose
            # past output carries the object's strokes
            fwd = self._flow(k).calc(self._prev_gray, gray, None)
            back_fwd = cv2.remap(fwd, raw, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
            gap = cv2.magnitude(*cv2.split(cv2.add(raw, back_fwd)))
            conf[gap > s.consistency / k] = 0.0
        if s.recover > 0:
            # trust comes back over a few frames where it was lost: right after an object left, the
            # network's strokes near its old edge still change, and the source does not show it
            if self._trust is not None and self._trust.shape == conf.shape:
                conf = cv2.min(conf, self._trust + np.float32(s.recover))
            self._trust = conf
        return conf

    def _blend(self, previous: np.ndarray, current: np.ndarray, flow: np.ndarray, weight: np.ndarray,
               rects: Optional[list[tuple[int, int, int, int]]]) -> np.ndarray:
        """``previous`` moved along ``flow`` (analysis pixels), blended into ``current`` by ``weight``
        (analysis size): ``_warp`` then ``_mix``."""
        return self._mix(self._warp(previous, flow, rects), current, weight)

    def _mix(self, moved: np.ndarray, current: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """One per-pixel blend over the frame (engine/weighted_blend.py), a band of rows per worker."""
        h = current.shape[0]
        k = self.settings.analysis(h)[0]
        n = self._workers()
        out = np.empty_like(current)
        self._run(lambda rows: blend_rows(moved, current, weight, k, out, rows),
                  [(i * h // n, (i + 1) * h // n) for i in range(n)])
        return out

    def _warp(self, previous: np.ndarray, flow: np.ndarray,
              rects: Optional[list[tuple[int, int, int, int]]]) -> np.ndarray:
        """``previous`` moved along ``flow`` (analysis pixels).

        Only inside ``rects`` (analysis x, y, w, h; None: the whole frame) does anything move: there a
        full-resolution map is made and the previous frame resampled; elsewhere it is taken as it is.
        Rects, or bands of the frame, go to ``threads`` workers."""
        h, w = previous.shape[:2]
        k = self.settings.analysis(h)[0]
        sh, sw = flow.shape[:2]
        n = self._workers()
        if rects is None:  # one pass over the frame (no copy, no per-rect overhead), a band per worker
            moved = np.empty_like(previous)
            rects = [(0, i * sh // n, sw, (i + 1) * sh // n - i * sh // n) for i in range(n)]
        else:
            moved = previous.copy() if rects else previous

        def warp(r: tuple[int, int, int, int]) -> None:
            x, y, rw, rh = r
            # the flow in frame pixels, bilinear (one pixel of margin makes the rect's border what a
            # whole-frame resize would give), relative to each pixel's own place: at the frame's edges
            # the flow is carried on, the pixel grid is not clamped (that moved the outer 2 pixels)
            x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + rw + 1, sw), min(y + rh + 1, sh)
            big = cv2.resize(flow[y0:y1, x0:x1] * float(k), (k * (x1 - x0), k * (y1 - y0)),
                             interpolation=cv2.INTER_LINEAR)
            # a frame whose size is not a multiple of k has a few pixels past the analysis grid: the
            # rects at the grid's far edges reach them, the edge's flow carried on
            right, bottom = (w - k * sw if x + rw == sw else 0), (h - k * sh if y + rh == sh else 0)
            if right or bottom:
                big = cv2.copyMakeBorder(big, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
            region = (slice(k * y, k * (y + rh) + bottom), slice(k * x, k * (x + rw) + right))
            rh_full, rw_full = region[0].stop - region[0].start, region[1].stop - region[1].start
            fmap = big[k * (y - y0):k * (y - y0) + rh_full, k * (x - x0):k * (x - x0) + rw_full]
            if x or y:  # a relative map adds the pixel's place in the rect; the source is the whole frame
                fmap = cv2.add(fmap, (float(k * x), float(k * y), 0.0, 0.0))
            # fixed-point maps (1/32 pixel): a third faster than float ones, conversion included
            moved[region] = cv2.remap(previous, *cv2.convertMaps(fmap, None, cv2.CV_16SC2),
                                      cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP, borderMode=cv2.BORDER_REPLICATE)

        self._run(warp, rects)
        return moved

    def _workers(self) -> int:
        return max(1, min(self.settings.threads or (os.cpu_count() or 1), MAX_THREADS))

    def _run(self, fn, items: list) -> None:
        """``fn`` over ``items`` (disjoint regions; OpenCV drops the GIL), on the calling thread plus a pool."""
        n = self._workers()
        if n == 1 or len(items) < 2:
            for item in items:
                fn(item)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(n - 1, thread_name_prefix="stabilize")
        share = [items[i::n] for i in range(n)]
        futures = [self._pool.submit(lambda part=part: [fn(item) for item in part]) for part in share[1:]]
        for item in share[0]:
            fn(item)
        for f in futures:
            f.result()

    def warp_ahead(self) -> None:
        """Move the previous output along this frame's flow now (after ``prepare``), before the network's
        output exists: beside a GPU the pipeline does it on a side thread while the network runs, and
        ``__call__`` is left with the blend alone."""
        step = self._step
        if step is not None and step.flow is not None and self._prev_out is not None:
            self._moved = self._warp(self._prev_out, step.flow, step.rects)

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """The output for this frame: ``stylized`` steadied with the previous output.

        ``source`` is the camera frame given to ``prepare`` (called here if it was not)."""
        if self._step is None or self._step.source is not source:
            self.prepare(source)
        _, flow, conf, still, rects = self._step
        self._step = None
        moved, self._moved = self._moved, None
        out = stylized
        if flow is not None and self._prev_out is not None and self._prev_out.shape == stylized.shape:
            s = self.settings
            share = cv2.addWeighted(still, s.still_strength - s.strength, still, 0.0, s.strength)
            weight = cv2.multiply(conf, share)
            if moved is None:
                moved = self._warp(self._prev_out, flow, rects)
            out = self._mix(moved, stylized, weight)
        self._prev_out = out
        return out
