"""Every style a user can pick, across the two style networks.

Ids run through the stock network's styles (26 stock rows, then the user's fitted rows) and then
the picture network's (each the code of a picture). A spec may mix styles of both networks: each
network then runs once with its own part of the mix, and the outputs are blended by the parts'
shares (twice the cost; the HUD says so). Within one network a blend is one vector, one run.

A network may have a lighter stand-in (the slim student of the stock network) for the rows its
manifest lists as rendered within the quality floor (``within_floor``): the governor runs it
instead of lowering the render scale, for the styles (and blends of them) it carries that well.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .packs import USER_LICENCE, StyleInfo, StylePack, StyleSpecs


@dataclass(frozen=True)
class MixPart:
    """One network's share of a style mix: its style vector and its weight in the output."""

    family: str
    vector: np.ndarray
    fraction: float


class StyleCatalog(StyleSpecs):
    def __init__(self, packs: list[StylePack], lighter: dict[str, StylePack] | None = None,
                 manifest: Path | None = None):
        """``lighter``: network name → a lighter network standing in for the network of its family;
        ``manifest``: the stock network's manifest it was loaded from (a reload loads the same one)."""
        self.manifest = manifest
        self.packs = {p.family: p for p in packs}
        self.lighter = {name: p for name, p in (lighter or {}).items() if p.family in self.packs}
        self.styles: list[StyleInfo] = []
        self.offsets: dict[str, int] = {}
        for pack in packs:
            self.offsets[pack.family] = len(self.styles)
            self.styles += [replace(s, id=len(self.styles) + i) for i, s in enumerate(pack.styles)]
        self.digest = hashlib.sha256("".join(p.digest + p.family for p in packs).encode()).hexdigest()

    @property
    def stock(self) -> StylePack:
        return self.packs["stock"]

    def is_own(self, style_id: int) -> bool:
        """A style the user made (removable), as opposed to one that ships with stylecam."""

        return self.styles[style_id].licence == USER_LICENCE

    def family_of(self, style_id: int) -> str:
        return next(f for f, off in reversed(self.offsets.items()) if style_id >= off)

    def parts(self, weights: np.ndarray) -> list[MixPart]:
        """A weight vector over every style → one part per network it touches."""
        out = []
        for family, pack in self.packs.items():
            off = self.offsets[family]
            share = np.asarray(weights[off:off + pack.num_styles], np.float32)
            total = float(share.sum())
            if total > 0:
                out.append(MixPart(family, pack.vector(share / total), total))
        return out

    def network(self, name: str) -> StylePack | None:
        """A style network (by family) or a lighter one (by its name)."""
        return self.packs.get(name) or self.lighter.get(name)

    def lighten(self, parts: list[MixPart]) -> list[MixPart]:
        """``parts`` with each network that has a lighter stand-in for its vector swapped for it."""
        out = []
        for part in parts:
            rows = set(np.flatnonzero(part.vector).tolist())
            for name, pack in self.lighter.items():
                if pack.family == part.family and rows <= set(pack.manifest.get("within_floor", ())):
                    part = MixPart(name, part.vector[:pack.num_styles], part.fraction)
                    break
            out.append(part)
        return out

    def lighter_for(self, style_id: int) -> str | None:
        """The lighter network that renders this style within the quality floor, if any."""
        weights = np.zeros(len(self.styles), np.float32)
        weights[style_id] = 1.0
        part = self.lighten(self.parts(weights))[0]
        return part.family if part.family in self.lighter else None

    def style_key(self, style_id: int) -> str:
        """Changes when what the style looks like changes (thumbnail cache keys)."""
        family = self.family_of(style_id)
        pack, local = self.packs[family], style_id - self.offsets[family]
        what = pack.digest + (pack.vectors[local].tobytes().hex() if pack.vectors is not None else str(local))
        return hashlib.sha256(what.encode()).hexdigest()[:16]


def as_catalog(pack) -> StyleCatalog:
    """A catalog as it is; one network's StylePack as the catalog of that network alone."""
    return StyleCatalog([pack]) if isinstance(pack, StylePack) else pack
