"""A contact sheet of what a viewer sees: per row one source frame (the fastest and the slowest motion of each
clip, past the start), and across: the source, the full-size render of that frame (the ideal), a 0.5× render
of it with the edge-aware upscale (today's governor at its floor), what `--keyframes off` showed live, and
what the keyframe mode showed live. The runs are folders made by `stylecam stylize SRC DIR/ [--live ...]`.

    python scripts/keyframe_sheet.py OUT.jpg --style 7 SRC RUN_DIR [SRC RUN_DIR ...]   (RUN_DIR/{ideal,off,on})
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.backends import create_backend  # noqa: E402
from engine.live.pipeline import StyleSettings, stylize_frame  # noqa: E402
from engine.styles.user_styles import load_catalog  # noqa: E402
from scripts.live_compare import frames, png  # noqa: E402

COLUMNS = ("source", "full size (ideal)", "0.5x render", "live, keyframes off", "live, keyframes on")


def picks(src: Path, size, skip: int) -> list[tuple[int, str]]:
    """The source frames (1-based) with the fastest and the slowest motion after ``skip``."""
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames(src, size)]
    motion = [(float(np.abs(b - a).mean()), i + 2) for i, (a, b) in enumerate(zip(grays, grays[1:])) if i + 2 > skip]
    return [(max(motion)[1], "fast motion"), (min(motion)[1], "slow motion")]


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.rectangle(img, (0, 0), (img.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(img, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("pairs", nargs="+", help="SRC RUN_DIR, repeated")
    ap.add_argument("--style", default="7")
    ap.add_argument("--skip", type=int, default=60)
    ap.add_argument("--width", type=int, default=320, help="each tile's width")
    args = ap.parse_args()
    catalog = load_catalog()
    weights = catalog.weights(args.style)
    rows = []
    with create_backend("onnxruntime", pack=catalog) as backend:
        for src, run in zip(args.pairs[::2], args.pairs[1::2]):
            run = Path(run)
            h, w = png(run / "ideal", 1).shape[:2]
            all_frames = list(frames(Path(src), (w, h)))
            for index, what in picks(Path(src), (w, h), args.skip):
                source = all_frames[index - 1]
                half = stylize_frame(backend, source, weights, StyleSettings(style=args.style, render_scale=0.5))
                tiles = [source, png(run / "ideal", index), half, png(run / "off", index), png(run / "on", index)]
                th = round(h * args.width / w)
                tiles = [cv2.resize(t, (args.width, th), interpolation=cv2.INTER_AREA) for t in tiles]
                names = [f"{Path(src).stem} #{index}, {what}", *COLUMNS[1:]]
                rows.append(np.hstack([label(t, n) for t, n in zip(tiles, names)]))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([cv2.copyMakeBorder(r, 0, 2, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows])
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(args.out)


if __name__ == "__main__":
    main()
