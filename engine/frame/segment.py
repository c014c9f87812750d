"""Person segmentation, so a style can cover only the person or only the background.

MediaPipe's selfie segmentation models (Apache-2.0; models/selfie_segmentation*.tflite, see
scripts/extract_selfie_model.sh) run in LiteRT (ai-edge-litert), ~3 ms a frame on 2 cores. The
landscape model is used for wide frames. The soft edge comes from blurring the probability map
before a ramp, so confident background is exactly 0 and confident person exactly 1.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import BackendUnavailable, InputError, ModelError
from ..paths import MODELS_DIR

MASK_MODES = ("none", "person", "background")
MODELS = {"square": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}


def check_mask(mode: str) -> str:
    if mode not in MASK_MODES:
        raise InputError(f"--mask must be one of {', '.join(MASK_MODES)}, got {mode!r}")
    return mode


class PersonSegmenter:
    def __init__(self, threads: int = 2, low: float = 0.3, high: float = 0.7):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise BackendUnavailable("person masks need LiteRT: pip install ai-edge-litert (it has builds for Linux "
                                     "x86-64, Windows and Apple-silicon macOS)") from None
        self.low, self.high = low, high
        self._interpreters = {}
        for kind, name in MODELS.items():
            path = MODELS_DIR / name
            if not path.is_file():
                raise ModelError(f"{path} is missing; rebuild it with scripts/extract_selfie_model.sh")
            try:
                it = Interpreter(model_path=str(path), num_threads=threads)
                it.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot load {path}: {exc}") from None
            self._interpreters[kind] = it

    def probability(self, frame: np.ndarray) -> np.ndarray:
        """P(person) at the model's resolution."""
        h, w = frame.shape[:2]
        it = self._interpreters["landscape" if w / h >= 1.5 else "square"]
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        _, mh, mw, _ = inp["shape"]
        x = cv2.resize(frame, (int(mw), int(mh)), interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255.0
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(out["index"])[0, :, :, 0]

    def mask(self, frame: np.ndarray) -> np.ndarray:
        """Soft person mask in 0..1 at the frame's size (float32)."""
        h, w = frame.shape[:2]
        p = cv2.GaussianBlur(self.probability(frame), (0, 0), 2.0)
        p = np.clip((p - self.low) / (self.high - self.low), 0.0, 1.0)
        return cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)


def composite(stylized: np.ndarray, original: np.ndarray, person: np.ndarray, mode: str) -> np.ndarray:
    """Stylized where the chosen layer is, the original elsewhere (soft edge)."""
    if mode == "none":
        return stylized
    weight = person if mode == "person" else 1.0 - person
    return cv2.blendLinear(stylized, original, weight, 1.0 - weight)
