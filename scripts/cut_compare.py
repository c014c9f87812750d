"""Scene cuts in real footage, frame by frame: does the live picture show the new scene at once, with no
ghost of the old one? (tests/test_keyframes.py checks a cut on photos; this is the same on clips.)

Makes a clip of segments cut together (a talking head, a car interior, the head again), renders the ideal
(the full-size render of every frame), plays it live with keyframes on and off, and prints per cut, for the
frames after it: PSNR against the ideal of that frame, and the "ghost": PSNR against the ideal of the last
frame before the cut, less the two ideals' own PSNR (near 0: nothing of the old picture shows; several dB:
the old picture is still on screen). Also when the first keyframe of the new scene was shown.

    python scripts/cut_compare.py CLIP_A CLIP_B OUT/ [--style 7] [--size 640x480] [--seconds 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.frame.frames import fit_cover, parse_size  # noqa: E402
from engine.metrics import psnr  # noqa: E402
from scripts.live_compare import frames, png  # noqa: E402

AFTER = 12  # frames shown after each cut


def make_clip(a: Path, b: Path, out: Path, size: tuple[int, int], n: int, fps: float = 30.0) -> list[int]:
    """A[0:n] + B[0:n] + A[n:2n] at ``size``: two cuts; returns their first frames (1-based, as the PNGs)."""
    fa, fb = list(frames(a, size)), list(frames(b, size))
    if len(fa) < 2 * n or len(fb) < n:
        raise SystemExit(f"clips too short for {n} frames a segment")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for f in fa[:n] + fb[:n] + fa[n:2 * n]:
        writer.write(cv2.cvtColor(fit_cover(f, size), cv2.COLOR_RGB2BGR))
    writer.release()
    return [n + 1, 2 * n + 1]


def stylecam(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "stylecam"), *args, "-q"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cut_rows(live: Path, ideal: Path, cut: int) -> dict:
    lines = [json.loads(x) for x in (live / "frames.jsonl").read_text().splitlines()]
    old = png(ideal, cut - 1)
    rows = []
    for i in range(cut, cut + AFTER):
        line = lines[i - 1]
        a, b = png(live, i), png(ideal, i)
        rows.append({"frame": i - cut, "psnr_db": round(psnr(a, b), 2),
                     "ghost_db": round(psnr(a, old) - psnr(b, old), 2),
                     "keyframe_from": "new" if line.get("keyframe", 0) >= cut else "old",
                     "carried": line.get("carried"), "shown": line.get("shown")})
    first_new = next((r["frame"] for r in rows if r["keyframe_from"] == "new"), None)
    return {"cut": cut, "first_new_keyframe_after_frames": first_new,
            "max_ghost_db": max(r["ghost_db"] for r in rows), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("out")
    ap.add_argument("--style", default="7")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = parse_size(args.size)
    clip = out / "cuts.avi"
    cuts = make_clip(Path(args.a), Path(args.b), clip, size, round(30 * args.seconds))
    if not (out / "ideal" / "frames.jsonl").exists():
        stylecam("stylize", str(clip), f"{out}/ideal/", "--style", args.style, "--backend", "openvino")
        (out / "ideal" / "frames.jsonl").touch()
    # a first run fills the compiled-model cache (a relaunch's start, as the campaign's warm run)
    stylecam("stylize", str(clip), f"{out}/warm/", "--live", "--style", args.style)
    report = {}
    for mode in ("on", "off"):
        stylecam("stylize", str(clip), f"{out}/{mode}/", "--live", "--keyframes", mode, "--style", args.style)
        report[mode] = [cut_rows(out / mode, out / "ideal", c) for c in cuts]
        for r in report[mode]:
            print(mode, f"cut at {r['cut']}:", "first new keyframe after", r["first_new_keyframe_after_frames"],
                  "frames; max ghost", r["max_ghost_db"], "dB; PSNR",
                  " ".join(str(x["psnr_db"]) for x in r["rows"]), flush=True)
    (out / "cuts.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
