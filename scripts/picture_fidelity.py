"""How close our float picture network is to the package's int8 original, at the 384×384 it fixes.

    python scripts/picture_fidelity.py [PICTURE ...]   (default: three paintings from ../shared/paintings)

Prints PSNR (dB) for 3 package photos × the pictures' codes; differences are int8 quantization noise
(tests/test_picture_styles.py checks our module against the same graph made float: ≤ 1/255)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from skimage import data

from engine.backends import create_single
from engine.metrics import psnr
from engine.model.config import code_vector
from engine.model.picture import TRANSFORM_FILE
from engine.model.predictor import StylePredictor
from engine.model.stock import package_model
from engine.styles.pictures import read_style_picture
from engine.styles.packs import StylePack
from engine.styles.user_styles import PICTURE_MANIFEST

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "paintings"
DEFAULT = [PAINTINGS / n for n in ("hokusai_great_wave.jpg", "vangogh_starry_night.jpg", "bruegel_harvesters.jpg")]
PHOTOS = ("astronaut", "coffee", "chelsea")


def main(pictures: list[Path]) -> None:
    predictor = StylePredictor()
    int8 = ort.InferenceSession(str(package_model(TRANSFORM_FILE)), providers=["CPUExecutionProvider"])
    names = [i.name for i in int8.get_inputs()]
    codes = {p.stem: predictor.code(read_style_picture(p)) for p in pictures}
    print(f"{'photo':<12}" + "".join(f"{k[:22]:>24}" for k in codes))
    scores = []
    with create_single("onnxruntime", pack=StylePack.load(PICTURE_MANIFEST)) as ours:
        for photo_name in PHOTOS:
            photo = cv2.resize(getattr(data, photo_name)(), (384, 384), interpolation=cv2.INTER_AREA)
            row = []
            for code in codes.values():
                theirs = int8.run(None, {names[0]: photo[None].astype(np.float32) / 255,
                                         names[1]: code.reshape(1, 1, 1, -1)})[0][0]
                row.append(psnr(ours.run(photo, code_vector(code)), np.round(theirs * 255).astype(np.uint8)))
            scores += row
            print(f"{photo_name:<12}" + "".join(f"{v:>24.1f}" for v in row))
    print(f"min {min(scores):.1f} dB, mean {np.mean(scores):.1f} dB")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or DEFAULT)
