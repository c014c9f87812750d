"""Write assets/: the demo clip's and the gallery's photos (lossless copies of scikit-image's, so
the app and its tests need nothing but the repo) and the app icon (a photo through a stock style).

    python scripts/make_assets.py      (re-run only to change them; the files are committed)
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from engine.backends import create_backend
from engine.styles.packs import StylePack

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PHOTOS = ("astronaut", "coffee", "chelsea")


def main() -> None:
    (ASSETS / "photos").mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        cv2.imwrite(str(ASSETS / "photos" / f"{name}.png"), getattr(data, name)()[:, :, ::-1],
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
    # The icon: the astronaut's face in Starry Swirl, in a rounded square.
    face = cv2.resize(data.astronaut()[20:260, 130:370], (256, 256), interpolation=cv2.INTER_AREA)
    pack = StylePack.load()
    with create_backend("onnxruntime", pack=pack) as backend:
        icon = backend.run(face, pack.weights("starry swirl"))
    mask = np.zeros((256, 256), np.uint8)
    cv2.rectangle(mask, (24, 0), (231, 255), 255, -1)
    cv2.rectangle(mask, (0, 24), (255, 231), 255, -1)
    for cx, cy in ((24, 24), (231, 24), (24, 231), (231, 231)):
        cv2.circle(mask, (cx, cy), 24, 255, -1)
    rgba = np.dstack([icon, mask])
    cv2.imwrite(str(ASSETS / "icon.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 9])


if __name__ == "__main__":
    main()
