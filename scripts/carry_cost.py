"""The carry's cost per frame, alone, on the full-size renders of a clip: a keyframe every ``--every`` frames,
carried to each frame; prints the median ms. Run it pinned to one core and interleaved with the tree it is
compared with (the machines here are noisy: take the best of several runs).

    taskset -c 1 python scripts/carry_cost.py SRC IDEAL/ --size 1280x720
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
from scripts.live_compare import frames, png  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("ideal", help="the folder of `stylecam stylize SRC IDEAL/` (every frame at full size)")
    ap.add_argument("--size", help="WxH the ideal was rendered at")
    ap.add_argument("--every", type=int, default=12, help="frames between keyframes")
    ap.add_argument("--start", type=int, default=60)
    ap.add_argument("--end", type=int, default=200)
    args = ap.parse_args()
    src = list(frames(Path(args.src), parse_size(args.size) if args.size else None))[:args.end]
    ideal = [None] + [png(Path(args.ideal), i) for i in range(1, args.end + 1)]
    carrier, key, ms = Carrier(CarrySettings()), None, []
    for _ in range(2):
        for t in range(args.start, args.end):
            if key is None or t % args.every == 0:
                key = carrier.keyframe(t, src[t - 1], ideal[t])
            t0 = time.perf_counter()
            carrier.carry(key, src[t], t + 1)
            ms.append(1000.0 * (time.perf_counter() - t0))
    print(f"carry {np.median(ms):.2f} ms a frame (median of {len(ms)})")


if __name__ == "__main__":
    main()
