"""What a live run is, as one frozen value: the session holds the only instance that the frames use.

A request from any thread makes the next value (checked at once, against the newest one asked for);
the session applies it between two frames and tells its clients with ``StateChanged``. Nothing else
keeps a copy: the app and the server read the state from that event, the pipeline receives it whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..sinks.server import ServeSettings
from ..styles.catalog import StyleCatalog
from .governor import GovernorSettings
from .pipeline import StyleSettings


@dataclass(frozen=True)
class Outputs:
    """What the frames go to besides the preview: the virtual camera, the network stream, a recording."""

    vcam: bool = False
    stream: bool = False
    record: Optional[Path] = None  # recording to this MP4 (None: not recording)


@dataclass(frozen=True)
class LiveState:
    catalog: StyleCatalog
    style: StyleSettings  # the look: the style mix (typed, over the catalog's styles), strength, colours...
    governor: GovernorSettings  # the frame rate held by the render scale (off: full quality)
    source: str  # camera | camera:N | a file | demo | synthetic ...
    size: Optional[tuple[int, int]]  # (width, height); None: the source's own
    backend: str  # auto, or a backend by name
    keyframes: str = "auto"  # carry full-size keyframes along the motion: auto | on | off
    outputs: Outputs = field(default_factory=Outputs)
    serve: ServeSettings = field(default_factory=ServeSettings)  # where the next network stream listens

    def label(self) -> str:
        """The source (and size), as a status line says it."""
        return self.source if self.size is None else f"{self.source} @ {self.size[0]}x{self.size[1]}"


def changed(old: LiveState, new: LiveState) -> frozenset[str]:
    """The fields whose values differ (the catalog by identity: a reload is a new catalog)."""
    names = [f for f in LiveState.__dataclass_fields__ if f != "catalog" and getattr(old, f) != getattr(new, f)]
    if old.catalog is not new.catalog:
        names.append("catalog")
    return frozenset(names)
