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
        self.conv_dtype: torch.dtype | None = None  # e.g. bf16 for the float convs of the int8 graph
        self.rewrite: tuple[str, int, torch.Tensor] | None = None  # (kind, blocks, weights): ``rewrite_for_cpu``

    def rewrite_for_cpu(self, kind: str) -> bool:
        """Run this conv as an equivalent that CPU kernels run faster, if it has one: "blocked"
        (``blocked_weights``, 4×4 blocks) or "subpixel" (``subpixel_weights``, an upsampling 3×3 conv).
        The weights are made once, as a constant: an export then holds one initializer instead of the
        graph that builds them (12 828 nodes and 6 s to export, else)."""
        subpixel = kind == "subpixel"
        if self.b is not None or self.stride != 1 or (subpixel and not (self.upsample and self.w.shape[-1] == 3)):
            return False
        with torch.no_grad():
            w = self.subpixel_weights() if subpixel else self.blocked_weights(4)
        self.rewrite = (kind, 2 if subpixel else 4, w.detach().clone())
        return True

    def blocked_weights(self, k: int) -> torch.Tensor:
        """The same conv as one with stride k and k² times the output channels, whose
        depth-to-space is this conv's output: each k×k block of outputs from one (K+k−1)² window.

        For a last conv with 3 outputs per pixel: CPU kernels vectorize over output channels (8 or 16
        lanes), so 3 channels left most lanes idle (Magenta's 9×9 8→3 took a third of the picture
        network in ONNX Runtime on AVX2); 3k² channels fill them, for (K+k−1)²/K² more multiply-adds."""
        cout, cin, kh, kw = self.w.shape
        w = self.w.new_zeros(cout, k, k, cin, kh + k - 1, kw + k - 1)
        for dy in range(k):
            for dx in range(k):
                w[:, dy, dx, :, dy:dy + kh, dx:dx + kw] = self.w
        return w.reshape(cout * k * k, cin, kh + k - 1, kw + k - 1)

    def subpixel_weights(self) -> torch.Tensor:
        """Nearest ×2 upsample, reflection pad 1 and this 3×3 conv, as one 3×3 conv on the small input
        (edge-padded by 1) with 4× the output channels, whose depth-to-space is this conv's output.

        Output pixel (2i+dy, 2j+dx) reads upsampled rows 2i+dy−1…2i+dy+1, which are input rows
        i + ⌊(dy+ky−1)/2⌋: each of the 4 phases is a 3×3 kernel (2×2 of it non-zero) on the input. No
        upsampled tensor is made and padded; the upsample's reflected border is the input's edge."""
        cout, cin, _, _ = self.w.shape
        w = self.w.new_zeros(cout, 2, 2, cin, 3, 3)
        for dy in range(2):
            for dx in range(2):
                for ky in range(3):
                    for kx in range(3):
                        w[:, dy, dx, :, (dy + ky - 1) // 2 + 1, (dx + kx - 1) // 2 + 1] += self.w[:, :, ky, kx]
        return w.reshape(cout * 4, cin, 3, 3)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        x = self._conv(x)
        if self.norm is not None:
            x = self.norm(x, style_weights)
        return F.relu(x) if self.relu else x

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        """(Upsample →) pad → conv, as written or as its rewrite; in ``x``'s dtype."""
        out_dtype = x.dtype
        kind, blocks, rewritten = self.rewrite or (None, 1, None)
        if kind == "subpixel":
            x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        else:
            if self.upsample:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        if self.conv_dtype is not None:
            x = x.to(self.conv_dtype)
        if rewritten is not None:
            stride = 1 if kind == "subpixel" else blocks
            x = F.pixel_shuffle(F.conv2d(x, rewritten.to(x.dtype), stride=stride), blocks)
        else:
            w = self.w if self.w.dtype == x.dtype else self.w.to(x.dtype)  # no cast node when it is not needed
            b = None if self.b is None else self.b.to(x.dtype)
            x = F.conv2d(x, w, b, stride=self.stride)
        return x.to(out_dtype)


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

