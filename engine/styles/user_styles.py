"""The user's own styles, stored in the user's data dir, of two kinds:

- picture styles (the default): the 100-number code the style predictor reads off the picture,
  run by the picture network. Made in about a second; they blend with each other through their codes.
- fitted rows (``--mode fit``/``full``): one extra row of every stock CIN table (~1k numbers), fitted
  in minutes; the only way to put a picture into the stock network, so it blends with stock rows.

Layout: ``<data>/styles/index.json`` + ``<data>/styles/<slug>.safetensors`` (``code`` or the rows).
A style is listed in the index only after its file is complete. Adding and removing hold a lock
across processes (``<data>/styles/.index.lock``) around the index's read-modify-write.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, StyleError, StylecamError
from ..locking import file_lock
from ..paths import MODELS_DIR, data_dir
from .packs import SLIM_MANIFEST, STOCK_MANIFEST, USER_LICENCE, StyleInfo, StylePack, slugify

log = logging.getLogger(__name__)

PICTURE_MANIFEST = MODELS_DIR / "picture.json"
PICTURE_MODE = "picture"
FIT_MODES = ("fit", "full")
MAX_NAME = 64  # characters: a name is also a file name (its slug) and a button label


class StyleSaveError(StylecamError):
    """A style could not be written (disk full, no permission): nothing of it was kept (HTTP 500)."""


def check_name(name: str) -> str:
    """The name, stripped, if a style spec can select it by name; InputError before anything is written.

    A spec is ``id``, ``name`` or a blend ``a:0.5,b:0.5``: a name with ``:`` or ``,`` would be read as a
    blend, one of digits only as a stock id, so neither could be selected after it was saved."""
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InputError(f"style name {name[:20]!r}… has {len(name)} characters; the limit is {MAX_NAME}")
    if not slugify(name):
        raise InputError(f"style name {name!r} needs at least one letter or digit")
    if any(c in name for c in ":,") or not name.isprintable():
        raise InputError(f"style name {name!r} may not contain ':', ',' or control characters "
                         "(a style spec would read it as a blend)")
    if name.isdigit():
        raise InputError(f"style name {name!r} is a number, which a style spec reads as a style id: add a letter")
    return name


@dataclass(frozen=True)
class UserStyle:
    name: str
    file: str
    source: str  # the picture it was made from
    mode: str
    created: str
    licence: str = USER_LICENCE

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

    def _locked(self):
        """Held around every read-modify-write of the index: two processes adding styles at once (the
        app and a `style add`, two apps) both keep theirs."""
        return file_lock(self.root / ".index.lock")

    def add(self, name: str, rows: dict[str, np.ndarray], source: str, mode: str, taken: set[str]) -> UserStyle:
        """Save a row set (``{"<layer>.norm.gamma": [C], "<layer>.norm.beta": [C]}``) under a new name.

        All or nothing: the name is checked (``check_name``; not in ``taken`` nor in the index) before
        anything is written, and a failed write leaves neither a file nor an index entry
        (StyleSaveError)."""
        from safetensors.numpy import save_file

        name = check_name(name)
        slug = slugify(name)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            styles = self.list()  # as it is now: another process may have added one since ``taken`` was read
            if slug in taken or slug in {s.slug for s in styles}:
                raise InputError(f"a style named {name!r} already exists (remove it first, or pick another name)")
            style = UserStyle(name=name, file=f"{slug}.safetensors", source=source, mode=mode,
                              created=time.strftime("%Y-%m-%d %H:%M"))
            tmp, final = self.root / f".{slug}.{os.getpid()}.tmp", self.root / style.file
            try:
                save_file({k: np.ascontiguousarray(v, np.float32) for k, v in rows.items()}, str(tmp))
                os.replace(tmp, final)
                self._write([*styles, style])
            except Exception as exc:  # safetensors raises its own error type for an OS failure
                tmp.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
                raise StyleSaveError(f"could not save style {name!r} in {self.root}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return style

    def remove(self, name: str) -> UserStyle:
        with self._locked():
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


def _mode(style: UserStyle) -> str:
    return {"fast": "fit"}.get(style.mode, style.mode)  # "fast" is what --mode fit was called before


def load_pack(manifest: Path = STOCK_MANIFEST, store: UserStyleStore | None = None) -> StylePack:
    """The stock pack plus the user's fitted rows."""
    pack = StylePack.load(manifest)
    store = store or UserStyleStore()
    kind = {"fit": "fitted row", "full": "row trained in full mode"}
    extra = [(StyleInfo(0, s.name, f"your picture {Path(s.source).name} ({kind[_mode(s)]})", s.licence), store.rows(s))
             for s in store.list() if _mode(s) in FIT_MODES]
    return with_rows(pack, extra)


