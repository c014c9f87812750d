"""A style as a typed mix: parsed once where text enters (the CLI, HTTP, the app's settings), then it
travels as this value to the frame, where the catalog resolves it into a weight vector.

A part names a style by id (a position in the catalog: the stock styles' ids never move) or by slug
(what the gallery sends: it survives a catalog that gains or loses a style before it). Shares are
normalised when resolved.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

import numpy as np

from ..errors import StyleError

Key = Union[int, str]  # a style id, or a style's slug


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass(frozen=True)
class StyleMix:
    parts: tuple[tuple[Key, float], ...]

    def __post_init__(self):
        shares = [share for _, share in self.parts]
        if not self.parts or not all(np.isfinite(shares)) or min(shares) < 0 or sum(shares) <= 0:
            raise StyleError(f"style weights must be non-negative and not all zero, got {self}")

    @classmethod
    def parse(cls, spec: "str | int | StyleMix") -> "StyleMix":
        """The style spec's grammar, the only parser of it: ``7``, ``Starry Swirl`` or ``3:0.5,12:0.5``."""
        if isinstance(spec, StyleMix):
            return spec
        if isinstance(spec, (int, np.integer)):
            return cls(((int(spec), 1.0),))
        text = str(spec)
        if not text.strip():
            raise StyleError("empty style spec: use an id like 7, a name, or a blend like 3:0.5,12:0.5")
        parts = []
        for part in text.split(","):
            key, _, amount = part.rpartition(":") if ":" in part else (part, "", "1")
            try:
                share = float(amount)
            except ValueError:
                raise StyleError(f"bad weight {amount!r} in style spec {text!r}: use e.g. 3:0.5,12:0.5") from None
            key = key.strip()
            parts.append((int(key) if re.fullmatch(r"\d+", key) else slugify(key), share))
        return cls(tuple(parts))

    @classmethod
    def named(cls, style: "int | str") -> "StyleMix":
        """One style, by id or by name (a name the program holds, not text a person typed)."""
        return cls(((style if isinstance(style, int) else slugify(style), 1.0),))

    @classmethod
    def of(cls, weights: np.ndarray, catalog) -> "StyleMix":
        """A weight vector over ``catalog``'s styles (the gallery's blend), by the styles' slugs."""
        w = np.asarray(weights, np.float32)
        return cls(tuple((catalog.styles[i].slug, float(w[i])) for i in np.flatnonzero(w > 0)))

    def weights(self, catalog) -> np.ndarray:
        """The normalised weight vector over ``catalog``'s styles; StyleError for a style it lacks."""
        if not catalog.styles:
            raise StyleError("no styles to choose from")
        w = np.zeros(catalog.num_styles, np.float32)
        for key, share in self.parts:
            w[catalog.lookup(key)] += share
        return w / w.sum()

    def label(self, catalog) -> str:
        """What a person reads: 'Starry Swirl' or 'Stained Glass 50% + Lilac Pastel 50%'."""
        w = self.weights(catalog)
        named = [(catalog.styles[i].name, w[i]) for i in np.flatnonzero(w)]
        if len(named) == 1:
            return named[0][0]
        return " + ".join(f"{n} {v:.0%}" for n, v in named)

    def largest(self, catalog, n: int = 2) -> list[tuple[int, float]]:
        """The ``n`` heaviest styles as (id, share), heaviest first (the app's two-style blend shows these)."""
        w = self.weights(catalog)
        order = [int(i) for i in w.argsort(kind="stable")[::-1] if w[i] > 0]
        return [(i, float(w[i])) for i in order[:n]]

    def spec(self, catalog) -> str:
        """The mix as a spec that names the styles as ``catalog`` does ('Starry Swirl', '3:0.5,Cat:0.5'):
        what /styles reports as current, and what parses back to this mix."""
        return self._text(lambda k: k if isinstance(k, int) else catalog.styles[catalog.lookup(k)].name)

    def __str__(self) -> str:
        """The mix as a spec (settings files, JSON): it parses back to an equal mix."""
        return self._text(lambda k: k)

    def _text(self, name) -> str:
        if len(self.parts) == 1 and self.parts[0][1] == 1.0:
            return str(name(self.parts[0][0]))
        return ",".join(f"{name(k)}:{share:.6g}" for k, share in self.parts)
