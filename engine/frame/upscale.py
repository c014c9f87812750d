"""The edge-aware upscale's guided filter (He et al. 2010; fast variant, He & Sun 2015) in numba.

The same arithmetic as the OpenCV calls it replaced (``tests/test_cpu_fast.py`` keeps those as the
reference): the fit runs row by row through two small rings of horizontally summed rows (the moments,
then the coefficients), vertical sums sliding, so no full-size float image but A and B is made; then
OpenCV upsamples A and B and one kernel writes ``A·guide + B`` as uint8. At 640×480 on one core:
0.81–0.84× the OpenCV version's time at render scales 0.5–0.62, 0.6× at 0.75–0.875. Compiled on first
use (cached on disk), or ahead of it by ``warm`` (engine/frame/kernels.py).
"""
from __future__ import annotations

from concurrent.futures import Executor
from typing import Optional

import cv2
import numpy as np
from numba import njit


@njit(nogil=True, cache=True, boundscheck=False, inline="always")
def _reflect(i: int, n: int) -> int:
    """OpenCV's default border (BORDER_REFLECT_101): -1 → 1, n → n - 2."""
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * n - 2 - i
    return i


@njit(nogil=True, cache=True, boundscheck=False)
def _hsum(src: np.ndarray, c: int, r: int, out: np.ndarray) -> None:
    """Sums over 2r+1 neighbouring pixels of one row (``src``: w·c floats, c channels interleaved),
    reflect-101 at the ends. The interior as whole shifted slices: indices that start at 0 are what
    lets LLVM vectorize (a computed index that might be negative makes numba wrap it, 10× slower)."""
    w = src.shape[0] // c
    lo, hi = min(r, w), max(w - r, min(r, w))  # pixels whose window stays inside the row
    n = (hi - lo) * c
    inner = out[lo * c:hi * c]
    inner[:] = src[(lo - r) * c:(lo - r) * c + n]
    for dx in range(-r + 1, r + 1):
        shifted = src[(lo + dx) * c:(lo + dx) * c + n]
        for k in range(n):
            inner[k] += shifted[k]
    for x in range(w):
        if lo <= x < hi:
            continue
        for ch in range(c):
            s = np.float32(0.0)
            for dx in range(-r, r + 1):
                s += src[_reflect(x + dx, w) * c + ch]
            out[x * c + ch] = s


@njit(nogil=True, cache=True, boundscheck=False)
def _vsum(ring: np.ndarray, y: int, h: int, r: int, out: np.ndarray) -> None:
    """Sum of rows y-r … y+r (reflect-101) of a ring that holds row i in slot i % len(ring)."""
    n = ring.shape[0]
    out[:] = ring[_reflect(y - r, h) % n]
    for dy in range(-r + 1, r + 1):
        row = ring[_reflect(y + dy, h) % n]
        for j in range(out.shape[0]):
            out[j] += row[j]


@njit(nogil=True, cache=True, boundscheck=False)
def _slide(ring: np.ndarray, y: int, h: int, r: int, total: np.ndarray, fresh: bool) -> None:
    """``total``: the sum of rows y-r … y+r, given it holds that of rows y-1-r … y-1+r: the row that
    entered added, the one that left taken off (float32 drift over a frame's rows stays under 1e-5 of
    the sums); near the edges, where reflected rows repeat, or ``fresh`` (a band's first row), summed
    afresh."""
    if fresh or y - r - 1 < 0 or y + r > h - 1:
        _vsum(ring, y, h, r, total)
        return
    n = ring.shape[0]
    entered, left = ring[(y + r) % n], ring[(y - r - 1) % n]
    for j in range(total.shape[0]):
        total[j] += entered[j] - left[j]


