"""Every numba kernel of the frame path, compiled (or loaded from numba's disk cache) ahead of the frames
that need them, on one side thread, in the order live frames need them.

numba compiles one kernel at a time (one lock), and a caller waits for a compile under way. On a first
start (no cache: a new install, or a kernel's source changed) the upscale's kernels take about 5 s (Zen 4);
when they held the lock first, the first carried frame waited behind them and the picture stood still for
7 s after it (docs/keyframes.md, "A first start"). So the carry's and steady video's kernels go first.
``python -m engine.frame.kernels`` compiles them all now: the Makefile's set-up does, so a first start loads them.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Optional

from . import fill_blend, upscale, weighted_blend

log = logging.getLogger(__name__)

DISPLAY = (fill_blend.warm, weighted_blend.warm)  # the display loop's: the carry's fill, steady video's blend
LATER = (upscale.warm,)  # a governor level's (the edge-aware upscale)


def warm_all(display_ready: Optional[threading.Event] = None) -> None:
    """Compile or load every kernel on this thread, the display loop's first (``display_ready`` is set
    once they are, or could not be: the frames then compile what they need themselves)."""
    try:
        for group in (DISPLAY, LATER):
            for warm in group:
                t0 = time.perf_counter()
                warm()
                log.debug("%s's kernels ready in %.2f s", warm.__module__, time.perf_counter() - t0)
            if display_ready is not None:
                display_ready.set()
    except Exception:  # noqa: BLE001 - a kernel that fails here fails again, reported, where a frame calls it
        log.exception("numba could not compile a kernel ahead of the frames")
    finally:
        if display_ready is not None:
            display_ready.set()


def warm_up() -> threading.Event:
    """``warm_all`` on a side thread, started now; the event is set when the display loop's kernels are ready
    (a live session starts it as it opens, and its first frame waits for it: on a first start, about 1.5 s)."""
    ready = threading.Event()
    threading.Thread(target=warm_all, args=(ready,), name="kernels-warm-up", daemon=True).start()
    return ready


if __name__ == "__main__":
    warm_all()
