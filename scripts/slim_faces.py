"""Faces, full network against the slim one: the pictures behind docs/slim-faces.jpg and
docs/slim-webcam-faces.jpg (faces are where a style that passes the numbers can still fail).

    python scripts/slim_faces.py --styles 0,4,7,10,12,19,20 --out docs/slim-faces.jpg
    python scripts/slim_faces.py --webcam --styles 7,19 --out docs/slim-webcam-faces.jpg

Default: scikit-image's astronaut at long side 384 (a small face), photo | full | slim per style.
--webcam: the same photo framed as a 640×480 webcam frame (a face that fills it), photo | full |
full at render scale 0.5 with the edge-aware upscale | slim: the two levels the governor picks from.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", required=True, help="comma-separated style ids")
    ap.add_argument("--student", type=Path, default=REPO / "models" / "slim26.json")
    ap.add_argument("--webcam", action="store_true", help="a 640×480 frame, with the 0.5-scale column")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch
    from skimage import data

    from engine.frame.frames import fit_long, guided_upscale
    from engine.backends.framed import FramedStyleNet
    from engine.live.pipeline import scaled_input
    from engine.styles.packs import StylePack

    teacher, student = StylePack.load(), StylePack.load(args.student)
    full_net, slim_net = FramedStyleNet(teacher.build()), FramedStyleNet(student.build())

    def run(net: FramedStyleNet, img: np.ndarray, weights: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(img)), torch.from_numpy(weights)).numpy()

    if args.webcam:
        img = cv2.resize(data.astronaut(), (640, 640), interpolation=cv2.INTER_AREA)[80:560]
        crop = (slice(30, 330), slice(170, 470))
    else:
        img = fit_long(data.astronaut(), 384)
        img = np.ascontiguousarray(img[:img.shape[0] // 4 * 4, :img.shape[1] // 4 * 4])
        crop = (slice(20, 200), slice(110, 270))
    tiles = []
    for sid in (int(s) for s in args.styles.split(",")):
        w = teacher.weights(sid)
        row = [img, run(full_net, img, w)]
        if args.webcam:
            half = scaled_input(img, 0.5)  # as the pipeline renders it at 0.5
            row.append(guided_upscale(run(full_net, half, w), img, half))
        row.append(run(slim_net, img, w))
        tiles.append(np.hstack([np.pad(t[crop], ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in row]))
    columns = 1 if args.webcam or len(tiles) < 4 else 2
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{args.out}: {sheet.shape[1]}×{sheet.shape[0]}")


if __name__ == "__main__":
    main()
