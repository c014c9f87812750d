"""A frame in a picture's style at once, by the picture network: what a fitted row (minutes away) aims at."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backends import create_single
from ..model.config import code_vector
from ..model.predictor import StylePredictor
from ..styles.packs import StylePack
from ..styles.user_styles import PICTURE_MANIFEST
from ..styles.pictures import read_style_picture


def picture_preview(frame: np.ndarray, picture: Path) -> np.ndarray:
    """``frame`` at its own size in the picture's style, by the picture network: what a fitted row
    (minutes away) aims at, shown at once."""
    code = StylePredictor().code(read_style_picture(picture))
    with create_single("onnxruntime", pack=StylePack.load(PICTURE_MANIFEST)) as backend:  # a code, not a mix
        return backend.run(frame, code_vector(code))
