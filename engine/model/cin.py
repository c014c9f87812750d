"""Instance normalization and its conditional (multi-style) form.

Written out by hand rather than calling ``nn.InstanceNorm2d`` so the statistics are visible to the
rest of the engine (stabilization reuses them) and so the style table is an ordinary parameter.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


def instance_norm(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """(x − μ)/sqrt(σ² + ε), μ and biased σ² per image and channel over H×W."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(dim=(2, 3), keepdim=True)
    return centered * torch.rsqrt(var + eps)


class InstanceNorm(nn.Module):
    """Plain instance norm with one learned affine pair (γ, β) per channel."""

    def __init__(self, channels: int, eps: float = EPS):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.eps) * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose γ, β are a weighted sum of rows of a per-style table (Dumoulin et al. 2017).

    ``style_weights`` is ``[N]`` (one vector for the batch) or ``[B, N]``; one-hot picks a style, a
    convex mix blends styles. ``native=True`` routes through ``F.instance_norm`` so ONNX/TensorRT
    exports get a single InstanceNormalization op (same numbers, faster kernels there).
    """

    def __init__(self, channels: int, num_styles: int, eps: float = EPS):
        super().__init__()
        self.eps = eps
        self.native = False
        self.row: tuple[torch.Tensor, torch.Tensor] | None = None  # a trainable extra row (style fitting)
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    @property
    def num_styles(self) -> int:
        return self.gamma.shape[0]

    def affine(self, style_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """γ and β for ``style_weights``, each ``[B or 1, C]``; ``None`` means the trainable ``row``."""
        if style_weights is None:
            return self.row[0][None], self.row[1][None]
        w = style_weights.reshape(-1, self.num_styles).to(self.gamma.dtype)
        return w @ self.gamma, w @ self.beta

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(style_weights)
        if self.native and gamma.shape[0] == 1:
            return F.instance_norm(x, weight=gamma[0], bias=beta[0], eps=self.eps)
        normed = instance_norm(x.float(), self.eps).to(x.dtype)
        return normed * gamma[:, :, None, None].to(x.dtype) + beta[:, :, None, None].to(x.dtype)
