"""Carry a keyframe's stylized output to a later source frame along the optical flow.

Where the network cannot run at full size on every frame, it renders full-size keyframes when it can,
and every displayed frame is the newest keyframe moved to the current frame (Deep Feature Flow, Zhu et
al. 2017; VR's reprojection). A full-size render a few frames old, moved by the flow, is much closer to
the full-size render of the current frame than a smaller render of the current frame is (docs/keyframes.md).

Per displayed frame: DIS flow from the current frame to the keyframe's source frame, on grey copies
at 1/``scale`` of the size (the previous frame's flow to the same keyframe starts it, so motion
that grows over many frames is followed), then one fixed-point remap of the keyframe's output.

What the flow cannot know is found per pixel and filled from the current frame: where the keyframe's
source, moved by the flow, does not match the current source (an occlusion, an object that came in,
flow that failed on fast motion), where the flow leads out of the frame, and where the flow to the
keyframe and the flow back disagree (background an object uncovered). The fill is the keyframe's
local colour map applied to the current frame: the guided filter's linear coefficients (He et al.
2010), fitted once per keyframe between its source and its output, moved along the same flow, and
applied to the current grey frame. It keeps the current frame's shapes (a hand where it is now, not
where it was) in the keyframe's local colours and strokes' mean; trust blends the two. Where the colour is
unlike what the local map was fitted on (something new: a cat over a flat wall, which the wall's map paints
the wall's colour), the keyframe's colour table fills instead: its output's mean colour per source colour,
which paints the cat as the keyframe painted things of the cat's colour (docs/keyframes.md, "Something new").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from .stabilize import _local_change, _outside
from .fill_blend import LUT_BINS, fill_blend, paint

FIT_BINS = LUT_BINS // 2  # the colour table is fitted on 16 bins a channel (32: each bin seen too seldom, offline)

FLAGS = cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP
NOISE_FLOOR = 3.0  # levels: the most of the misfit that counts as the sensor's noise
CUT_TRUST = 0.2  # less of the frame than this carried: a cut


@dataclass(frozen=True)
class CarrySettings:
    scale: int = 0  # flow and trust at 1/scale of the frame's size (0: about 430 pixels wide, at least 2)
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST  # DIS's preset (FAST: the same scores, 4× the time)
    refine: int = 0  # DIS's variational refinement iterations (0: its preset's)
    # DIS's finest pyramid level where the analysis is at 1/3 or less (1: half the analysis size; the preset's
    # is 2): the older keyframes of 1280×720 need the finer flow, +0.4–0.6 dB for 1–2 ms (docs/keyframes.md)
    finest_coarse: int = 1
    tolerance: float = 12.0  # levels of local misfit, above the noise floor, that halve the trust
    window: int = 8  # box filter (frame pixels) of the misfit
    consistency: float = 0.0  # frame pixels by which the flow to the keyframe and back may disagree (0: off)
    fill_radius: int = 16  # frame pixels of the fill's colour-map fit
    fill_eps: float = 0.01  # its regulariser (0..1 grey levels squared): flat areas get the mean colour

    def analysis(self, width: int) -> tuple[int, int]:
        """(scale, misfit box in analysis pixels, odd) for frames of this width: the flow's accuracy is
        what carries the strokes (at 1/2 of 640×480, +1 dB over 1/4; at 1/3 of 1280×720, +0.5 dB live over
        1/4, where 1/2 cost the keyframes more than it gained: docs/keyframes.md), its cost grows with the pixels."""
        k = self.scale or max(2, round(width / 430))
        return k, max(3, round(self.window / k) | 1)


class Keyframe(NamedTuple):
    """A full-size render and what carrying it needs, made once when it arrives."""

    index: int  # the source frame it was rendered from
    output: np.ndarray  # H×W×3 uint8, the stylized frame
    gray: np.ndarray  # its source, grey at analysis size (uint8)
    coef: tuple[np.ndarray, np.ndarray]  # the fill's colour map at analysis size: (a, b), h×w×3 float32 each
    seen: np.ndarray  # the colour the map was fitted on, per analysis pixel: (mean R, G, B, spread) 0..1, h×w×4 float32
    lut: np.ndarray  # the output's colour per source colour bin (LUT_BINS³×3 float32, 0..255): what fills something new
    tag: object = None  # what it was rendered for (the look)


PALETTE_BINS = 32


def _palette(gray: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The output's mean colour per grey level (256×3, 0..255), from 32 bins, empty ones interpolated: the
    style's palette as the picture's brightness picks it (bright things went yellow, dark ones blue), what
    the colour table falls back on for a colour the keyframe did not have."""
    bins = gray.reshape(-1).astype(np.intp) * PALETTE_BINS // 256
    count = np.bincount(bins, minlength=PALETTE_BINS)
    filled = count > 0
    centres = (np.arange(PALETTE_BINS) + 0.5) * (256 / PALETTE_BINS) - 0.5
    palette = np.empty((256, 3), np.float32)
    for ch in range(3):
        mean = np.bincount(bins, out[..., ch].reshape(-1), PALETTE_BINS)[filled] / count[filled]
        palette[:, ch] = np.interp(np.arange(256), centres[filled], mean)
    return palette


