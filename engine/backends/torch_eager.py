"""PyTorch backends.

- CPU: eager fp32 (`torch-cpu`, the reference), and compiled (`torch-cpu-compiled` fp32,
  `torch-cpu-bf16`): torch.compile with weight freezing, channels_last, native instance norm,
  bf16 autocast where the CPU has bf16 units, and malloc tuned against per-frame page faults.
- CUDA: fp16 convs with instance-norm statistics in fp32, channels_last, one CUDA graph per
  resolution, torch.compile when Triton is there.
"""
from __future__ import annotations

import contextlib
import glob
import importlib.util
import logging
import platform
from dataclasses import replace

import numpy as np

from ..cpu_tuning import has_fast_bf16, hidden_note, tune_process
from ..errors import BackendUnavailable
from ..frame.frames import check_frame, from_output, to_input
from .base import Backend, BackendOptions
from .torch_frames import TorchFrameIO

log = logging.getLogger(__name__)


class TorchBackend(Backend):
    def __init__(self, *, pack, options: BackendOptions = BackendOptions(), device: str = "cpu"):
        super().__init__(pack=pack, options=options)
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("PyTorch is not installed") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("no CUDA GPU visible to PyTorch")
        self.torch = torch
        self.device = torch.device(device)
        cuda = device == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True  # pick the fastest conv algorithm per shape (once)
        if not cuda and options.threads:
            torch.set_num_threads(options.threads)
        self.half = cuda and options.precision != "fp32"
        self.bf16 = not cuda and options.precision == "bf16"
        if self.bf16 and not has_fast_bf16():
            raise BackendUnavailable("this CPU has no fast bf16 (needs AVX-512 BF16 or AMX)" + hidden_note())
        self.channels_last = cuda and options.channels_last
        self.use_graphs = cuda and options.cuda_graphs
        net = pack.build().to(self.device)
        if self.half:
            # Conv weights in fp16; CIN tables stay fp32 and statistics are taken in fp32 (cin.py).
            for layer in net.modules():
                if hasattr(layer, "w"):
                    layer.w.data = layer.w.data.half()
        use_compile = options.compile
        if use_compile is None:
            import importlib.util

            use_compile = cuda and importlib.util.find_spec("triton") is not None
        if use_compile and not cuda:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # weights become constants: oneDNN prepacks them
            tune_process()
            self.channels_last = True
            net.set_native_norm(True)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        if use_compile:
            log.info("torch.compile: the first frame at each resolution takes a while (fused kernels after)")
        # Compiled on the CPU: uint8 frames go straight into the graph (fused pre/post-processing).
        self.framed = use_compile and not cuda
        if self.framed:
            from .framed import FramedStyleNet

            self.fn = torch.compile(FramedStyleNet(net), dynamic=False)
        else:
            self.fn = torch.compile(net, dynamic=False) if use_compile else net
        self.io = TorchFrameIO(device, self.multiple, "float16" if self.half else "float32", self.channels_last)
        self._graphs: dict[tuple, tuple] = {}  # (H, W) → (graph, static input, static output)
        self._weights_key: bytes | None = None
        self._weights_t = None

    def describe(self) -> str:
        parts = ["fp16" if self.half else "bf16" if self.bf16 else "fp32"]
        if self.channels_last:
            parts.append("channels_last")
        if self.use_graphs:
            parts.append("cuda-graphs")
        if self.fn is not self.net:
            parts.append("compiled, uint8 in/out fused" if self.framed else "compiled")
        return f"{self.name} ({', '.join(parts)})"

    def _weights(self, style_weights: np.ndarray):
        w = self.check_weights(style_weights)
        key = w.tobytes()
        if key != self._weights_key:  # upload only when the style changes
            t = self.torch.from_numpy(w.copy()).to(self.device)
            if self._weights_t is None:
                self._weights_t = t
            else:
                self._weights_t.copy_(t)  # in place: CUDA graphs captured this tensor
            self._weights_key = key
        return self._weights_t

    def preprocess(self, frame: np.ndarray):
        if self.framed:
            check_frame(frame)
            return self.torch.from_numpy(frame)
        if self.device.type == "cpu":
            return self.torch.from_numpy(to_input(frame, self.multiple))
        return self.io.upload(frame)

    def _graph_for(self, x, w):
        """Capture one CUDA graph per input shape; later frames of that size just replay it."""
        torch = self.torch
        key = tuple(x.shape)
        if key not in self._graphs:
            static_x = x.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up (and compilation) outside the capture
                    self.fn(static_x, w)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_y = self.fn(static_x, w)
            self._graphs[key] = (graph, static_x, static_y)
            log.info("captured a CUDA graph for %s", key)
        return self._graphs[key]

    def infer(self, x, style_weights: np.ndarray):
        torch = self.torch
        with torch.inference_mode():
            w = self._weights(style_weights)
            if self.use_graphs:
                graph, static_x, static_y = self._graph_for(x, w)
                static_x.copy_(x)
                graph.replay()
                y = static_y
            else:
                with torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext():
                    y = self.fn(x, w)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return y

    def postprocess(self, y, height: int, width: int) -> np.ndarray:
        if self.framed:
            return y.numpy()
        if self.device.type == "cpu":
            return from_output(y.numpy(), height, width)
        return self.io.download(y, height, width)

    def _release(self) -> None:
        self._graphs.clear()
        self.net = self.fn = None
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


def gpu_missing() -> str | None:
    """Why no NVIDIA GPU is usable by PyTorch here, or None; torch is imported only when a GPU
    driver is present (so `stylecam doctor` stays quick on machines without one)."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed"
    if platform.system() == "Linux" and not glob.glob("/dev/nvidia[0-9]*"):
        return "no NVIDIA GPU here (no /dev/nvidia*)"
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU visible to PyTorch"


class TorchCpuBackend(TorchBackend):
    """fp32 eager on the CPU: the reference every other path is measured against."""

    name = "torch-cpu"
    preset: BackendOptions | None = None  # fixed options of a variant (threads are the caller's)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if importlib.util.find_spec("torch") else "PyTorch is not installed"

    def __init__(self, *, pack, options: BackendOptions = BackendOptions()):
        if self.preset is not None:
            options = replace(self.preset, threads=options.threads, background_warmup=options.background_warmup)
        super().__init__(pack=pack, options=options, device="cpu")


class TorchCpuCompiledBackend(TorchCpuBackend):
    name = "torch-cpu-compiled"
    compiled = True
    preset = BackendOptions(compile=True)


class TorchCpuBf16Backend(TorchCpuBackend):
    name = "torch-cpu-bf16"
    compiled = True
    preset = BackendOptions(compile=True, precision="bf16")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return super().unavailable_reason() or (None if has_fast_bf16() else
                                                "this CPU has no fast bf16 (needs AVX-512 BF16 or AMX)" + hidden_note())


class TorchCudaBackend(TorchBackend):
    """fp16 + channels_last + CUDA graphs (+ torch.compile when Triton is there)."""

    name = "torch-cuda"
    on_cpu = False
    compiled = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return gpu_missing()

    def __init__(self, *, pack, options: BackendOptions = BackendOptions()):
        super().__init__(pack=pack, options=options, device="cuda")
