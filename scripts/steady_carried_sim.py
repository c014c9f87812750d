"""Offline, without timing noise: the keyframe mode replayed on the full-size renders of a clip. Every
``--every`` frames a render becomes a keyframe, shown from ``--delay`` frames later (as the network's thread
would deliver it), carried to every frame; steady video on the keyframes (before) or on the frames shown
(now). Scores against the full-size render of each frame: PSNR, σ2-blurred L1, and the warp error.

    python scripts/steady_carried_sim.py SRC IDEAL/ --steady shown [--size WxH] [--strength 0.85 --still 0.93]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.frame.carry import Carrier, CarrySettings  # noqa: E402
from engine.frame.frames import parse_size  # noqa: E402
from engine.frame.stabilize import Stabilizer, StabilizerSettings  # noqa: E402
from engine.metrics import psnr  # noqa: E402
from engine.sinks.video import write_image  # noqa: E402
from lab.evaluate import WarpError  # noqa: E402
from scripts.live_compare import blurred_l1, frames, png, worst_tiles  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("ideal", help="the folder of `stylecam stylize SRC IDEAL/` (every frame at full size)")
    ap.add_argument("--steady", choices=("keyframes", "shown", "both", "none"), default="shown")
    ap.add_argument("--size", help="WxH the ideal was rendered at (--size)")
    ap.add_argument("--every", type=int, default=6, help="frames between keyframes")
    ap.add_argument("--delay", type=int, default=4, help="frames from a keyframe's source frame to its first showing")
    ap.add_argument("--start", type=int, default=40)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--strength", type=float, default=StabilizerSettings.strength)
    ap.add_argument("--still", type=float, default=StabilizerSettings.still_strength)
    ap.add_argument("--save", help="a folder: the shown frames go there as PNGs (frame_NNNNNN.png)")
    ap.add_argument("--carry-scale", type=int, default=0, help="the carry's flow at 1/N of the size (0: its default)")
    args = ap.parse_args()
    end = args.start + args.frames
    src = list(frames(Path(args.src), parse_size(args.size) if args.size else None))[:end]
    ideal = [None] + [png(Path(args.ideal), i) for i in range(1, end + 1)]
    steady = Stabilizer(StabilizerSettings(strength=args.strength, still_strength=args.still, threads=1))
    steady_keys = Stabilizer(StabilizerSettings(threads=1))  # "both": the keyframes' own, at their rate
    carrier, keys, warp, scores, ms = Carrier(CarrySettings(scale=args.carry_scale)), [], WarpError(), [], []
    for t in range(args.start - args.every - args.delay, end + 1):
        if t % args.every == 0:
            steadier = {"keyframes": steady, "both": steady_keys}.get(args.steady)
            out = steadier(src[t - 1], ideal[t]) if steadier else ideal[t]
            keys.append((t + args.delay, carrier.keyframe(t, src[t - 1], out)))
        if t < args.start:
            continue
        key = [k for shown_from, k in keys if shown_from <= t][-1]
        t0 = time.perf_counter()
        shown = carrier.carry(key, src[t - 1], t)
        if args.steady in ("shown", "both"):
            shown = steady(src[t - 1], shown)
        ms.append(1000.0 * (time.perf_counter() - t0))
        scores.append((psnr(shown, ideal[t]), blurred_l1(shown, ideal[t]), worst_tiles(shown, ideal[t])))
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            write_image(Path(args.save) / f"frame_{t:06d}.png", shown)
        warp.add(src[t - 1], shown, ideal[t])
    scores = np.array(scores)
    same = int(np.isinf(scores[:, 0]).sum())  # frames identical to the ideal (a keyframe shown as it is)
    p = float(np.mean(scores[~np.isinf(scores[:, 0]), 0])) if same < len(scores) else float("inf")
    l1, tiles = scores[:, 1:].mean(axis=0)
    print(f"steady on {args.steady}: PSNR {p:.2f} dB ({same} frames identical, left out), blurred L1 {l1:.4f}, worst 5% tiles {tiles:.4f}, warp error {warp.values[0]:.4f} "
          f"(the ideal's {warp.values[1]:.4f}), carry{' + steady' if args.steady in ('shown', 'both') else ''} "
          f"{np.median(ms):.1f} ms a frame")


if __name__ == "__main__":
    main()