def load_picture_pack(store: UserStyleStore | None = None, manifest: Path = PICTURE_MANIFEST) -> StylePack:
    """The picture network and the user's picture styles (their codes are the pack's vectors)."""
    from ..model.config import code_vector

    pack = StylePack.load(manifest)
    store = store or UserStyleStore()
    mine = [s for s in store.list() if _mode(s) == PICTURE_MODE]
    codes = []
    for s in mine:
        try:
            codes.append(code_vector(store.rows(s)["code"]))
        except KeyError:
            raise ModelError(f"corrupt user style {s.name!r}: it has no style code") from None
    pack.styles = [StyleInfo(i, s.name, f"your picture {Path(s.source).name} (picture style)", s.licence)
                   for i, s in enumerate(mine)]
    pack.vectors = np.stack(codes) if codes else np.zeros((0, pack.config.num_styles), np.float32)
    return pack


def load_catalog(manifest: Path = STOCK_MANIFEST, store: UserStyleStore | None = None):
    """Every style: stock and fitted rows, then the picture styles."""
    from .catalog import StyleCatalog

    store = store or UserStyleStore()
    return StyleCatalog([load_pack(manifest, store), load_picture_pack(store)], load_lighter(manifest), manifest=manifest)


def reload_catalog(catalog, store: UserStyleStore | None = None):
    """``catalog`` loaded again (styles added or removed on disk), from the manifest it came from: a
    ``--pack`` stays."""
    return load_catalog(catalog.manifest or STOCK_MANIFEST, store)


def load_lighter(manifest: Path = STOCK_MANIFEST) -> dict[str, StylePack]:
    """The slim student of the stock network, for the governor, when it stands in for this stock
    network and renders some of its styles within the quality floor (its manifest's ``within_floor``)."""
    if Path(manifest).resolve() != STOCK_MANIFEST.resolve() or not SLIM_MANIFEST.exists():
        return {}
    try:
        slim = StylePack.load(SLIM_MANIFEST)
    except ModelError as exc:  # the full network still runs; only the lighter level is gone
        log.warning("the slim network is not used: %s", exc)
        return {}
    return {slim.network: slim} if slim.manifest.get("within_floor") else {}


def add_picture_style(picture: "Path | bytes", name: str, store: UserStyleStore | None = None,
                      taken: set[str] | None = None, label: str = "") -> tuple[UserStyle, dict]:
    """A picture style: the predictor's code for ``picture``, saved as ``name`` (about a second)."""
    from ..model.predictor import PREDICT_SIZE, StylePredictor
    from .pictures import read_style_picture

    t = time.perf_counter()
    store = store or UserStyleStore()
    if taken is None:
        taken = {s.slug for s in load_catalog(store=store).styles}
    name = check_name(name)  # before the picture is decoded, and so before anything is written
    if slugify(name) in taken:
        raise InputError(f"a style named {name!r} already exists (remove it first, or pick another name)")
    image = read_style_picture(picture, label=label, short_side=2 * PREDICT_SIZE)  # the predictor sees 256²
    code = StylePredictor().code(image)
    source = label or (str(picture) if not isinstance(picture, (bytes, bytearray)) else "upload")
    style = store.add(name, {"code": code}, source, PICTURE_MODE, taken)
    return style, {"mode": PICTURE_MODE, "steps": 0, "seconds": time.perf_counter() - t}
