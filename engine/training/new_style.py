"""A new user style from a picture: a picture style (a second), or a row fitted to the stock network
(``fit``, ``full``: minutes of training), saved in the user's store."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..styles.packs import StylePack, slugify
from ..styles.pictures import read_style_picture
from ..styles.user_styles import (FIT_MODES, PICTURE_MODE, UserStyle, UserStyleStore, add_picture_style,
                                  load_catalog)
from .fit_row import fit_fast, fit_full


def check_training_installed(mode: str, settings) -> None:
    """One clear error when ``mode`` needs the perceptual loss (the `train` extra) and it is missing."""
    if mode == "full" or (mode in FIT_MODES and (settings.gram_weight > 0 or settings.picture_weight > 0)):
        from .vgg import check_installed

        check_installed()


def add_style(picture: Path, name: str, settings, store: UserStyleStore | None = None,
              progress=lambda i, n, loss: None) -> tuple[UserStyle, dict]:
    """A new user style ``name`` from ``picture``: a picture style (``settings.mode == "picture"``),
    or a row fitted to the stock network (``fit``, the former ``fast``; ``full``)."""
    store = store or UserStyleStore()
    mode = {"fast": "fit"}.get(settings.mode, settings.mode)
    if mode not in (PICTURE_MODE, *FIT_MODES):
        raise InputError(f"--mode must be picture, fit or full, got {settings.mode!r}")
    taken = {s.slug for s in load_catalog(store=store).styles}
    if mode == PICTURE_MODE:
        return add_picture_style(picture, name, store, taken)
    if settings.steps < 1:
        raise InputError("--steps must be at least 1")
    if slugify(name) in taken:
        raise InputError(f"a style named {name!r} already exists (remove it first, or pick another name)")
    image = read_style_picture(Path(picture))  # one clear error for a missing, corrupt or odd picture
    check_training_installed(mode, settings)  # the `train` extra: said before any work
    stock = StylePack.load()
    fit = fit_fast if mode == "fit" else (lambda *a, **k: fit_full(*a, slug=slugify(name), **k))
    rows, info = fit(stock, image, settings, progress=progress)
    style = store.add(name, rows, str(picture), mode, taken)
    return style, info
