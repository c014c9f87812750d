"""Where files live: the repo's models and assets, and the per-user data and cache folders."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import ModelError

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
REPO_ASSETS = Path(__file__).resolve().parent.parent / "assets"  # icon, photos (see assets/SOURCES.md)


def asset_photo(name: str) -> np.ndarray:
    """An RGB uint8 photo from assets/photos (the demo clip's and the gallery's)."""
    bgr = cv2.imread(str(REPO_ASSETS / "photos" / f"{name}.png"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ModelError(f"missing asset {REPO_ASSETS / 'photos' / name}.png (reinstall stylecam)")
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
