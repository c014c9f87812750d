"""Contact sheet of the stabilizer on webcam-like footage: source | plain | steadied, at frames where
something just moved away (a trail would show there) and on the still background (shimmer).

    python scripts/stabilize_sheet.py --scene person --style 19 --out docs/stabilize-sheet.jpg
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.backends import create_backend  # noqa: E402
from engine.video.footage import FootageSettings, compress, footage_frames  # noqa: E402
from engine.frame.stabilize import Stabilizer  # noqa: E402
from engine.styles.packs import StylePack  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scene", default="person")
    p.add_argument("--style", default="19")
    p.add_argument("--size", default="640x480")
    p.add_argument("--frames", default="44,52,58,64", help="frame numbers to show (the crossing ends at ~50)")
    p.add_argument("--out", default="docs/stabilize-sheet.jpg")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    settings = FootageSettings(scene=args.scene, size=size)
    wanted = [int(v) for v in args.frames.split(",")]
    pack = StylePack.load()
    stab, rows = Stabilizer(), []
    with create_backend("onnxruntime", pack=pack) as backend:
        for i, (frame, _) in enumerate(footage_frames(settings)):
            if i > max(wanted):
                break
            frame = compress(frame, settings.jpeg_quality)
            plain = backend.run(frame, pack.weights(args.style))
            steady = stab(frame, plain)
            if i in wanted:
                row = np.hstack([frame, plain, steady])
                cv2.putText(row, f"frame {i}: source | plain | steadied", (10, 24), cv2.FONT_HERSHEY_SIMPLEX,
                            0.7, (255, 255, 255), 2, cv2.LINE_AA)
                rows.append(row)
    sheet = np.vstack(rows)
    sheet = cv2.resize(sheet, (sheet.shape[1] // 2, sheet.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
