"""What a viewer saw against the ideal, frame by frame: `stylecam stylize SRC LIVE/ --live` (keyframes on or
off) against `stylecam stylize SRC IDEAL/` (the full-size render of every frame).

Per frame: PSNR, mean L1 after a σ2 blur (the look, not the exact strokes), the worst 5% of 32×32 tiles
(mean L1 of the tile at the 95th percentile: the smearing a viewer notices); over the clip: their means,
and the temporal warp error of the live frames (flicker, lab/evaluate.py's WarpError) with the
source's flow. Frames with nothing on screen yet (the start) are left out and counted.

    python scripts/live_compare.py SRC IDEAL/ LIVE_A/ [LIVE_B/ ...] [--size WxH] [--skip N] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lab.evaluate import WarpError  # noqa: E402
from engine.frame.frames import fit_cover, parse_size  # noqa: E402
from engine.metrics import psnr  # noqa: E402


def blurred_l1(a: np.ndarray, b: np.ndarray) -> float:
    a, b = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), 2.0) for x in (a, b))
    return float(np.abs(a - b).mean() / 255.0)


def worst_tiles(a: np.ndarray, b: np.ndarray, tile: int = 32, share: float = 0.05) -> float:
    d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2) / 255.0
    h, w = (d.shape[0] // tile) * tile, (d.shape[1] // tile) * tile
    means = d[:h, :w].reshape(h // tile, tile, w // tile, tile).mean(axis=(1, 3))
    return float(np.percentile(means, 100 * (1 - share)))


def frames(path: Path, size=None):
    cap = cv2.VideoCapture(str(path))
    while True:
        ok, bgr = cap.read()
        if not ok:
            return
        yield fit_cover(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)


def png(folder: Path, i: int) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(folder / f"frame_{i:06d}.png")), cv2.COLOR_BGR2RGB)


def compare(src: Path, ideal: Path, lives: list[Path], size=None, skip: int = 0, flicker_frames: int = 120) -> list[dict]:
    """Every live run against the ideal, frame by frame; the warp error over the first ``flicker_frames``
    frames counted (one pair of flows per source frame serves every run)."""
    lines = {live: [json.loads(x) for x in (live / "frames.jsonl").read_text().splitlines()] for live in lives}
    rows = {live: [] for live in lives}
    warp, counted = WarpError(), 0
    n = min(len(x) for x in lines.values())
    for i, source in enumerate(frames(src, size), start=1):
        if i > n:
            break
        if i <= skip or any(lines[live][i - 1]["shown"] is None for live in lives):
            continue
        b = png(ideal, i)
        shown = [png(live, i) for live in lives]
        for live, a in zip(lives, shown):
            rows[live].append((psnr(a, b), blurred_l1(a, b), worst_tiles(a, b)))
        if counted < flicker_frames:
            warp.add(source, *shown, b)  # the ideal's own flicker (every frame rendered, unsteadied) last
            counted += 1
    out = []
    for k, live in enumerate(lives):
        m = np.mean(rows[live], axis=0)
        ls = lines[live]
        ages = [x["keyframe_age_ms"] for x in ls[skip:] if x.get("mode") == "keyframes"]
        lat = [x["latency_ms"] for x in ls[skip:] if x["shown"] is not None]
        out.append({"live": str(live), "frames": len(rows[live]), "skip": skip,
                    "blank_at_start": sum(1 for x in ls if x["shown"] is None), "psnr_db": round(float(m[0]), 2),
                    "blurred_l1": round(float(m[1]), 4), "worst5_tiles_l1": round(float(m[2]), 4),
                    "warp_error": round(warp.values[k], 4), "ideal_warp_error": round(warp.values[-1], 4),
                    "keyframe_age_ms_median": round(float(np.median(ages)), 1) if ages else None,
                    "repeats": sum(1 for x, y in zip(ls[skip:], ls[skip + 1:])  # the same frame still on screen
                                   if x["shown"] is not None and x["shown"] == y["shown"]),
                    "handover_latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat else None,
                    "shown_as": dict(Counter(f"{x.get('mode')} {x.get('network')} {x.get('scale')}" for x in ls[skip:]))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("ideal")
    ap.add_argument("live", nargs="+")
    ap.add_argument("--size", help="WxH the live run was given (--size)")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N source frames (a cold start)")
    ap.add_argument("--json")
    args = ap.parse_args()
    size = parse_size(args.size) if args.size else None
    out = compare(Path(args.src), Path(args.ideal), [Path(x) for x in args.live], size, args.skip)
    for row in out:
        print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
