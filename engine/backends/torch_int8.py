"""`torch-cpu-int8`: int8 convolutions (VNNI) where they keep fidelity, bf16 elsewhere, compiled.

Recipe (reproducible, nothing opaque is shipped): our StyleNet is exported with torch.export, the
x86 Inductor quantizer from torchao annotates it (static activations, per-channel weights), the
layers that lose fidelity stay in float — the residual blocks and the last stride-2 conv (measured:
quantizing them drops the worst style to ~31 dB) — observers are calibrated on scikit-image photos
under all 26 styles, and the result is compiled with weight freezing and run under bf16 autocast.
One model is built per input size, on the first frame of that size (~20 s on 2 cores).
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..cpu_tuning import cpu_flags, has_fast_bf16, tune_malloc
from ..errors import BackendUnavailable
from ..frames import check_frame, from_output, to_input
from .base import Backend, BackendOptions, register

log = logging.getLogger(__name__)
FLOAT_LAYERS = tuple(f"res.{b}.{i}" for b in range(6) for i in range(2)) + ("contract.2",)
CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def calibration_frames(height: int, width: int) -> list[np.ndarray]:
    import cv2
    from skimage import data

    return [cv2.resize(getattr(data, name)(), (width, height), interpolation=cv2.INTER_AREA)
            for name in CALIBRATION_PHOTOS]


def quantize(pack, height: int, width: int, float_layers=FLOAT_LAYERS):
    """The int8 graph module for frames of this size (calibrated, not yet compiled)."""
    import torch
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    net = pack.build()
    net.set_native_norm(True)
    multiple = pack.config.downsample
    frames = [torch.from_numpy(to_input(f, multiple)) for f in calibration_frames(height, width)]
    example = (frames[0], torch.from_numpy(pack.weights(0)))
    with torch.no_grad():
        graph = torch.export.export(net, example, strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        for name in float_layers:
            quantizer.set_module_name_qconfig(name, None)
        prepared = prepare_pt2e(graph, quantizer)
        for style in range(pack.num_styles):  # activations differ per style: calibrate under all of them
            prepared(frames[style % len(frames)], torch.from_numpy(pack.weights(style)))
        return convert_pt2e(prepared)


class TorchInt8Backend(Backend):
    name = "torch-cpu-int8"

    def __init__(self, *, pack, options: BackendOptions = BackendOptions()):
        super().__init__(pack=pack, options=options)
        try:
            import torch
            import torchao  # noqa: F401
        except ImportError:
            raise BackendUnavailable("int8 needs torchao (pip install torchao)") from None
        if not {"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags():
            raise BackendUnavailable("this CPU has no int8 dot-product units (VNNI/AMX)")
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        tune_malloc()
        if options.threads:
            torch.set_num_threads(options.threads)
        self.torch = torch
        self.bf16 = has_fast_bf16()
        self._models: dict[tuple[int, int], object] = {}

    def describe(self) -> str:
        return f"{self.name} (int8 + {'bf16' if self.bf16 else 'fp32'}, compiled)"

    def model_for(self, height: int, width: int):
        key = (height, width)
        if key not in self._models:
            t = time.perf_counter()
            log.warning("building the int8 model for %dx%d (calibrate + compile, once per size)", width, height)
            self._models[key] = self.torch.compile(quantize(self.pack, height, width))
            log.info("int8 model quantized in %.1fs (compiles on first run)", time.perf_counter() - t)
        return self._models[key]

    def preprocess(self, frame: np.ndarray):
        check_frame(frame)
        return self.torch.from_numpy(to_input(frame, self.multiple))

    def infer(self, x, style_weights: np.ndarray):
        import contextlib

        torch = self.torch
        model = self.model_for(x.shape[2], x.shape[3])
        w = torch.from_numpy(self.check_weights(style_weights))
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with torch.no_grad(), amp:
            return model(x, w).float()

    def postprocess(self, y, height: int, width: int) -> np.ndarray:
        return from_output(y.contiguous().numpy(), height, width)

    def _release(self) -> None:
        self._models.clear()


@register("torch-cpu-int8")
def _torch_cpu_int8(**kw) -> Backend:
    return TorchInt8Backend(**kw)
