"""Frames in and out of torch tensors, shared by the PyTorch and TensorRT backends.

On CUDA the uint8 frame goes through a pinned host buffer (so the copy is a real async DMA) and
is converted, padded and cropped on the GPU: only 1 byte per pixel crosses the bus each way.
The same code runs on the CPU, which is how the tests reach it without a GPU.
"""
from __future__ import annotations

import numpy as np

from ..frame.frames import check_frame, pad_amounts


class TorchFrameIO:
    def __init__(self, device: "str", multiple: int, dtype: str = "float32", channels_last: bool = False):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.multiple = multiple
        self.dtype = getattr(torch, dtype)
        self.channels_last = channels_last
        self.cuda = self.device.type == "cuda"
        self._pinned_in: dict[tuple, "torch.Tensor"] = {}
        self._pinned_out: dict[tuple, "torch.Tensor"] = {}

    def _pinned(self, cache: dict, shape: tuple) -> "torch.Tensor":
        buf = cache.get(shape)
        if buf is None:
            buf = cache[shape] = self.torch.empty(shape, dtype=self.torch.uint8, pin_memory=True)
        return buf

    def upload(self, frame: np.ndarray) -> "torch.Tensor":
        """uint8 H×W×3 → [1,3,H',W'] in 0..1 on the device, reflect-padded to the multiple."""
        torch = self.torch
        check_frame(frame)
        if self.cuda:
            host = self._pinned(self._pinned_in, frame.shape)
            host.numpy()[...] = frame
            t = host.to(self.device, non_blocking=True)
        else:
            t = torch.from_numpy(frame)
        x = t.permute(2, 0, 1).unsqueeze(0).to(torch.float32).div_(255.0)
        h, w = frame.shape[:2]
        ph, pw = pad_amounts(h, w, self.multiple)
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
        x = x.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def download(self, y: "torch.Tensor", height: int, width: int) -> np.ndarray:
        """[1,3,H',W'] in 0..1 → uint8 H×W×3 (rounded), cropped to the frame's size."""
        torch = self.torch
        out = y[0, :, :height, :width].float().mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)
        out = out.permute(1, 2, 0).contiguous()
        if not self.cuda:
            return out.numpy()
        host = self._pinned(self._pinned_out, tuple(out.shape))
        host.copy_(out, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return host.numpy().copy()
