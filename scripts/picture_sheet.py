"""Contact sheet for picture styles: painting | photo | 384² teacher | picture style (full size) | fitted row.

Usage:
  python scripts/picture_sheet.py OUT.jpg PAINTING=PICTURE_STYLE=FIT_STYLE [...] [--photos astronaut,coffee]
      [--frame 640x480] [--tile 220]

The styles must already be added (`stylecam style add PAINTING --name PICTURE_STYLE` and
`... --name FIT_STYLE --mode fit`); STYLECAM_HOME picks the style store. Photos are scikit-image's.
Each photo is cropped to the working frame's aspect (centred; the astronaut from the top, to keep her
face) and resized to it (default 640×480, a webcam frame); every column is made from that same frame:
the teacher squashes it to 384×384 and back (as `stylecam eval --teacher` does), the picture style
runs the picture network at the frame's own size, the fitted row runs the stock network at the
frame's own size (both through the onnxruntime backend).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from engine.backends import create_backend
from engine.frame.frames import fit_cover
from engine.video.capture import read_image
from engine.training.teacher import ArbitraryTeacher
from engine.styles.user_styles import load_catalog

# name → (loader, where the crop to the frame's aspect sits vertically: 0 top, 0.5 centre)
PHOTOS = {
    "astronaut": (lambda d: d.astronaut(), 0.0),  # keep the whole face (a centre crop cuts the hair)
    "coffee": (lambda d: d.coffee(), 0.5),
    "chelsea": (lambda d: d.chelsea(), 0.5),
    "rocket": (lambda d: d.rocket(), 0.5),
    "motorcycle": (lambda d: d.stereo_motorcycle()[0], 0.5),
}


def cover(image: np.ndarray, size: tuple[int, int], anchor_y: float = 0.5) -> np.ndarray:
    """Crop to the aspect of ``size`` (horizontally centred, vertically at ``anchor_y``), then resize."""
    if anchor_y == 0.5:
        return fit_cover(image, size)
    h, w = image.shape[:2]
    ch = min(h, round(w * size[1] / size[0]))
    cw = min(w, round(ch * size[0] / size[1]))
    x0, y0 = (w - cw) // 2, round((h - ch) * anchor_y)
    return fit_cover(image[y0:y0 + ch, x0:x0 + cw], size)


def label(img: np.ndarray, text: str) -> np.ndarray:
    """White text with a black outline (drawn as offset copies: a thicker stroke would shift the glyphs)."""
    img, y = img.copy(), img.shape[0] - 6  # bottom-left: faces sit near the top
    for dx, dy in ((-1, -1), (-1, 1), (1, -1), (1, 1), (0, -1), (0, 1), (-1, 0), (1, 0)):
        cv2.putText(img, text, (5 + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, text, (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("styles", nargs="+", help="PAINTING=PICTURE_STYLE=FIT_STYLE")
    ap.add_argument("--photos", default="astronaut,coffee")
    ap.add_argument("--frame", default="640x480", help="working frame WxH every column is made at")
    ap.add_argument("--tile", type=int, default=220, help="tile width in the sheet")
    ap.add_argument("--quality", type=int, default=85)
    args = ap.parse_args()

    from skimage import data

    fw, fh = (int(v) for v in args.frame.lower().split("x"))
    tile = (args.tile, round(args.tile * fh / fw))
    photos = [(p, cover(PHOTOS[p][0](data), (fw, fh), PHOTOS[p][1])) for p in args.photos.split(",")]
    catalog = load_catalog()
    teacher = ArbitraryTeacher()
    rows = []
    with create_backend("onnxruntime", pack=catalog) as backend:
        for spec in args.styles:
            painting, pic_style, fit_style = spec.split("=")
            picture = read_image(Path(painting))
            code = teacher.style_code(picture)
            w_pic, w_fit = catalog.weights(pic_style), catalog.weights(fit_style)
            for name, photo in photos:
                tiles = [
                    label(fit_cover(picture, tile), Path(painting).stem[:30]),
                    label(cv2.resize(photo, tile, interpolation=cv2.INTER_AREA), f"photo {name} {fw}x{fh}"),
                    label(cv2.resize(teacher.preview(photo, code), tile, interpolation=cv2.INTER_AREA),
                          "teacher (384x384 squash)"),
                    label(cv2.resize(backend.run(photo, w_pic), tile, interpolation=cv2.INTER_AREA),
                          f"picture style ({fw}x{fh})"),
                    label(cv2.resize(backend.run(photo, w_fit), tile, interpolation=cv2.INTER_AREA),
                          "fitted row (stock net)"),
                ]
                rows.append(np.hstack(tiles))
    sheet = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, sheet, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]}, {Path(args.out).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
