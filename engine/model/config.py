"""The style network's sizes, without torch: manifests, the catalog and the CLI read it cheaply."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError

from dataclasses import dataclass


@dataclass(frozen=True)
class StyleNetConfig:
    """Sizes of every layer; the stock model is the default."""

    num_styles: int = 26
    in_channels: int = 3
    contract: tuple[int, ...] = (32, 32, 32)  # first is the 9×9 conv, the rest stride 2
    residual_blocks: int = 6
    expand: tuple[int, ...] = (8, 4)  # each after a ×2 upsample
    out_channels: int = 3
    big_kernel: int = 9
    contract_norm: bool = True  # False: the contract convs carry a bias and no CIN (picture network)
    # Pixel-unshuffle the input by this factor before the first conv and pixel-shuffle the last conv's
    # output back (the slim student network: its first and last convs run at 1/s resolution on s²·3
    # channels). 1 = off, the stock and picture networks.
    space_to_depth: int = 1

    # Fields added after manifest format 1 shipped: left out of to_dict() at these values, so the
    # manifests of the networks that predate them are written byte for byte as before.
    _OPTIONAL = {"space_to_depth": 1}

    @property
    def downsample(self) -> int:
        """Input sides must be a multiple of this to come out the same size."""
        return self.space_to_depth * 2 ** (len(self.contract) - 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
                if not (k in self._OPTIONAL and v == self._OPTIONAL[k])}

    @classmethod
    def from_dict(cls, d: dict) -> "StyleNetConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


CODE_DIMS = 100  # the picture network's style code (Ghiasi et al.)


def code_vector(code: np.ndarray) -> np.ndarray:
    """The network's style input for a 100-number code: ``[code, 1]`` (the 1 picks the bias row)."""
    code = np.asarray(code, np.float32).reshape(-1)
    if code.shape != (CODE_DIMS,):
        raise ModelError(f"a style code has {CODE_DIMS} numbers, got {code.size}")
    return np.concatenate([code, np.ones(1, np.float32)])
