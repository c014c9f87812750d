"""GUI settings: one typed dataclass, remembered between runs with QSettings (an INI file in the config dir)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from PySide6.QtCore import QSettings

from engine.defaults import FRAME_SIZE, STABILIZE_LIVE, size_text
from engine.paths import settings_path
from engine.styles.mix import StyleMix


@dataclass
class GuiSettings:
    source: str = ""  # "" = first camera, else the demo clip
    size: str = size_text(FRAME_SIZE)
    backend: str = "auto"
    style_a: int = 19
    style_b: int = 3
    blend: int = 0  # 0..100: share of style_b
    strength: int = 100  # 0..100
    preserve_colors: bool = False
    stabilize: bool = STABILIZE_LIVE  # steady video (a new key: the old "steady" was saved off by default)
    mask: str = "none"  # none | person | background
    full_quality: bool = False  # render scale pinned at 1.0 (else lowered to hold 30 FPS)
    side_by_side: bool = False


def _store() -> QSettings:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def load_settings() -> GuiSettings:
    store, s = _store(), GuiSettings()
    for f in fields(GuiSettings):
        if store.contains(f.name):
            raw = store.value(f.name)
            try:
                value = (str(raw).lower() in ("true", "1")) if f.type in (bool, "bool") else type(getattr(s, f.name))(raw)
            except (TypeError, ValueError):
                continue  # a damaged entry keeps its default
            setattr(s, f.name, value)
    return s


def save_settings(s: GuiSettings) -> None:
    store = _store()
    for key, value in asdict(s).items():
        store.setValue(key, value)
    store.sync()


def apply_style(settings, catalog, mix: StyleMix) -> None:
    """Show a mix (the CLI's --style, parsed there) as the GUI's two-style blend: its two heaviest styles."""
    parts = mix.largest(catalog)
    settings.style_a, share_a = parts[0]
    settings.blend = 0
    if len(parts) > 1:
        settings.style_b, share_b = parts[1]
        settings.blend = round(100 * share_b / (share_a + share_b))
