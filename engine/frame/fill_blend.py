"""The carried frame's fill and blend, in numba: where the warp is trusted, the warped keyframe; elsewhere
the fill (the keyframe's local colour map, moved along the flow, applied to the current grey frame; where
the grey is unlike anything that map saw, the keyframe's palette by grey level), blended by the trust.
NumPy made six full-size float planes for it (~23 ms at 640×480 on one core of a Zen 3); this kernel
visits only the cells not wholly trusted (0.5 ms a 1280×720 frame then, 7 ms where every pixel is filled).
The warp itself stays OpenCV's fixed-point remap (SIMD). Compiled on first use (cached on disk), or ahead
of it by ``warm_up``.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit


SEEN_FLOOR = np.float32(0.03)  # grey spread (0..1) the local map is credited with at the least (sensor noise, flat walls)
SEEN_Z = np.float32(1.0)  # a grey this many spreads from what the local map saw: the whole frame's map takes over


@njit(nogil=True, cache=True, boundscheck=False)
def _fill_blend(moved: np.ndarray, gray: np.ndarray, ca: np.ndarray, cb: np.ndarray, conf: np.ndarray, k: int,
                seen: np.ndarray, palette: np.ndarray, out: np.ndarray, y0: int, y1: int) -> None:
    """``out`` holds ``moved`` already: only the cells not wholly trusted are visited."""
    width = gray.shape[1]
    sh, sw = conf.shape
    for y in range(y0, y1):
        row = min(y // k, sh - 1)
        for col in range(sw):
            c = conf[row, col]
            if c >= np.float32(0.999):
                continue
            m, spread = seen[row, col, 0], seen[row, col, 1] + SEEN_FLOOR
            # a frame wider than k·sw: the last cell takes the columns left over
            x1 = width if col == sw - 1 else min((col + 1) * k, width)
            for x in range(col * k, x1):
                # the colour map of the pixel's analysis cell: it is box-filtered over 16 frame pixels, so a
                # bilinear fetch bought nothing visible for 4× the time (15 ms at 1280×720 with a fifth filled)
                g = np.float32(gray[y, x])
                z = abs(g * np.float32(1 / 255) - m) / spread
                w = np.float32(1.0) if z <= SEEN_Z else (SEEN_Z / z) * (SEEN_Z / z)
                for ch in range(3):
                    fill = w * (ca[row, col, ch] * g + cb[row, col, ch] * np.float32(255.0)) + \
                        (1 - w) * palette[gray[y, x], ch]
                    v = c * np.float32(moved[y, x, ch]) + (1 - c) * fill
                    out[y, x, ch] = np.uint8(min(max(v + np.float32(0.5), np.float32(0.0)), np.float32(255.0)))


def fill_blend(moved: np.ndarray, gray: np.ndarray, a: np.ndarray, b: np.ndarray, conf: np.ndarray, k: int,
               seen: "np.ndarray | None" = None, palette: "np.ndarray | None" = None) -> np.ndarray:
    """``conf·moved + (1 − conf)·fill``: ``moved`` H×W×3 uint8, ``gray`` H×W uint8, the colour map ``a``, ``b``
    (h×w×3 each) and the trust ``conf`` at 1/k of the size (float32). The fill is the local map ``a·gray + b``
    where the grey is like what that map was fitted on (``seen``: its mean and spread, h×w×2, 0..1), and the
    whole frame's ``palette`` (256×3, the colour per grey level, 0..255) where it is not: something new, a cat
    where the keyframe had a flat wall, which the local map would paint the wall's colour. Drops the GIL."""
    out = moved.copy()  # the trusted cells, as they are (a copy: 2.4 → 0.5 ms at 1280×720, nearly all trusted)
    f32 = (lambda x: np.ascontiguousarray(x, np.float32))
    if seen is None:  # the local map everywhere
        seen = np.broadcast_to(np.array([0.5, 1e6], np.float32), conf.shape + (2,))
        palette = np.zeros((256, 3), np.float32)
    _fill_blend(moved, gray, f32(a), f32(b), f32(conf), k, f32(seen), f32(palette), out, 0,
                moved.shape[0])
    return out


def warm_up() -> None:
    """Compile (or load the cached) kernel on a side thread, so the first carried frame does not wait for it."""
    frame, gray = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)
    coef = np.zeros((2, 2, 3), np.float32)
    threading.Thread(target=fill_blend, args=(frame, gray, coef, coef, np.zeros((2, 2), np.float32), 2,
                                              np.zeros((2, 2, 2), np.float32), np.zeros((256, 3), np.float32)),
                     name="fill-warm-up", daemon=True).start()
