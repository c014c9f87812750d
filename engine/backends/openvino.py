"""OpenVINO on the CPU, on the same CPU export as ONNX Runtime (``export_onnx(cpu_layout=True)``).

Where there are no int8/bf16 units (AVX2 only), OpenVINO runs our network faster than ONNX Runtime. On
an AMD EPYC Zen 2 at 320×240, interleaved: stock network 28.4 ms against 35.5 ms, picture network 20.0
against 28.9 ms, within 1e-4 of ONNX Runtime's output. (ONNX Runtime's own profile spends a third of
the stock network outside its convs, in instance norms, pads and layout reorders; I did not profile
OpenVINO's, so where it gains is not measured.) It
compiles one model per frame size (a fraction of a second), so it counts as a compiled backend: the
pipeline prepares a new size in the background and runs ONNX Runtime meanwhile.
"""
from __future__ import annotations


import importlib.util
import threading

import numpy as np

from ..cpu_tuning import usable_cores
from ..errors import BackendUnavailable, ModelError
from ..frame.frames import from_output, pad_amounts, to_input
from ..paths import cache_dir
from .base import Backend, BackendOptions


class OpenVinoCpuBackend(Backend):
    name = "openvino"
    compiled = True
    idles_between_runs = True  # its workers sleep after a run (measured: the stabilizer overlaps, see README)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "openvino is not installed (pip install openvino)"
        return None

    def __init__(self, *, pack, options: BackendOptions = BackendOptions()):
        super().__init__(pack=pack, options=options)
        try:
            import openvino as ov
        except ImportError:
            raise BackendUnavailable("openvino is not installed (pip install openvino)") from None
        from .export import cached_onnx

        self._core = ov.Core()
        # compiled models persist across launches (OpenVINO keys them by model, config and device)
        self._core.set_property({"CACHE_DIR": str(cache_dir() / "openvino")})
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}  # f32: no bf16 guesses
        # every core we may use, said outright: on a 2-vCPU KVM guest (AMD EPYC, Zen 3) the LATENCY hint
        # alone ran one thread (640×480: 206–236 ms against 118 ms on two)
        config["INFERENCE_NUM_THREADS"] = options.threads or usable_cores()
        self._config = config
        path = cached_onnx(pack, cpu_layout=True)
        try:
            self._model = self._core.read_model(str(path))
        except Exception as exc:  # openvino raises its own RuntimeError subtypes
            raise ModelError(f"OpenVINO cannot read {path}: {str(exc).splitlines()[0]}") from None
        self._requests: dict[tuple[int, int], object] = {}  # (H, W) → infer request of that size's model
        self._lock = threading.Lock()  # the pipeline's warm-up thread builds sizes too
        # a size's one infer request runs one inference at a time: a build thread's warm-up run and the
        # frames' first run of a new size met ("Infer Request is busy" ended the AVX2 soak's frames)
        self._running = threading.Lock()

    def _request(self, h: int, w: int):
        with self._lock:
            request = self._requests.get((h, w))
        if request is None:  # built outside the lock: frames of a built size never wait for a new one
            model = self._model.clone()
            model.reshape({"image": [1, 3, h, w], "style_weights": [self.pack.config.num_styles]})
            request = self._core.compile_model(model, "CPU", self._config).create_infer_request()
            with self._lock:
                request = self._requests.setdefault((h, w), request)
        return request

    @classmethod
    def opens_at_once(cls, pack, height: int, width: int) -> bool:
        """Its export is cached: a size then compiles in 0.2–0.5 s (Zen 4, 640×480 and 1280×720), aside while
        a stand-in runs. Started as an upgrade instead, its warm-up thread took 2.7 s beside two busy cores,
        the keyframes a second old meanwhile (docs/keyframes.md)."""
        from .export import onnx_path

        return onnx_path(pack, cpu_layout=True).is_file()

    def ready_for(self, height: int, width: int) -> bool:
        ph, pw = pad_amounts(height, width, self.multiple)
        with self._lock:
            return (height + ph, width + pw) in self._requests

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        return to_input(frame, self.multiple)

    def infer(self, x: np.ndarray, style_weights: np.ndarray) -> np.ndarray:
        request = self._request(x.shape[2], x.shape[3])
        with self._running:
            return request.infer({"image": x, "style_weights": self.check_weights(style_weights)})[0]

    def postprocess(self, y: np.ndarray, height: int, width: int) -> np.ndarray:
        return from_output(y, height, width)

    def _release(self) -> None:
        self._requests.clear()
