"""Where files live: the repo's stock models, and the per-user data and cache folders."""
from __future__ import annotations

import os
from pathlib import Path

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


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
