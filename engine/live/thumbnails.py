"""Style thumbnails: a reference photo stylized once per style, cached as PNGs (never shipped)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from ..backends.networks import NetworkBackends
from ..frame.frames import fit_cover
from ..paths import asset_photo, cache_dir
from ..sinks.video import write_image
from ..styles.catalog import StyleCatalog

log = logging.getLogger(__name__)
THUMB_SIZE = (112, 84)


def reference_photo(size: tuple[int, int] = THUMB_SIZE) -> np.ndarray:
    """The astronaut (assets/photos), cropped to the face and shoulders: shows texture and colour well."""
    photo = asset_photo("astronaut")[0:400, 60:460]
    return fit_cover(photo, (size[0] * 2, size[1] * 2))


def thumbnail_path(catalog: StyleCatalog, style_id: int) -> Path:
    """Keyed by what the style looks like: a catalog's picture styles change with their codes."""
    return cache_dir() / "thumbs" / f"{catalog.style_key(style_id)}.png"


def make_thumbnails(catalog: StyleCatalog, backend: NetworkBackends,
                    on_progress: Callable[[int, Path], None] = lambda i, p: None) -> Iterator[Path]:
    """Yield each style's thumbnail path, stylizing only those not cached yet."""
    photo = None
    for style in catalog.styles:
        path = thumbnail_path(catalog, style.id)
        if not path.is_file():
            if photo is None:
                photo = reference_photo()
            out = backend.run(photo, catalog.weights(style.id))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image(path, cv2.resize(out, THUMB_SIZE, interpolation=cv2.INTER_AREA))
        on_progress(style.id, path)
        yield path
