"""Where files live: the models and assets that ship inside the package, and the per-user data and
cache folders.

The repo keeps ``models/`` and ``assets/`` at the top; pyproject.toml maps them into the wheel as the
packages ``stylecam_data.models`` and ``stylecam_data.assets``, so an installed stylecam (wheel, pipx,
editable) finds them with importlib.resources. A checkout run without installing it finds them beside
``engine/``.
"""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import cv2
import numpy as np

from .errors import ModelError


def package_folder(package: str, checkout_folder: str) -> Path:
    """The folder of a data package (installed), or ``checkout_folder`` of a checkout that is not installed."""
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / checkout_folder
    if not isinstance(root, Path):  # e.g. a zip import: the models are read by path (safetensors, LiteRT)
        raise ModelError(f"{package} is not a folder on disk ({root}); install stylecam unpacked (pip install)")
    return root


MODELS_DIR = package_folder("stylecam_data.models", "models")  # networks, manifests, selfie segmentation
ASSETS_DIR = package_folder("stylecam_data.assets", "assets")  # icon, desktop entry, photos (assets/SOURCES.md)


def asset_photo(name: str) -> np.ndarray:
    """An RGB uint8 photo from assets/photos (the demo clip's and the gallery's)."""
    path = ASSETS_DIR / "photos" / f"{name}.png"
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ModelError(f"missing asset {path} (reinstall stylecam)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def data_dir() -> Path:
    """User styles and settings; STYLECAM_HOME overrides (tests use a temp dir)."""
    home = os.environ.get("STYLECAM_HOME")
    return Path(home) / "data" if home else _xdg("XDG_DATA_HOME", ".local/share") / "stylecam"


def cache_dir() -> Path:
    """Derived files that can be rebuilt: exported ONNX models, engines, thumbnails."""
    home = os.environ.get("STYLECAM_HOME")
    return Path(home) / "cache" if home else _xdg("XDG_CACHE_HOME", ".cache") / "stylecam"
