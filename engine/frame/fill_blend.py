"""The carried frame's fill and blend, in numba: where the warp is trusted, the warped keyframe; elsewhere
the fill (the keyframe's local colour map, moved along the flow, applied to the current grey frame; where
the colour is unlike anything that map saw, the keyframe's colours by source colour), blended by the trust.
NumPy made six full-size float planes for it (~23 ms at 640×480 on one core of a Zen 3); this kernel
visits only the cells not wholly trusted (0.5 ms a 1280×720 frame then, 7 ms where every pixel is filled).
The warp itself stays OpenCV's fixed-point remap (SIMD). Compiled on first use (cached on disk), or ahead
of it by ``warm`` (engine/frame/kernels.py).
"""
from __future__ import annotations

import numpy as np
from numba import njit


SEEN_FLOOR = np.float32(0.03)  # colour spread (0..1) the local map is credited with at the least (sensor noise, flat walls)
SEEN_Z = np.float32(1.0)  # a colour this many spreads from what the local map saw: the keyframe's colour table takes over
LUT_SHIFT_BITS = 5  # the colour table as read: 32 bins a channel, 8 levels each (resampled from 16, see carry.py)
LUT_BINS = 1 << LUT_SHIFT_BITS


@njit(nogil=True, cache=True, boundscheck=False, fastmath=True)
def _fill_blend(moved: np.ndarray, source: np.ndarray, gray: np.ndarray, ca: np.ndarray, cb: np.ndarray,
                conf: np.ndarray, k: int, seen: np.ndarray, lut: np.ndarray, flow: np.ndarray, out: np.ndarray,
                y0: int, y1: int) -> None:
    """``out`` holds ``moved`` already: only the cells not wholly trusted are visited. A cell's values are
    read once and the channels written out by hand: 5.2 → 3.2 ms a 1280×720 frame with 42 % of it filled.
    The colour table is read at its nearest bin, and only where it counts (read trilinearly, 2.5 ms more a
    1280×720 frame with 14 % of it from the table). ``flow`` (sh×sw×2, or 1×1×2 for none): the cell the
    colour map is read at (nearest), here for the cells visited: three remaps of the whole map cost more."""
    width = gray.shape[1]
    sh, sw = conf.shape
    ch, cw = ca.shape[0], ca.shape[1]
    moving = flow.shape[0] == sh and flow.shape[1] == sw
    nb = 1 << LUT_SHIFT_BITS
    to_unit, one, half = np.float32(1 / 255), np.float32(1.0), np.float32(0.5)
    lo, hi = np.float32(0.0), np.float32(255.0)
    shift = 8 - LUT_SHIFT_BITS
    z_max2 = SEEN_Z * SEEN_Z
    for y in range(y0, y1):
        row = min(y // k, sh - 1)
        for col in range(sw):
            c = conf[row, col]
            if c >= np.float32(0.999):
                continue
            r, q = row, col
            if moving:  # the keyframe's cell this one came from, nearest, clamped (the edge's map carried on)
                r = min(max(np.int64(np.floor(row + flow[row, col, 1] + half)), 0), ch - 1)
                q = min(max(np.int64(np.floor(col + flow[row, col, 0] + half)), 0), cw - 1)
            m0, m1, m2 = seen[r, q, 0], seen[r, q, 1], seen[r, q, 2]
            per_spread = one / (seen[r, q, 3] + SEEN_FLOOR)
            a0, a1, a2 = ca[r, q, 0], ca[r, q, 1], ca[r, q, 2]
            b0, b1, b2 = cb[r, q, 0] * hi, cb[r, q, 1] * hi, cb[r, q, 2] * hi
            d = one - c  # the fill's share
            # a frame wider than k·sw: the last cell takes the columns left over
            x1 = width if col == sw - 1 else min((col + 1) * k, width)
            for x in range(col * k, x1):
                # the colour map of the pixel's analysis cell: it is box-filtered over 16 frame pixels, so a
                # bilinear fetch bought nothing visible for 4× the time (15 ms at 1280×720 with a fifth filled)
                g = np.float32(gray[y, x])
                s0, s1, s2 = source[y, x, 0], source[y, x, 1], source[y, x, 2]
                rd, gr, bl = np.float32(s0), np.float32(s1), np.float32(s2)
                e0, e1, e2 = rd * to_unit - m0, gr * to_unit - m1, bl * to_unit - m2
                z2 = (e0 * e0 + e1 * e1 + e2 * e2) * per_spread * per_spread  # z², no root needed
                w = one if z2 <= z_max2 else z_max2 / z2
                f0, f1, f2 = w * (a0 * g + b0), w * (a1 * g + b1), w * (a2 * g + b2)
                p = one - w
                if p > np.float32(0.004):  # the colour table, its nearest bin (it was made smooth for this)
                    cell = ((np.int64(s0) >> shift) * nb + (np.int64(s1) >> shift)) * nb + (np.int64(s2) >> shift)
                    l0, l1, l2 = lut[cell, 0], lut[cell, 1], lut[cell, 2]
                    f0 += p * l0
                    f1 += p * l1
                    f2 += p * l2
                v0 = c * np.float32(moved[y, x, 0]) + d * f0 + half
                v1 = c * np.float32(moved[y, x, 1]) + d * f1 + half
                v2 = c * np.float32(moved[y, x, 2]) + d * f2 + half
                out[y, x, 0] = np.uint8(min(max(v0, lo), hi))
                out[y, x, 1] = np.uint8(min(max(v1, lo), hi))
                out[y, x, 2] = np.uint8(min(max(v2, lo), hi))


def fill_blend(moved: np.ndarray, source: np.ndarray, gray: np.ndarray, a: np.ndarray, b: np.ndarray,
               conf: np.ndarray, k: int, seen: "np.ndarray | None" = None,
               lut: "np.ndarray | None" = None, flow: "np.ndarray | None" = None,
               overwrite: bool = False) -> np.ndarray:
    """``conf·moved + (1 − conf)·fill``: ``moved`` and ``source`` H×W×3 uint8 (the warped keyframe, the current
    frame), ``gray`` the current frame's grey, the colour map ``a``, ``b`` (h×w×3 each) and the trust ``conf``
    at 1/k of the size (float32). The fill is the local map ``a·gray + b`` where the colour is like what that
    map was fitted on (``seen``: its mean colour and spread, h×w×4, 0..1), and the keyframe's colour table
    ``lut`` (LUT_BINS³×3, its output's colour per source colour bin, 0..255) where it is not: something new, a
    yellow cat where the keyframe had a blue wall of the same grey, which the local map would paint the
    wall's colour. ``flow`` (h×w×2, analysis pixels, relative): ``a``, ``b`` and ``seen`` are the keyframe's, each
    cell reads them where the flow leads (nearest). ``overwrite``: the result goes into ``moved`` (the caller's
    own, 0.5 ms a 1280×720 frame). Drops the GIL."""
    out = moved if overwrite else moved.copy()  # the trusted cells, as they are
    f32 = (lambda x: np.ascontiguousarray(x, np.float32))
    if seen is None:  # the local map everywhere
        seen = np.broadcast_to(np.array([0.5, 0.5, 0.5, 1e6], np.float32), conf.shape + (4,))
        lut = np.zeros((LUT_BINS ** 3, 3), np.float32)
    flow = np.zeros((1, 1, 2), np.float32) if flow is None else f32(flow)
    _fill_blend(moved, source, gray, f32(a), f32(b), f32(conf), k, f32(seen), f32(lut), flow, out, 0, moved.shape[0])
    return out


def paint(source: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``source`` (H×W×3 uint8) painted by the colour table alone: each pixel its colour's bin."""
    shift = 8 - LUT_SHIFT_BITS
    s = source.astype(np.intp) >> shift
    cells = (s[..., 0] << (2 * LUT_SHIFT_BITS)) | (s[..., 1] << LUT_SHIFT_BITS) | s[..., 2]
    return np.clip(lut + np.float32(0.5), 0, 255).astype(np.uint8)[cells]


def warm() -> None:
    """Compile (or load the cached) kernel now (engine/frame/kernels.py calls it ahead of the first frame)."""
    frame, gray = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)
    coef = np.zeros((2, 2, 3), np.float32)
    fill_blend(frame, frame, gray, coef, coef, np.zeros((2, 2), np.float32), 2, np.zeros((2, 2, 4), np.float32),
               np.zeros((LUT_BINS ** 3, 3), np.float32))
