"""PyTorch backends: CPU (fp32) and CUDA (fp16 convs, instance-norm statistics in fp32).

On CUDA the uint8 frame is uploaded as is and converted, padded and cropped on the GPU, so only
1 byte per pixel crosses the bus each way.
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendUnavailable
from ..frames import check_frame, from_output, to_input
from .base import Backend, BackendOptions, register


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
        if device == "cpu" and options.threads:
            torch.set_num_threads(options.threads)
        self.half = device == "cuda" and options.precision != "fp32"
        self.net = pack.build().to(self.device)
        if self.half:
            # Conv weights in fp16; CIN tables stay fp32 and statistics are taken in fp32.
            for layer in self.net.modules():
                if hasattr(layer, "w"):
                    layer.w.data = layer.w.data.half()
        self.name = f"torch-{device}"
        self._weights_key: bytes | None = None
        self._weights_t = None

    def describe(self) -> str:
        return f"{self.name} ({'fp16' if self.half else 'fp32'})"

    def _weights(self, style_weights: np.ndarray):
        w = self.check_weights(style_weights)
        key = w.tobytes()
        if key != self._weights_key:  # upload only when the style changes
            self._weights_t = self.torch.from_numpy(w.copy()).to(self.device)
            self._weights_key = key
        return self._weights_t

    def preprocess(self, frame: np.ndarray):
        torch = self.torch
        if self.device.type == "cpu":
            return torch.from_numpy(to_input(frame, self.multiple))
        check_frame(frame)
        t = torch.from_numpy(frame).to(self.device, non_blocking=True)
        x = t.permute(2, 0, 1)[None].float().div_(255.0)
        h, w = frame.shape[:2]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
        return x.half() if self.half else x

    def infer(self, x, style_weights: np.ndarray):
        with self.torch.inference_mode():
            y = self.net(x, self._weights(style_weights))
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
        return y

    def postprocess(self, y, height: int, width: int) -> np.ndarray:
        if self.device.type == "cpu":
            return from_output(y.numpy(), height, width)
        out = y[0, :, :height, :width].float().mul(255.0).add_(0.5).clamp_(0, 255).to(self.torch.uint8)
        return out.permute(1, 2, 0).contiguous().cpu().numpy()

    def _release(self) -> None:
        self.net = None
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


@register("torch-cpu")
def _torch_cpu(**kw) -> Backend:
    return TorchBackend(device="cpu", **kw)


@register("torch-cuda")
def _torch_cuda(**kw) -> Backend:
    return TorchBackend(device="cuda", **kw)
