"""The network as a compiled CPU path runs it: uint8 frame in, uint8 frame out."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from ..model.stylenet import StyleNet


class FramedStyleNet(nn.Module):
    """uint8 H×W×3 frame in, uint8 H×W×3 frame out, around a StyleNet.

    Lets a compiler fuse the conversion, padding and rounding into the network's first and last
    kernels instead of separate passes over the frame (CPU compiled paths).
    """

    def __init__(self, net: StyleNet, planes: bool = False):
        """``planes``: a space-to-depth network returns its uint8 output before the depth-to-space
        (3s² × padded H/s × W/s; engine/depth_to_space.py finishes it). Inductor fused that shuffle, the last
        norm and the sigmoid into one kernel with gathered loads: a third of the int8 slim network's
        time at 640×480."""
        super().__init__()
        self.net = net
        self.multiple = net.config.downsample
        self.planes = planes and net.config.space_to_depth > 1

    def forward(self, frame: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        h, w = frame.shape[0], frame.shape[1]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        x = frame.permute(2, 0, 1).unsqueeze(0).float() * (1.0 / 255.0)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        x = x.contiguous(memory_format=torch.channels_last)
        if self.planes:
            y = self.net(x, style_weights, shuffle=False)[0].float()
            return (y * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).contiguous()
        y = self.net(x, style_weights)[0, :, :h, :w].float()
        return (y * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()

