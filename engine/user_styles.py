"""The user's own styles: one extra row of every CIN table each, stored in the user's data dir.

A user style is ~1k numbers (γ, β per normalization layer); the shared convolutions stay the stock
ones, so every stock style is untouched and user styles blend with them like any other row.
Layout: ``<data>/styles/index.json`` + ``<data>/styles/<slug>.safetensors``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .errors import InputError, ModelError, StyleError
from .paths import data_dir
from .styles import STOCK_MANIFEST, StyleInfo, StylePack, slugify


@dataclass(frozen=True)
class UserStyle:
    name: str
    file: str
    source: str  # the picture it was made from
    mode: str
    created: str
    licence: str = "yours (made from your picture)"

    @property
    def slug(self) -> str:
        return slugify(self.name)


class UserStyleStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else data_dir() / "styles"
        self.index = self.root / "index.json"

    def list(self) -> list[UserStyle]:
        if not self.index.is_file():
            return []
        try:
            return [UserStyle(**s) for s in json.loads(self.index.read_text())["styles"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"corrupt user style index {self.index}: {exc}") from None

    def _write(self, styles: list[UserStyle]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.index.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"styles": [asdict(s) for s in styles]}, indent=2) + "\n")
        os.replace(tmp, self.index)

    def add(self, name: str, rows: dict[str, np.ndarray], source: str, mode: str, taken: set[str]) -> UserStyle:
        """Save a row set (``{"<layer>.norm.gamma": [C], "<layer>.norm.beta": [C]}``) under a new name."""
        from safetensors.numpy import save_file

        slug = slugify(name)
        if not slug:
            raise InputError(f"style name {name!r} needs at least one letter or digit")
        if slug in taken:
            raise InputError(f"a style named {name!r} already exists (remove it first, or pick another name)")
        self.root.mkdir(parents=True, exist_ok=True)
        style = UserStyle(name=name, file=f"{slug}.safetensors", source=source, mode=mode,
                          created=time.strftime("%Y-%m-%d %H:%M"))
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in rows.items()}, str(self.root / style.file))
        self._write([*self.list(), style])
        return style

    def remove(self, name: str) -> UserStyle:
        styles = self.list()
        match = [s for s in styles if s.slug == slugify(name)]
        if not match:
            raise StyleError(f"no user style named {name!r} (stock styles cannot be removed); "
                             f"user styles: {', '.join(s.name for s in styles) or 'none'}")
        self._write([s for s in styles if s is not match[0]])
        (self.root / match[0].file).unlink(missing_ok=True)
        return match[0]

    def rows(self, style: UserStyle) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        try:
            return load_file(str(self.root / style.file))
        except Exception as exc:
            raise ModelError(f"corrupt user style {style.name!r} ({self.root / style.file}): {exc}") from None


def with_rows(pack: StylePack, extra: list[tuple[StyleInfo, dict[str, np.ndarray]]]) -> StylePack:
    """A pack whose CIN tables have one more row per extra style (ids continue after the stock ones)."""
    if not extra:
        return pack
    state = dict(pack.state)
    for key in [k for k in state if k.endswith((".norm.gamma", ".norm.beta"))]:
        layer, part = key.rsplit(".", 1)
        try:
            new = [np.asarray(rows[f"{layer}.{part}"], np.float32).reshape(1, -1) for _, rows in extra]
        except KeyError:
            raise ModelError(f"a user style lacks {layer}.{part}: it was made for another model") from None
        state[key] = np.concatenate([np.asarray(state[key]), *new], axis=0)
    styles = [*pack.styles, *[replace(info, id=pack.num_styles + i) for i, (info, _) in enumerate(extra)]]
    digest = hashlib.sha256((pack.digest + "".join(
        hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for _, v in sorted(r.items()))).hexdigest()
        for _, r in extra)).encode()).hexdigest()
    config = replace(pack.config, num_styles=len(styles))
    return StylePack(config, state, styles, digest)


def load_pack(manifest: Path = STOCK_MANIFEST, store: UserStyleStore | None = None) -> StylePack:
    """The stock pack plus the user's styles."""
    pack = StylePack.load(manifest)
    store = store or UserStyleStore()
    extra = [(StyleInfo(0, s.name, f"your picture {Path(s.source).name} ({s.mode} fit)", s.licence), store.rows(s))
             for s in store.list()]
    return with_rows(pack, extra)


def add_style(picture: Path, name: str, settings, store: UserStyleStore | None = None,
              progress=lambda i, n, loss: None) -> tuple[UserStyle, dict]:
    """Fit a new row to ``picture`` and save it as the user style ``name``."""
    from .capture import read_image
    from .training.fit_row import fit_fast, fit_full

    store = store or UserStyleStore()
    if settings.mode not in ("fast", "full"):
        raise InputError(f"--mode must be fast or full, got {settings.mode!r}")
    if settings.steps < 1:
        raise InputError("--steps must be at least 1")
    pack = load_pack(store=store)
    taken = {s.slug for s in pack.styles}
    if slugify(name) in taken:
        raise InputError(f"a style named {name!r} already exists (remove it first, or pick another name)")
    image = read_image(Path(picture))  # one clear error for a missing or corrupt picture
    if min(image.shape[:2]) < 32:
        raise InputError(f"picture {picture} is too small ({image.shape[1]}x{image.shape[0]}); use ≥ 32 px a side")
    stock = StylePack.load()
    fit = fit_fast if settings.mode == "fast" else (lambda *a, **k: fit_full(*a, slug=slugify(name), **k))
    rows, info = fit(stock, image, settings, progress=progress)
    style = store.add(name, rows, str(picture), settings.mode, taken)
    return style, info
