"""Steadiness of the stabilizer on webcam-like footage (engine/video/footage.py) and on the demo clip.

For each clip and style: warp error, static-region temporal noise and ghosting, plain and steadied,
and the stabilizer's time per frame. Prints a table and writes JSON (--json).

    python scripts/stabilize_eval.py --styles worst,3,7,19 --size 640x480 --json docs/stabilize.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.backends import create_backend  # noqa: E402
from engine.video.demo import demo_clip  # noqa: E402
from lab.evaluate import WarpError, steadiness  # noqa: E402
from engine.video.footage import FootageSettings, camera_noise, compress, footage_clip, real_clip  # noqa: E402
from engine.frame.stabilize import Stabilizer, StabilizerSettings  # noqa: E402
from engine.styles.packs import StylePack  # noqa: E402


def read_clip(path: Path, size, limit: int, step: int = 1) -> list[np.ndarray]:
    """Up to ``limit`` frames, every ``step``-th (a real 30 fps clip read as 15 or 10 fps), at ``size``."""
    cap, frames, i = cv2.VideoCapture(str(path)), [], 0
    while len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA))
        i += 1
    cap.release()
    return frames


def webcam_like(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """A clean clip as a webcam would send it: engine/video/footage.py's sensor noise, then its MJPEG quality."""
    s, rng = FootageSettings(), np.random.default_rng(seed)
    return [compress(camera_noise(f.astype(np.float32), rng, s), s.jpeg_quality) for f in frames]


def load_clip(clip: str, size, limit: int, seed: int) -> list[np.ndarray]:
    """``demo``, ``SCENE:FPS`` (engine/video/footage.py), or a real clip, ``real:NAME`` (engine/video/footage.py's
    REAL_CLIPS) or a video file, each as ``CLIP[@STEP][+noise]``: every STEP-th frame, webcam noise added."""
    if clip == "demo":
        return read_clip(demo_clip(), size, limit)
    noisy = clip.endswith("+noise")
    name, _, step = clip.removesuffix("+noise").partition("@")
    if name.startswith("real:"):
        path = real_clip(name.removeprefix("real:"))
    elif ":" in name and not Path(name).exists():
        scene, fps = name.split(":")
        return read_clip(footage_clip(FootageSettings(scene=scene, fps=float(fps), size=size, seed=seed)), size, limit)
    else:
        path = Path(name)
    frames = read_clip(path, size, limit, int(step or 1))
    return webcam_like(frames, seed) if noisy else frames


def worst_style(backend, pack, frames) -> str:
    """The stock style whose plain output flickers most (warp error) on these frames."""
    scores = {}
    for sid in range(pack.config.num_styles):
        w, we = pack.weights(str(sid)), WarpError()
        for f in frames:
            we.add(f, backend.run(f, w))
        scores[str(sid)] = we.value
    return max(scores, key=scores.get)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", default="person:30,person:15,cat:30,demo",
                   help="comma list of demo, SCENE:FPS (generated footage), real:carphone, real:bikes or a video "
                        "file; a real clip or file as CLIP[@STEP][+noise]")
    p.add_argument("--styles", default="worst,3,7,19")
    p.add_argument("--size", default="640x480")
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--set", action="append", default=[], help="stabilizer setting, e.g. denoise=0.7")
    p.add_argument("--json")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    settings = StabilizerSettings()
    for item in args.set:
        key, value = item.split("=")
        settings = replace(settings, **{key: type(getattr(settings, key))(value)})
    pack = StylePack.load()
    rows = []
    with create_backend(args.backend, pack=pack) as backend:
        for clip in args.clips.split(","):
            frames = load_clip(clip, size, args.frames, args.seed)
            styles = [worst_style(backend, pack, frames[:12]) if s == "worst" else s for s in args.styles.split(",")]
            worst = styles[0] if args.styles.startswith("worst") else None
            for style in dict.fromkeys(styles):  # the worst may also be listed by number: once
                w = pack.weights(style)
                r = steadiness(lambda f: backend.run(f, w), frames, Stabilizer(settings))
                r.update(clip=clip, style=style, worst=style == worst)
                r["warp_change"] = r["warp_error_stabilized"] / r["warp_error"] - 1
                r["noise_change"] = r["static_noise_stabilized"] / r["static_noise"] - 1
                rows.append(r)
                print(f"{Path(clip).name:10s} style {style:>2s}  warp {r['warp_error']:.4f}→{r['warp_error_stabilized']:.4f} "
                      f"({100 * r['warp_change']:+.0f}%)  static noise {r['static_noise']:.4f}→"
                      f"{r['static_noise_stabilized']:.4f} ({100 * r['noise_change']:+.0f}%)  "
                      f"ghosting {r['ghosting'] or float('nan'):.2f} ({r['ghosting_frames']} fr)  "
                      f"{r['stabilize_ms_p50']:.2f} ms",
                      flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": settings.__dict__, "size": size, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
