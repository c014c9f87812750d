"""The feed-forward CIN transformer network, built from a config; both style networks are one.

Layout (names match ``multistyle26.onnx``): ``contract`` (9×9 conv, then stride-2 3×3 convs),
``res`` (residual blocks of two 3×3 convs), ``expand`` (nearest ×2 upsample + 3×3 conv, then a
final 9×9 conv), every conv reflection-padded and followed by conditional instance norm; ReLU
everywhere but the residual second halves and the last layer, which ends in a sigmoid.

The stock network (26 trained rows) has CIN after the contract convs too. The picture network
(Magenta's arbitrary-style transformer, see picture.py) has a biased conv + ReLU there instead
(its batch norm folded in), and its CIN "table" has 101 rows: γ/β are an affine map of a 100-number
style code, so row k < 100 is the map's k-th column and row 100 its bias; the style vector is
``[code, 1]`` and blending codes is blending vectors.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .cin import ConditionalInstanceNorm
from .config import StyleNetConfig


class ConvCIN(nn.Module):
    """Reflection pad → bias-free conv → CIN (→ ReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, num_styles: int,
                 relu: bool = True, upsample: bool = False, norm: bool = True):
        super().__init__()
        self.pad = kernel // 2
        self.stride = stride
        self.relu = relu
        self.upsample = upsample
        self.w = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_normal_(self.w, nonlinearity="relu")
        # Without a norm the conv has a bias (a folded batch norm) instead.
        self.norm = ConditionalInstanceNorm(cout, num_styles) if norm else None
        self.b = None if norm else nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        x = self._conv(x)
        if self.norm is not None:
            x = self.norm(x, style_weights)
        return F.relu(x) if self.relu else x

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        """(Upsample →) reflection pad → conv (a backend may swap in an equivalent: backends/conv_rewrites.py)."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self._convolve(F.pad(x, (self.pad,) * 4, mode="reflect"))

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        w = self.w if self.w.dtype == x.dtype else self.w.to(x.dtype)  # no cast node when it is not needed
        b = None if self.b is None else self.b.to(x.dtype)
        return F.conv2d(x, w, b, stride=self.stride)


class ResidualBlock(nn.ModuleList):
    """x + CIN(conv(ReLU(CIN(conv(x))))); a ModuleList so weights are named ``res.K.0.w`` like the stock file."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__([
            ConvCIN(channels, channels, 3, 1, num_styles, relu=True),
            ConvCIN(channels, channels, 3, 1, num_styles, relu=False),
        ])

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return x + self[1](self[0](x, style_weights), style_weights)


class StyleNet(nn.Module):
    """``forward(image [B,3,H,W] in 0..1, style_weights [N] or [B,N]) → [B,3,H',W']`` in 0..1.

    H' = H when H is a multiple of ``config.downsample``; callers pad to that (see engine.frame.frames).
    With ``config.space_to_depth`` = s > 1 the image is pixel-unshuffled to [B,3s²,H/s,W/s] before
    the first conv and the last conv's 3s² channels are pixel-shuffled back (the slim network).
    """

    def __init__(self, config: StyleNetConfig = StyleNetConfig()):
        super().__init__()
        self.config = config
        n, k = config.num_styles, config.big_kernel
        s2 = config.space_to_depth ** 2  # space-to-depth: the first/last convs see s²× the channels
        chans = [config.in_channels * s2, *config.contract]
        self.contract = nn.ModuleList(
            ConvCIN(chans[i], chans[i + 1], k if i == 0 else 3, 1 if i == 0 else 2, n, norm=config.contract_norm)
            for i in range(len(config.contract))
        )
        c = config.contract[-1]
        self.res = nn.ModuleList(ResidualBlock(c, n) for _ in range(config.residual_blocks))
        chans = [c, *config.expand]
        expand = [ConvCIN(chans[i], chans[i + 1], 3, 1, n, upsample=True) for i in range(len(config.expand))]
        expand.append(ConvCIN(chans[-1], config.out_channels * s2, k, 1, n, relu=False))
        self.expand = nn.ModuleList(expand)

    def norms(self) -> list[ConditionalInstanceNorm]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def set_native_norm(self, native: bool) -> None:
        """Use ``F.instance_norm`` in every CIN (for ONNX/TensorRT export)."""
        for norm in self.norms():
            norm.native = native

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor, shuffle: bool = True) -> torch.Tensor:
        """``shuffle=False``: a space-to-depth network's output before its depth-to-space (N×3s²×H/s×W/s)."""
        s = self.config.space_to_depth
        x = image if s == 1 else F.pixel_unshuffle(image, s)  # ONNX SpaceToDepth
        for layer in self.contract:
            x = layer(x, style_weights)
        for block in self.res:
            x = block(x, style_weights)
        for layer in self.expand:
            x = layer(x, style_weights)
        if s != 1 and shuffle:
            x = F.pixel_shuffle(x, s)  # ONNX DepthToSpace
        return torch.sigmoid(x)
