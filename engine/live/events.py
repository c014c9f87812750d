"""What a live session tells its clients (the app, the CLI), as types rather than strings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import (BackendUnavailable, InputError, ModelError, SinkError, SourceError, StyleError,
                     StylecamError)

ErrorKind = Literal["source", "backend", "style", "input", "record", "output", "gallery", "engine"]


class Event:
    """Base of every session event."""


@dataclass(frozen=True)
class Started(Event):
    """A source and backend run (after opening, or after a change of either)."""

    source: str
    backend: str


@dataclass(frozen=True)
class SourceGone(Event):
    """A live source stopped delivering frames (an unplugged camera); the last frame stays."""

    message: str


@dataclass(frozen=True)
class SourceBack(Event):
    """The lost source delivers again."""


@dataclass(frozen=True)
class BackendSwitched(Event):
    """A warmed-up faster backend took over between two frames."""

    backend: str


@dataclass(frozen=True)
class OutputChanged(Event):
    """The virtual camera or the network stream went on or off; ``failed`` when it could not start."""

    output: Literal["vcam", "stream", "record"]
    on: bool
    message: str
    failed: bool = False


@dataclass(frozen=True)
class StateChanged(Event):
    """The frames now use ``state`` (engine/live/state.py); ``fields`` says what changed; ``remote``: asked
    for over the network stream (an app shows it, never sends it back)."""

    state: Any
    fields: frozenset
    remote: bool = False


@dataclass(frozen=True)
class Notice(Event):
    """Something worth a status line: a recording saved, a fast path being prepared."""

    message: str


@dataclass(frozen=True)
class Failed(Event):
    """An error, with the part it belongs to, so a GUI can show it next to that part."""

    kind: ErrorKind
    message: str


def error_kind(exc: BaseException, default: ErrorKind = "engine") -> ErrorKind:
    """Which part an engine error belongs to, by its type."""
    for cls, kind in ((StyleError, "style"), (InputError, "input"), (SourceError, "source"),
                      (BackendUnavailable, "backend"), (ModelError, "backend"), (SinkError, "output")):
        if isinstance(exc, cls):
            return kind
    return default if isinstance(exc, StylecamError) else "engine"