@njit(nogil=True, cache=True, boundscheck=False)
def _fit_rows(p: np.ndarray, g: np.ndarray, r: int, eps: float, ab: np.ndarray, y0: int, y1: int) -> None:
    """Rows y0 … y1-1 of A and B (``ab``, h×w×6) of the guided filter: per window the least-squares fit
    p ≈ a·g + b of each channel, then a and b averaged over the same windows. Row by row through two
    rings of 2r+1 horizontally summed rows (the moments g, g², p, p·g, then the coefficients), so every
    pass works on rows in cache and only A and B go out to memory. A band needs the 2r rows either side
    of it (its coefficients' windows' moments): bands of a frame are independent."""
    h, w = g.shape
    n = 2 * r + 2  # ring slots: the window's rows and the one that just left it
    norm = np.float32(1.0 / ((2 * r + 1) * (2 * r + 1)))
    e = np.float32(eps)
    moments = np.empty(w * 8, np.float32)
    ring1 = np.empty((n, w * 8), np.float32)
    ring2 = np.empty((n, w * 6), np.float32)
    m = np.empty(w * 8, np.float32)
    co = np.empty(w * 6, np.float32)
    acc = np.empty(w * 6, np.float32)
    moments2, m2, co2 = moments.reshape(w, 8), m.reshape(w, 8), co.reshape(w, 6)  # [pixel, channel] views
    first = max(y0 - r, 0)  # the first coefficient row the band needs (rows above 0 reflect into it)
    last = min(y1 - 1 + r, h - 1)
    made = max(first - r, 0) - 1  # the last input row whose moments are in ring1
    for y in range(first, y1 + r):
        if y <= last:  # the coefficients of row y
            while made < min(y + r, h - 1):
                made += 1
                grow, prow = g[made], p[made]
                for x in range(w):
                    gv = np.float32(grow[x])
                    moments2[x, 0] = gv
                    moments2[x, 1] = gv * gv
                    for c in range(3):
                        pv = np.float32(prow[x, c])
                        moments2[x, 2 + c] = pv
                        moments2[x, 5 + c] = pv * gv
                _hsum(moments, 8, r, ring1[made % n])
            _slide(ring1, y, h, r, m, y == first)
            for x in range(w):
                mi = m2[x, 0] * norm
                inv = np.float32(1.0) / (m2[x, 1] * norm - mi * mi + e)
                for c in range(3):
                    mp = m2[x, 2 + c] * norm
                    a = (m2[x, 5 + c] * norm - mi * mp) * inv
                    co2[x, c] = a
                    co2[x, 3 + c] = mp - a * mi
            _hsum(co, 6, r, ring2[y % n])
        if y0 <= y - r < y1:  # A and B of row y - r: its window's coefficient rows are all made
            _slide(ring2, y - r, h, r, acc, y - r == y0)
            out = ab[y - r].reshape(w * 6)
            for j in range(w * 6):
                out[j] = acc[j] * norm


@njit(nogil=True, cache=True, boundscheck=False)
def _apply(ab: np.ndarray, guide: np.ndarray, out: np.ndarray, y0: int, y1: int) -> None:
    """``out = A·guide + B`` (A, B: ``ab`` at the guide's size) in rows y0 … y1-1, rounded and clipped
    to uint8."""
    w = guide.shape[1]
    for y in range(y0, y1):
        coef, g, o = ab[y], guide[y], out[y]
        for x in range(w):
            gv = np.float32(g[x])
            for c in range(3):
                v = coef[x, c] * gv + coef[x, 3 + c] + np.float32(0.5)
                o[x, c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


def guided_filter_upscale(stylized_small: np.ndarray, guide_small: np.ndarray, guide: np.ndarray, radius: int,
                          eps: float, pool: Optional[Executor] = None) -> np.ndarray:
    """H×W×3 uint8: ``stylized_small`` (h×w×3 uint8) fitted to ``guide_small`` (h×w uint8) over
    (2·radius+1)² windows, the coefficients averaged the same way, upsampled and applied to ``guide``
    (H×W uint8). ``eps`` in 0..255² units. Drops the GIL. ``pool``: the fit and the apply split in two
    bands of rows, one on the pool, one here (where a second core is free: the same frame)."""
    radius = max(1, min(radius, (min(guide_small.shape) - 1) // 2))  # a window wider than the picture reflects twice
    p, g = np.ascontiguousarray(stylized_small), np.ascontiguousarray(guide_small)
    hs, ws = g.shape
    ab = np.empty((hs, ws, 6), np.float32)
    _halves(pool, hs, lambda y0, y1: _fit_rows(p, g, radius, eps, ab, y0, y1))
    h, w = guide.shape
    out = np.empty((h, w, 3), np.uint8)
    # OpenCV's resize for the upsampling: SIMD, 1.7x faster than a gather in numba
    big, full = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR), np.ascontiguousarray(guide)
    _halves(pool, h, lambda y0, y1: _apply(big, full, out, y0, y1))
    return out


def _halves(pool: Optional[Executor], h: int, band) -> None:
    """``band(y0, y1)`` over rows 0 … h-1: in two halves, the first on ``pool``, or at once without one."""
    if pool is None or h < 8:
        band(0, h)
        return
    first = pool.submit(band, 0, h // 2)
    band(h // 2, h)
    first.result()


def warm() -> None:
    """Compile (or load the cached) kernels now (engine/frame/kernels.py calls it ahead of the first frame)."""
    small, guide = np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8), np.uint8)
    guided_filter_upscale(small, guide[:4, :4], guide, 1, 1.0)
