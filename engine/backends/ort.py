"""ONNX Runtime backends (CPU, and CUDA when onnxruntime-gpu is installed) on our own export."""
from __future__ import annotations

import importlib.util

import numpy as np

from ..cpu_tuning import tune_process
from ..errors import BackendUnavailable, ModelError
from ..frame.frames import from_output, to_input
from .base import Backend, BackendOptions

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OrtBackend(Backend):
    def __init__(self, *, pack, options: BackendOptions = BackendOptions(), device: str = "cpu",
                 model_path=None):
        super().__init__(pack=pack, options=options)
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from None
        provider = PROVIDERS[device]
        if provider not in ort.get_available_providers():
            raise BackendUnavailable(f"{provider} is not in this onnxruntime build "
                                     f"(has {', '.join(ort.get_available_providers())})")
        from .export import cached_onnx

        path = model_path or cached_onnx(pack, cpu_layout=device == "cpu")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if options.threads:
            opts.intra_op_num_threads = options.threads
        if device == "cpu":
            # its threads spin on after a run by default, holding every core while the frame's other work
            # (the upscale, the stabilizer, capture) runs: stopped, the stabilizer can run beside the
            # upscale; the network itself measured within 1% (interleaved, 320×240)
            opts.add_session_config_entry("session.force_spinning_stop", "1")
        try:
            providers = list(dict.fromkeys([provider, "CPUExecutionProvider"]))
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}") from None
        if self.session.get_providers()[0] != provider:
            # onnxruntime silently falls back to CPU when the CUDA libraries fail to load
            raise BackendUnavailable(f"{provider} failed to start (CUDA/cuDNN libraries missing?)")
        if device == "cpu":
            tune_process()

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        return to_input(frame, self.multiple)

    def infer(self, x: np.ndarray, style_weights: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"image": x, "style_weights": self.check_weights(style_weights)})[0]

    def postprocess(self, y: np.ndarray, height: int, width: int) -> np.ndarray:
        return from_output(y, height, width)

    def _release(self) -> None:
        self.session = None


class OrtCpuBackend(OrtBackend):
    name = "onnxruntime"
    idles_between_runs = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install onnxruntime)"
        return None

    def __init__(self, *, pack, options: BackendOptions = BackendOptions(), model_path=None):
        super().__init__(pack=pack, options=options, device="cpu", model_path=model_path)


class OrtCudaBackend(OrtBackend):
    name = "onnxruntime-cuda"
    on_cpu = False
    ran_on_hardware = False  # the H200 it could have run on had a CPU-only onnxruntime (docs/gpu.md)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        why = OrtCpuBackend.unavailable_reason()
        if why:
            return why
        import onnxruntime as ort

        if PROVIDERS["cuda"] not in ort.get_available_providers():
            return (f"{PROVIDERS['cuda']} is not in this onnxruntime build "
                    f"(has {', '.join(ort.get_available_providers())})")
        return None

    def __init__(self, *, pack, options: BackendOptions = BackendOptions(), model_path=None):
        super().__init__(pack=pack, options=options, device="cuda", model_path=model_path)
