"""numba's kernels are compiled ahead of the frames, the display loop's first (engine/frame/kernels.py)."""
import os
import subprocess
import sys
import threading
from pathlib import Path

from engine.backends import create_backend
from engine.live.pipeline import Pipeline, StyleSettings
from engine.sinks.base import NullSink
from engine.video.capture import SourceSettings, StillSource
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

# In a process with an empty numba cache (a new install): when the display loop's kernels are reported
# ready, they are compiled and the upscale's are not yet (its compile takes seconds); then every kernel
# lands in the cache, so the next process loads them.
FIRST_START = """
from engine.frame import fill_blend, kernels, upscale, weighted_blend
ready = kernels.warm_up()
assert ready.wait(300)
display = all(k.signatures for k in (fill_blend._fill_blend, weighted_blend._blend_rows))
later = bool(upscale._apply.signatures)
kernels.warm_all()
print(display, later)
"""


def test_a_first_start_compiles_the_display_loops_kernels_first_and_caches_all(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", FIRST_START], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "False"]
    cached = {p.name.split("-")[0] for p in tmp_path.rglob("*.nbi")}
    assert {"fill_blend._fill_blend", "weighted_blend._blend_rows", "upscale._apply",
            "upscale._fit_rows"} <= cached


def test_the_first_frame_waits_for_the_kernels_then_frames_flow(pack):
    """Before, a first start showed one frame and then stood still while numba compiled behind it."""
    from skimage import data

    ready = threading.Event()
    source = StillSource(SourceSettings("image", fps=30.0), data.astronaut()[:240, :320].copy())
    pipe = Pipeline(source, create_backend("onnxruntime", pack=pack), pack, [NullSink()],
                    StyleSettings(style="7", stabilize=True), keyframes="on", kernels_ready=ready)
    results = []
    worker = threading.Thread(target=lambda: results.extend(pipe.step() for _ in range(3)), daemon=True)
    worker.start()
    try:
        assert not wait_until(lambda: results, timeout=1.0)  # no frame before the kernels are ready
        ready.set()
        assert wait_until(lambda: len(results) == 3, timeout=60.0)
    finally:
        ready.set()
        worker.join(60.0)
        pipe.close()
    assert [r.mode for r in results] == ["keyframes"] * 3
