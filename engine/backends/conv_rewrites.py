"""Convs of a built StyleNet run otherwise, for a backend: rewritten into equivalents that CPU kernels run
faster (the same numbers within 1e-6), or in another dtype. The export and the int8 path swap these in;
the model (engine/model/stylenet.py) knows nothing of them. Why each pays: docs/performance.md."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.stylenet import ConvCIN, StyleNet


def blocked_weights(w: torch.Tensor, k: int) -> torch.Tensor:
    """The same conv as one with stride k and k² times the output channels, whose depth-to-space is this
    conv's output: each k×k block of outputs from one (K+k−1)² window. CPU kernels vectorize over output
    channels (8 or 16 lanes): a last conv with 3 outputs left most lanes idle; 3k² fill them."""
    cout, cin, kh, kw = w.shape
    out = w.new_zeros(cout, k, k, cin, kh + k - 1, kw + k - 1)
    for dy in range(k):
        for dx in range(k):
            out[:, dy, dx, :, dy:dy + kh, dx:dx + kw] = w
    return out.reshape(cout * k * k, cin, kh + k - 1, kw + k - 1)


def subpixel_weights(w: torch.Tensor) -> torch.Tensor:
    """Nearest ×2 upsample, reflection pad 1 and a 3×3 conv, as one 3×3 conv on the small input (edge-padded
    by 1) with 4× the output channels, whose depth-to-space is the conv's output. Output pixel (2i+dy, 2j+dx)
    reads upsampled rows 2i+dy−1…2i+dy+1, which are input rows i + ⌊(dy+ky−1)/2⌋: each of the 4 phases is a
    3×3 kernel (2×2 of it non-zero) on the input; no upsampled tensor is made and padded."""
    cout, cin, _, _ = w.shape
    out = w.new_zeros(cout, 2, 2, cin, 3, 3)
    for dy in range(2):
        for dx in range(2):
            for ky in range(3):
                for kx in range(3):
                    out[:, dy, dx, :, (dy + ky - 1) // 2 + 1, (dx + kx - 1) // 2 + 1] += w[:, :, ky, kx]
    return out.reshape(cout * 4, cin, 3, 3)


class _Swapped(ConvCIN):
    """A ConvCIN whose conv runs otherwise: the same parameters and norm (the same names in a state dict
    or an export), another ``_conv``."""

    @classmethod
    def of(cls, layer: ConvCIN, **extra) -> "_Swapped":
        swapped = cls.__new__(cls)
        swapped.__dict__ = {k: (dict(v) if k in ("_parameters", "_buffers", "_modules") else v)
                            for k, v in layer.__dict__.items()}
        swapped.__dict__.update(extra)
        return swapped


class BlockedConvCIN(_Swapped):
    """The conv as its 4×4-blocked equivalent (``blocked_weights``), made once as a constant: an export then
    holds one initializer instead of the graph that builds it (12 828 nodes and 6 s to export, else)."""

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.pixel_shuffle(F.conv2d(x, self.blocked.to(x.dtype), stride=4), 4)


class SubpixelConvCIN(_Swapped):
    """An upsampling 3×3 conv as a sub-pixel conv on the small input (``subpixel_weights``)."""

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return F.pixel_shuffle(F.conv2d(x, self.subpixel.to(x.dtype), stride=1), 2)


class CastConvCIN(_Swapped):
    """The conv in ``conv_dtype`` (e.g. bf16 for the float convs of the int8 graph), its output back."""

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        return super()._convolve(x.to(self.conv_dtype)).to(x.dtype)


def rewrite_for_cpu(net: StyleNet) -> StyleNet:
    """The last conv, where it has under 8 outputs per pixel, as its blocked equivalent (3 outputs → 48
    channels); each upsampling conv as a sub-pixel conv. In place; returns ``net``."""
    last = net.expand[-1]
    # the frame entering the last conv is a multiple of 2^len(expand) (each expand layer doubles it)
    if last.w.shape[0] < 8 and last.b is None and 2 ** len(net.config.expand) % 4 == 0:
        with torch.no_grad():
            net.expand[-1] = BlockedConvCIN.of(last, blocked=blocked_weights(last.w, 4).detach().clone())
    for i, layer in enumerate(net.expand[:-1]):
        if layer.upsample and layer.b is None and layer.stride == 1 and layer.w.shape[-1] == 3:
            with torch.no_grad():
                net.expand[i] = SubpixelConvCIN.of(layer, subpixel=subpixel_weights(layer.w).detach().clone())
    return net


def convs_in(net: StyleNet, names: tuple[str, ...], dtype: torch.dtype) -> StyleNet:
    """The named ConvCIN layers run their conv in ``dtype``. In place; returns ``net``."""
    for name in names:
        net.set_submodule(name, CastConvCIN.of(net.get_submodule(name), conv_dtype=dtype))
    return net
