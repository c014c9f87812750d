"""Magenta's arbitrary-style network (Ghiasi et al. 2017) as the package ships it (int8, 384×384):
a picture → a 100-number style code → stylized 384×384 crops. It is the teacher for fitting a stock
row (``style add --mode fit``) and the 384² reference in ``stylecam eval --teacher``; the live picture
styles run our float import of the same network at full size instead (model/picture.py)."""
from __future__ import annotations

import cv2
import numpy as np

from ..model.predictor import StylePredictor, cpu_session
from ..model.stock import package_model

TEACHER_SIZE = 384


class ArbitraryTeacher:
    def __init__(self, threads: int = 0):
        self.predictor = StylePredictor(threads)
        self.transform = cpu_session(package_model("arbitrary_transform.onnx"), threads, "arbitrary-style network")

    def style_code(self, picture: np.ndarray) -> np.ndarray:
        """[1,1,1,100] from an RGB uint8 picture (centre square at 256×256)."""
        return self.predictor.code(picture).reshape(1, 1, 1, -1)

    def stylize(self, crop: np.ndarray, code: np.ndarray) -> np.ndarray:
        """A 384×384 RGB uint8 crop stylized by the teacher → float32 RGB 0..1."""
        names = [i.name for i in self.transform.get_inputs()]
        x = crop.astype(np.float32)[None] / 255.0
        return self.transform.run(None, {names[0]: x, names[1]: code})[0][0]

    def preview(self, frame: np.ndarray, code: np.ndarray) -> np.ndarray:
        """Any frame through the teacher (squashed to 384², restored to the frame's size): the app's
        instant preview while the real row trains."""
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (TEACHER_SIZE, TEACHER_SIZE), interpolation=cv2.INTER_AREA)
        out = self.stylize(small, code)
        return cv2.resize(cv2.convertScaleAbs(out, alpha=255.0), (w, h), interpolation=cv2.INTER_LINEAR)
