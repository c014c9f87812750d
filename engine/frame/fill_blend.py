"""The carried frame's fill and blend, in numba: where the warp is trusted, the warped keyframe; elsewhere
the fill (the keyframe's local colour map, moved along the flow, bilinear from the analysis size, applied
to the current grey frame), blended by the trust. NumPy made six full-size float planes for it (~23 ms at
640×480 on one core of a Zen 3); this kernel visits each pixel once and skips the fill where the trust
is whole (0.8 ms then, 7 ms where every pixel is filled). The warp itself stays OpenCV's fixed-point
remap (SIMD, ~1 ms). Compiled on first use (cached on disk), or ahead of it by ``warm_up``.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, boundscheck=False)
def _fill_blend(moved: np.ndarray, gray: np.ndarray, ca: np.ndarray, cb: np.ndarray, conf: np.ndarray, k: int,
                out: np.ndarray, y0: int, y1: int) -> None:
    """``out`` holds ``moved`` already: only the cells not wholly trusted are visited."""
    width = gray.shape[1]
    sh, sw = conf.shape
    for y in range(y0, y1):
        row = min(y // k, sh - 1)
        for col in range(sw):
            c = conf[row, col]
            if c >= np.float32(0.999):
                continue
            # a frame wider than k·sw: the last cell takes the columns left over
            x1 = width if col == sw - 1 else min((col + 1) * k, width)
            for x in range(col * k, x1):
                # the colour map of the pixel's analysis cell: it is box-filtered over 16 frame pixels, so a
                # bilinear fetch bought nothing visible for 4× the time (15 ms at 1280×720 with a fifth filled)
                g = np.float32(gray[y, x])
                for ch in range(3):
                    v = c * np.float32(moved[y, x, ch]) + (1 - c) * (ca[row, col, ch] * g + cb[row, col, ch] * np.float32(255.0))
                    out[y, x, ch] = np.uint8(min(max(v + np.float32(0.5), np.float32(0.0)), np.float32(255.0)))


def fill_blend(moved: np.ndarray, gray: np.ndarray, a: np.ndarray, b: np.ndarray, conf: np.ndarray,
               k: int) -> np.ndarray:
    """``conf·moved + (1 − conf)·(a·gray + b)``: ``moved`` H×W×3 uint8, ``gray`` H×W uint8, the colour map
    ``a``, ``b`` (h×w×3 each) and the trust ``conf`` at 1/k of the size (float32). Drops the GIL."""
    out = moved.copy()  # the trusted cells, as they are (a copy: 2.4 → 0.5 ms at 1280×720, nearly all trusted)
    f32 = (lambda x: np.ascontiguousarray(x, np.float32))
    _fill_blend(moved, gray, f32(a), f32(b), f32(conf), k, out, 0, moved.shape[0])
    return out


def warm_up() -> None:
    """Compile (or load the cached) kernel on a side thread, so the first carried frame does not wait for it."""
    frame, gray = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)
    coef = np.zeros((2, 2, 3), np.float32)
    threading.Thread(target=fill_blend, args=(frame, gray, coef, coef, np.zeros((2, 2), np.float32), 2),
                     name="fill-warm-up", daemon=True).start()