LUT_PRIOR = 4.0  # analysis pixels: a colour bin seen less than this leans on the palette by grey level
LUT_SPREAD = 0.5  # the weight of a bin's 26 neighbours in its colour: an unseen shade of a seen colour takes theirs


def _bin_grey(nb: int) -> np.ndarray:
    """The grey level of each colour bin's centre (nb³, the fit's bin order): where a bin takes the palette."""
    centre = (np.arange(nb) + 0.5) * (256 / nb)
    r, g, b = np.meshgrid(centre, centre, centre, indexing="ij")
    return np.clip(0.299 * r + 0.587 * g + 0.114 * b, 0, 255).astype(np.intp).reshape(-1)


_BIN_GREY = _bin_grey(FIT_BINS)  # once, not per keyframe


def _neighbours(table: np.ndarray) -> np.ndarray:
    """The sum over each bin's 3×3×3 neighbourhood (the bin itself included), per channel."""
    out = table
    for axis in range(3):
        pad = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in range(out.ndim)])
        out = sum(np.take(pad, range(i, i + table.shape[axis]), axis=axis) for i in range(3))
    return out


def _colour_table(small: np.ndarray, out: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The output's mean colour per source colour, fitted at analysis size on FIT_BINS³ bins and returned
    at LUT_BINS³ (×3, 0..255): the network's colour follows the source's colour, not only its grey (a yellow
    cat and a blue wall of one grey are painted apart). A bin's neighbours count for LUT_SPREAD of it (the
    finer table is linear between bins, so an empty bin beside a seen one would pull toward the palette);
    bins seen rarely lean on the palette at their centre's grey, bins far from all seen colours take it."""
    nb = FIT_BINS
    q = small.astype(np.intp) * nb // 256
    cells = ((q[..., 0] * nb + q[..., 1]) * nb + q[..., 2]).reshape(-1)
    sums = np.stack([np.bincount(cells, minlength=nb ** 3)]
                    + [np.bincount(cells, out[..., ch].reshape(-1), nb ** 3) for ch in range(3)], axis=1)
    sums = sums.reshape(nb, nb, nb, 4)
    sums = ((1 - LUT_SPREAD) * sums + LUT_SPREAD * _neighbours(sums)).reshape(-1, 4)
    count = sums[:, :1]
    share = count / (count + LUT_PRIOR)
    table = (share * sums[:, 1:] / np.maximum(count, 1e-6) + (1 - share) * palette[_BIN_GREY]).reshape(nb, nb, nb, 3)
    for axis in range(3):
        table = _twice_as_fine(table, axis)
    return np.ascontiguousarray(table.reshape(-1, 3), np.float32)


