"""Style pictures from files or uploads: checked from the header before anything is decoded, so a
huge, empty or odd picture costs one clear error line and never a traceback or a half-written style."""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, SourceError

MAX_BYTES = 32 << 20  # 32 MiB: the server's upload cap too
MAX_PIXELS = 40_000_000  # ~ 8000×5000; a style needs far less (the predictor sees 256×256)
MIN_SIDE = 32


class PictureTooLarge(InputError):
    """Bigger than MAX_BYTES or MAX_PIXELS (HTTP 413)."""


@dataclass(frozen=True)
class PictureLimits:
    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    min_side: int = MIN_SIDE


def read_style_picture(source: "Path | bytes", limits: PictureLimits = PictureLimits(), label: str = "",
                       short_side: int = 0) -> np.ndarray:
    """RGB uint8 from a picture file or its bytes; SourceError (unreadable) or InputError (one line,
    naming it) for anything else.

    ``short_side``: the picture is only needed this big (its shorter side at least this long), so a big
    one is decoded reduced: a JPEG at 1/2, 1/4 or 1/8 by its decoder (as ``cv2.IMREAD_REDUCED_*``), any
    other format reduced in its own mode (a 1-bit or grey picture stays one byte a pixel) before it
    becomes RGB. 0: full size (a style fitted to the picture wants all of it).

    Refused, each with its reason: unreadable or empty files, sides under ``min_side``, more than
    ``max_pixels``, animated pictures (which frame?), and pictures whose colours would have to be
    guessed: CMYK, 16-bit and transparent (alpha) ones, which the user can flatten to 8-bit RGB.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray)):
        name, data = label or "the picture", bytes(source)
    else:
        path = Path(source)
        name = label or str(path)
        if not path.is_file():
            raise SourceError(f"file not found: {name}")
        if path.stat().st_size > limits.max_bytes:
            raise PictureTooLarge(f"picture {name} is {path.stat().st_size >> 20} MiB; the limit is "
                                  f"{limits.max_bytes >> 20} MiB")
        data = path.read_bytes()
    if not data:
        raise InputError(f"picture {name} is empty")
    if len(data) > limits.max_bytes:
        raise PictureTooLarge(f"picture {name} is {len(data) >> 20} MiB; the limit is {limits.max_bytes >> 20} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own cap (~179 MP) comes first
        size = re.search(r"\((\d+) pixels\)", str(exc))
        mp = f"{int(size.group(1)) / 1e6:.0f} MP" if size else "too many pixels"
        raise PictureTooLarge(f"picture {name} has {mp}; the limit is {limits.max_pixels / 1e6:.0f} MP: "
                              "scale it down first") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise SourceError(f"cannot read image {name}: not a supported picture (png, jpg, bmp, webp, tiff)") from None
    w, h = img.size
    if w * h > limits.max_pixels:
        raise PictureTooLarge(f"picture {name} is {w}x{h} ({w * h / 1e6:.0f} MP); the limit is "
                              f"{limits.max_pixels / 1e6:.0f} MP: scale it down first")
    if min(w, h) < limits.min_side:
        raise InputError(f"picture {name} is too small ({w}x{h}); use at least {limits.min_side} px a side")
    if getattr(img, "n_frames", 1) > 1:
        raise InputError(f"picture {name} is animated ({img.n_frames} frames): save the frame you want as PNG or JPEG")
    if img.mode == "CMYK":
        raise InputError(f"picture {name} is CMYK: save it as RGB (PNG or JPEG) first")
    png16 = data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24 and data[24] == 16  # IHDR bit depth
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F") or png16:
        raise InputError(f"picture {name} has 16-bit or float channels: save it as 8-bit RGB first")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        raise InputError(f"picture {name} has transparency (alpha): flatten it to RGB first")
    try:
        rgb = np.asarray(_reduced(img, short_side).convert("RGB"))
    except (OSError, ValueError) as exc:  # truncated or corrupt pixel data
        raise InputError(f"cannot decode picture {name}: {exc}") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"picture {name} is not an 8-bit colour or grey image")
    return np.ascontiguousarray(rgb)


def _reduced(img, short_side: int):
    """``img`` decoded no bigger than needed for ``short_side`` (see read_style_picture): an integer
    reduction, so the picture's look is kept; the caller's resize does the rest."""
    w, h = img.size
    factor = min(w, h) // short_side if short_side else 1
    if factor < 2:
        return img
    if img.format == "JPEG":
        img.draft("RGB", (-(-w // factor), -(-h // factor)))  # DCT scaling: never decoded at full size
        w, h = img.size
        factor = min(w, h) // short_side
        if factor < 2:
            return img
    if img.mode not in ("L", "RGB", "LA", "RGBA", "I", "F", "I;16"):  # reduce() takes 8-bit grey or colour
        img = img.convert("L" if img.mode == "1" else "RGB")
    return img.reduce(factor)
