"""TensorRT backend: a thin layer over the TensorRT 10+ Python API.

build (ONNX → engine, fp16 with InstanceNormalization computed in fp32, timing cache, progress)
→ cache (keyed by GPU, TensorRT version, model hash, precision and shape profile) → infer (torch
CUDA tensors as GPU buffers, one stream). The style vector is an engine input: a style switch
changes a 26-float buffer, never the engine. Shapes, keys and paths live in trt_plan.py.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, ModelError, install_hint
from ..frame.frames import pad_amounts
from ..styles.packs import file_sha256
from .base import Backend, BackendOptions
from .torch_frames import TorchFrameIO
from .torch_eager import gpu_missing
from .trt_plan import EngineKey, ShapeProfile, engine_path, profile_for, timing_cache_path

log = logging.getLogger(__name__)
DEFAULT_SIZE = (1280, 720)


def _progress_monitor(trt):
    """A tqdm bar per build phase (IProgressMonitor)."""
    from tqdm import tqdm

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.bars = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.bars[phase_name] = tqdm(total=num_steps, desc=f"TensorRT: {phase_name}", leave=False)

        def step_complete(self, phase_name, step):
            bar = self.bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return Monitor()


def build_engine(trt, onnx_path: Path, profile: ShapeProfile, fp16: bool, timing_cache: Path) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if hasattr(trt, "OnnxParserFlag") and hasattr(trt.OnnxParserFlag, "NATIVE_INSTANCENORM"):
        parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)  # one INormalizationLayer per IN
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for e in errors:
            log.error("TensorRT ONNX parser: %s", e)
        raise ModelError(f"TensorRT could not parse {onnx_path}: {errors[0] if errors else 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type == trt.LayerType.NORMALIZATION:
                # IN variance overflows fp16 on real activations: compute it in fp32.
                layer.compute_precision = trt.float32
                layer.precision = trt.float32
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape("image", profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    config.progress_monitor = _progress_monitor(trt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError("TensorRT engine build failed (see the log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def engine_key(pack, options: BackendOptions, gpu: str, trt_version: str, onnx_path: Path | None = None) -> EngineKey:
    """The engine cache's key a start looks up: the GPU, TensorRT, the exported model file's digest, the
    precision and the shape profile (tests build it here, never by hand)."""
    from .export import cached_onnx

    width, height = options.max_size or DEFAULT_SIZE
    profile = profile_for(width, height, pack.config.downsample, options.max_size)
    digest = file_sha256(Path(onnx_path or cached_onnx(pack)))
    return EngineKey(gpu, trt_version, digest, "fp32" if options.precision == "fp32" else "fp16", profile)


class TensorRTBackend(Backend):
    name = "tensorrt"
    on_cpu = False
    compiled = True
    ran_on_hardware = False  # written against the TensorRT 10 API; TensorRT cannot be installed here (docs/gpu.md)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("tensorrt") is None:
            return f"TensorRT is not installed ({install_hint('tensorrt')} on an NVIDIA machine)"
        return gpu_missing()

    def __init__(self, *, pack, options: BackendOptions = BackendOptions(), onnx_path: Path | None = None):
        super().__init__(pack=pack, options=options)
        try:
            import tensorrt as trt
        except ImportError:
            raise BackendUnavailable(f"TensorRT is not installed ({install_hint('tensorrt')} on an NVIDIA "
                                     "machine)") from None
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable("no CUDA GPU visible to PyTorch (TensorRT buffers are torch CUDA tensors)")
        from .export import cached_onnx

        self.trt, self.torch = trt, torch
        self.fp16 = options.precision != "fp32"
        onnx_path = Path(onnx_path or cached_onnx(pack))
        key = engine_key(pack, options, torch.cuda.get_device_name(0), trt.__version__, onnx_path)
        self.profile = key.profile
        path = self.engine_file = engine_path(key)
        self.built = not path.is_file()  # this start built the engine (False: read from the cache)
        if not self.built:
            plan = path.read_bytes()
            log.info("TensorRT engine from cache: %s", path)
        else:
            log.warning("building a TensorRT engine for %s (once per GPU, model and size)", key.gpu)
            plan = build_engine(trt, onnx_path, self.profile, self.fp16, timing_cache_path(key.gpu, key.trt_version))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(plan)
            os.replace(tmp, path)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise ModelError(f"cannot load TensorRT engine {path}; delete it to rebuild")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.io = TorchFrameIO("cuda", self.multiple, "float32")
        self._weights = torch.zeros(pack.config.num_styles, device="cuda")
        self._weights_key: bytes | None = None
        self._out: dict[tuple, "torch.Tensor"] = {}

    def describe(self) -> str:
        return f"tensorrt {self.trt.__version__} ({'fp16, IN fp32' if self.fp16 else 'fp32'})"

    def preprocess(self, frame: np.ndarray):
        h, w = frame.shape[:2]
        dh, dw = pad_amounts(h, w, self.multiple)
        self.profile.check(h + dh, w + dw)
        return self.io.upload(frame)

    def infer(self, x, style_weights: np.ndarray):
        torch = self.torch
        w = self.check_weights(style_weights)
        if w.tobytes() != self._weights_key:
            self._weights.copy_(torch.from_numpy(w))
            self._weights_key = w.tobytes()
        x = x.contiguous()
        shape = tuple(x.shape)
        out = self._out.get(shape)
        if out is None:
            out = self._out[shape] = torch.empty(shape, device="cuda")
        self.context.set_input_shape("image", shape)
        self.context.set_tensor_address("image", x.data_ptr())
        self.context.set_tensor_address("style_weights", self._weights.data_ptr())
        self.context.set_tensor_address("stylized", out.data_ptr())
        self.stream.wait_stream(torch.cuda.current_stream())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise ModelError("TensorRT execution failed")
        torch.cuda.current_stream().wait_stream(self.stream)
        self.stream.synchronize()
        return out

    def postprocess(self, y, height: int, width: int) -> np.ndarray:
        return self.io.download(y, height, width)

    def _release(self) -> None:
        self.context = self.engine = self.runtime = None
        self._out.clear()
