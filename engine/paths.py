"""Where files live: the models and assets that ship inside the package, and the per-user data,
config and cache folders (the platform's own, from platformdirs).

The repo keeps ``models/`` and ``assets/`` at the top; pyproject.toml maps them into the wheel as the
packages ``stylecam_data.models`` and ``stylecam_data.assets``, so an installed stylecam (wheel, pipx,
editable) finds them with importlib.resources. A checkout run without installing it finds them beside
``engine/``.
"""
from __future__ import annotations

import importlib.resources
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import platformdirs

from .errors import ModelError

log = logging.getLogger(__name__)

APP_NAME = "stylecam"
SETTINGS_FILE = "settings.ini"


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


def _home() -> Path | None:
    home = os.environ.get("STYLECAM_HOME")
    return Path(home) if home else None


def data_dir() -> Path:
    """User styles; STYLECAM_HOME overrides (tests use a temp dir). Linux: $XDG_DATA_HOME/stylecam."""
    home = _home()
    return home / "data" if home else platformdirs.user_data_path(APP_NAME, appauthor=False)


def config_dir() -> Path:
    """The app's remembered settings. Linux: $XDG_CONFIG_HOME/stylecam; Windows and macOS: the data folder."""
    home = _home()
    return home / "config" if home else platformdirs.user_config_path(APP_NAME, appauthor=False)


def cache_dir() -> Path:
    """Derived files that can be rebuilt: exported ONNX models, engines, thumbnails."""
    home = _home()
    return home / "cache" if home else platformdirs.user_cache_path(APP_NAME, appauthor=False)


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def old_data_dir() -> Path:
    """Where stylecam 0.1 kept user styles and settings on every OS: the XDG rule, written by hand."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / APP_NAME


def _move(old: Path, new: Path, what: str) -> bool:
    """Move ``old`` to ``new`` when only ``old`` exists; one log line when it moved."""
    if old == new or not old.exists():
        return False
    if new.exists():
        log.info("both %s and %s exist; using the second, the first is left as it is", old, new)
        return False
    try:
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(old), str(new))
    except OSError as exc:
        log.warning("could not move %s from %s to %s: %s", what, old, new, exc)
        return False
    log.warning("moved %s from %s to %s (this platform's folder; once)", what, old, new)
    return True


def migrate_user_files() -> list[Path]:
    """Move what an older stylecam left in the old places, once: the data folder from the hand-made
    XDG path (the same path as platformdirs' on Linux, so a no-op there) and the settings from the data
    folder to the config folder. Returns the new places of what moved."""
    moved = []
    if _home() is None and _move(old_data_dir(), data_dir(), "your styles and settings"):
        moved.append(data_dir())
    old_settings, new_settings = data_dir() / SETTINGS_FILE, settings_path()
    if _move(old_settings, new_settings, "the app's settings"):
        moved.append(new_settings)
    return moved