def _twice_as_fine(table: np.ndarray, axis: int) -> np.ndarray:
    """The table at twice the bins along ``axis``, linear between the old bins' centres (the kernel reads
    the nearest bin: 8 levels a step, trilinear reading cost 2.5 ms more a 1280×720 frame)."""
    n = table.shape[axis]
    at = (lambda idx: np.take(table, np.clip(idx, 0, n - 1), axis=axis))
    i = np.arange(n)
    even, odd = 0.75 * table + 0.25 * at(i - 1), 0.75 * table + 0.25 * at(i + 1)
    return np.stack([even, odd], axis=axis + 1).reshape(table.shape[:axis] + (2 * n,) + table.shape[axis + 1:])


def _shrink(img: np.ndarray, k: int) -> np.ndarray:
    """``img`` at 1/k, each analysis pixel the mean of k×k frame pixels (the rows and columns past the last
    whole cell left out): OpenCV's area resize by a whole factor, 2.5× faster than by 1280/426."""
    h, w = img.shape[:2]
    return cv2.resize(img[:h // k * k, :w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA)


def _grow(small: np.ndarray, k: int, size: tuple[int, int]) -> np.ndarray:
    """``small`` (analysis cells of k×k frame pixels) bilinear at the frame's ``size`` (h, w); the rows and
    columns past the last whole cell take the edge's values."""
    h, w = size
    sh, sw = small.shape[:2]
    big = np.empty((h, w) + small.shape[2:], small.dtype)
    cv2.resize(small, (k * sw, k * sh), dst=big[:k * sh, :k * sw], interpolation=cv2.INTER_LINEAR)
    big[:, k * sw:] = big[:, k * sw - 1:k * sw]
    big[k * sh:] = big[k * sh - 1:k * sh]
    return big


def _box(img: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(img, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


class Carrier:
    """Moves keyframes to the current frame. Not thread-safe: one display loop owns it."""

    def __init__(self, settings: CarrySettings = CarrySettings()):
        self.settings = settings
        self._dis: dict[int, cv2.DISOpticalFlow] = {}
        self._flows: dict[int, np.ndarray] = {}  # keyframe index → the last frame's flow to it (DIS's start)
        self.trusted = 1.0  # share of the last frame's pixels taken from the keyframe (the rest filled)

    def _flow(self, k: int) -> cv2.DISOpticalFlow:
        if k not in self._dis:
            dis = cv2.DISOpticalFlow_create(self.settings.preset)
            if self.settings.refine:
                dis.setVariationalRefinementIterations(self.settings.refine)
            if k >= 3:
                dis.setFinestScale(self.settings.finest_coarse)
            self._dis[k] = dis
        return self._dis[k]

    def keyframe(self, index: int, source: np.ndarray, output: np.ndarray, tag: object = None) -> Keyframe:
        """What carrying ``output`` (rendered from ``source``) needs: made once, off the display loop."""
        s = self.settings
        k = s.analysis(source.shape[1])[0]
        gray = _shrink(cv2.cvtColor(source, cv2.COLOR_RGB2GRAY), k)  # what DIS takes
        guide = gray.astype(np.float32) * np.float32(1 / 255)
        out = _shrink(output, k).astype(np.float32) * np.float32(1 / 255)
        r = max(1, round(s.fill_radius / k))
        mean_i = _box(guide, r)
        var_i = _box(guide * guide, r) - mean_i * mean_i
        mean_p = _box(out, r)
        cov = _box(out * guide[..., None], r) - mean_p * mean_i[..., None]
        a = cov / (var_i + np.float32(s.fill_eps))[..., None]
        b = mean_p - a * mean_i[..., None]
        coef = (np.ascontiguousarray(_box(a, r), np.float32), np.ascontiguousarray(_box(b, r), np.float32))
        small = _shrink(source, k)
        colour = small.astype(np.float32) * np.float32(1 / 255)
        mean_c = _box(colour, r)
        spread = np.sqrt(np.maximum((_box(colour * colour, r) - mean_c * mean_c).sum(axis=2), 0.0))
        seen = np.dstack([mean_c, spread]).astype(np.float32)
        out = out * np.float32(255)
        lut = _colour_table(small, out, _palette(gray, out))
        return Keyframe(index, output, gray, coef, seen, lut, tag)

    def carry(self, key: Keyframe, source: np.ndarray, index: int) -> np.ndarray:
        """The frame to show for ``source`` (source frame ``index``): ``key`` moved to it, filled where
        the move cannot be trusted. (A fade from the keyframe before, both carried, was tried: the second
        carry cost the display loop frames, 5–7 → 39–44 repeats in 240, for no less flicker; steady video
        on the frames shown smooths a new one's arrival: docs/keyframes.md.)"""
        full = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)  # once: the flow's (at analysis size) and the fill's
        out, self.trusted = self._one(key, source, full, index)
        self._flows = {key.index: self._flows[key.index]} if key.index in self._flows else {}
        return out

    def _one(self, key: Keyframe, source: np.ndarray, full: np.ndarray, index: int) -> tuple[np.ndarray, float]:
        """``key`` carried to this frame, and the share of it trusted."""
        if key.index == index:
            return key.output, 1.0
        s = self.settings
        h, w = source.shape[:2]
        k, window = s.analysis(w)
        gray = _shrink(full, k)
        init = self._flows.get(key.index)
        # DIS takes a flow of the right size as its start: the last frame's flow to the same keyframe
        flow = self._flow(k).calc(gray, key.gray, None if init is None else init.copy())
        self._flows[key.index] = flow
        moved_gray = cv2.remap(key.gray, flow, None, FLAGS, borderMode=cv2.BORDER_REPLICATE)
        local, floor = _local_change(cv2.subtract(gray, moved_gray, dtype=cv2.CV_32F), window)
        # the floor is the sensor's noise, a few levels: across a cut everything misfits, and a floor
        # taken from that would trust it all
        floor = min(floor, NOISE_FLOOR)
        conf = cv2.exp(np.maximum(local - 2.0 * floor, 0.0) * np.float32(-0.6931 / s.tolerance))
        conf[_outside(flow)] = 0.0
        if s.consistency > 0:
            back = self._flow(k).calc(key.gray, gray, None)
            gap = cv2.magnitude(*cv2.split(cv2.add(flow, cv2.remap(back, flow, None, FLAGS,
                                                                  borderMode=cv2.BORDER_REPLICATE))))
            conf[gap > s.consistency / k] = 0.0
        conf = cv2.erode(conf, np.ones((3, 3), np.uint8))  # a distrusted pixel's neighbours are suspect too
        trusted = float(conf.mean())
        if trusted < CUT_TRUST:
            # a cut (or motion the flow lost): nothing of the keyframe's picture belongs here; its colour
            # table paints this frame until a keyframe of it comes (a local map would carry the old layout;
            # one linear map per channel, before, scored 1–5 dB further from the new scene's render)
            return paint(source, key.lut), 0.0
        big = _grow(flow * np.float32(k), k, (h, w))
        # fixed-point maps (1/32 pixel): a third faster than float ones, the conversion included
        moved = cv2.remap(key.output, *cv2.convertMaps(big, None, cv2.CV_16SC2), FLAGS,
                          borderMode=cv2.BORDER_REPLICATE)
        if trusted > 0.999:
            return moved, trusted
        # the colour map is read along the flow, nearest, in the kernel (for the cells it fills; remapping it
        # whole, bilinear, scored the same for 1.5 ms more a 1280×720 frame)
        return fill_blend(moved, source, full, *key.coef, conf, k, key.seen, key.lut, flow, overwrite=True), trusted
