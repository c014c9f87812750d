"""Contact sheet for user styles: picture | photo | teacher (arbitrary-style model) | ours (new CIN row).

Usage: python scripts/contact_sheet.py OUT.jpg NAME=PICTURE [NAME=PICTURE ...]
(styles must already be added with `stylecam style add`; photos are scikit-image's).
"""
import sys
from pathlib import Path

import cv2
import numpy as np

from engine.backends import create_backend
from engine.frame.frames import fit_cover
from engine.video.capture import read_image
from engine.training.teacher import ArbitraryTeacher
from engine.styles.user_styles import load_pack

TILE = (240, 180)


def label(img, text):
    img = img.copy()
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main():
    from skimage import data

    out, pairs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    pack = load_pack()
    teacher = ArbitraryTeacher()
    photos = [fit_cover(data.astronaut(), (480, 360)), fit_cover(data.coffee(), (480, 360))]
    rows = []
    with create_backend("onnxruntime", pack=pack) as backend:
        for name, picture in pairs:
            pic = read_image(Path(picture))
            code = teacher.style_code(pic)
            for photo in photos:
                tiles = [label(fit_cover(pic, TILE), Path(picture).stem[:28]),
                         label(cv2.resize(photo, TILE), "photo"),
                         label(cv2.resize(teacher.preview(photo, code), TILE), "teacher (384px)"),
                         label(cv2.resize(backend.run(photo, pack.weights(name)), TILE), "ours (CIN row)")]
                rows.append(np.hstack(tiles))
    cv2.imwrite(out, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


if __name__ == "__main__":
    main()
