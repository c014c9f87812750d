"""The only place where Qt meets the engine: a thread that runs one live Session and turns its typed
events into Qt signals.

The GUI never waits on the model. The session publishes each result into a latest-frame slot that
the view polls; requests from the GUI (source, size, backend, style, recording, outputs, catalog) go
to the session, which owns all live state and applies them between two frames. Before the first
session opens, requests go into the settings it will open with. The fallback policy lives here too:
a source that cannot open falls back to the demo clip, a backend to auto, each said once.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine import defaults
from engine.errors import StylecamError
from engine.live.events import (BackendSwitched, Event, Failed, Notice, OutputChanged, SourceBack, SourceGone, Started,
                                StateChanged, error_kind)
from engine.live.governor import GovernorSettings
from engine.live.pipeline import FrameResult, Pipeline, StyleSettings
from engine.sinks.server import ServeSettings
from engine.live.session import Session, SessionSettings
from engine.live.thumbnails import make_thumbnails
from engine.styles.mix import StyleMix
from engine.styles.user_styles import UserStyleStore, reload_catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineRequest:
    source: str
    size: Optional[tuple[int, int]]
    backend: str


def _fallback(settings: SessionSettings, kind: str, message: str) -> tuple[Optional[SessionSettings], str]:
    """What to open instead after a failed open, and what to tell the user; (None, message): nothing."""
    if kind == "source" and settings.source != "demo":
        return replace(settings, source="demo"), f"{message} — showing the bundled demo clip instead"
    if kind == "backend" and settings.backend != "auto":
        return replace(settings, backend="auto"), f"{message} — using auto instead"
    return None, message


class EngineWorker(QObject):
    """Signals are delivered to the GUI thread (queued)."""

    status = Signal(str)  # transient news: a recording saved, a fast path ready
    sourceGone = Signal(str)  # the camera stopped delivering: the last frame stays on screen
    sourceBack = Signal()
    errored = Signal(str, str)  # (component, message): shown next to the component that failed
    started = Signal(str, str)  # (source description, backend description) after a (re)build
    thumbnail = Signal(int, str)  # (style id, png path)
    outputChanged = Signal(str, bool, str, bool)  # (output name, now on, message, failed)
    remoteStyle = Signal(object)  # a StyleMix asked for over the network stream (already in use: show it)
    catalogChanged = Signal(object, object)  # (catalog, the StyleMix in use with it): styles added or removed

    def __init__(self, catalog, request: EngineRequest, style: StyleSettings):
        super().__init__()
        self._lock = threading.Lock()
        self._catalog = catalog  # until a session owns it
        # what the first session opens with; later changes go to the session
        self._opening = SessionSettings(source=request.source, size=request.size, backend=request.backend,
                                        style=style, read_timeout=defaults.LIVE_READ_TIMEOUT_S,
                                        serve=ServeSettings(port=defaults.SERVE_PORT),
                                        governor=GovernorSettings(target_fps=defaults.TARGET_FPS_LIVE),
                                        idle_unwatched=True)
        self._viewing = True  # the window shows frames
        self._stop = threading.Event()
        self._retry = threading.Event()
        self.session: Optional[Session] = None
        self._opened: Optional[Session] = None  # the session being opened (its first events come from open())
        self._thread = threading.Thread(target=self._run, name="stylecam-engine", daemon=True)

    # -- GUI side -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def pipeline(self) -> Optional[Pipeline]:
        return self.session.pipeline if self.session else None

    @property
    def server(self):
        return self.session.server if self.session else None

    @property
    def warmup(self) -> Optional[threading.Thread]:
        return self.session.warmup if self.session else None

    @property
    def catalog(self):
        """The styles: the session's newest, or what the first session opens with."""
        session = self.session
        return session.wanted_catalog if session else self._catalog

    @property
    def current(self) -> Optional[EngineRequest]:
        """The source, size and backend running now (None before a session runs)."""
        session = self.session or self._opened
        return EngineRequest(*session.running()) if session else None

    def _change(self, **changes) -> bool:
        """Before a session: into the settings it opens with (True). After: False (ask the session)."""
        with self._lock:
            if self.session is None:
                self._opening = replace(self._opening, **changes)
                return True
        return False

    @property
    def serve_settings(self) -> ServeSettings:
        return self.session.serve_settings if self.session else self._opening.serve

    @serve_settings.setter
    def serve_settings(self, value: ServeSettings) -> None:
        if not self._change(serve=value):
            self.session.set_serve_settings(value)

    def request(self, **changes) -> None:
        """A new source/size/backend: the running session switches between frames (keeping the old one
        if the new one fails); before the first session, the next attempt uses it."""
        if self._change(**changes):
            self._retry.set()
            return
        if "source" in changes or "size" in changes:
            running = self.session.running()
            self.session.set_source(changes.get("source", running[0]), changes.get("size", running[1]))
        if "backend" in changes:
            self.session.set_backend(changes["backend"])

    def set_look(self, look: StyleSettings) -> None:
        """The look the controls show (the gallery's mix, strength, colours...), whole."""
        if self._change(style=look):
            return
        try:
            self.session.set_look(look)
        except StylecamError as exc:
            self.errored.emit(error_kind(exc, "style"), str(exc))

    def set_full_quality(self, on: bool) -> None:
        """Pin the render scale at 1.0 (governor off), or hold the live frame rate again."""
        governor = GovernorSettings(target_fps=None if on else defaults.TARGET_FPS_LIVE)
        if not self._change(governor=governor):
            self.session.set_governor(governor)

    def set_recording(self, path: Optional[Path]) -> None:
        if self.session is not None:
            self.session.record(path)

    def reload_styles(self, select: Optional[str] = None) -> None:
        """A style was added here (on disk): the session rebuilds the catalog (from the manifest it runs,
        so a --pack stays) and every client sees it (catalogChanged). Before a session, the next one
        opens with it."""
        with self._lock:
            if self.session is None:
                catalog = reload_catalog(self._catalog)
                self._catalog = catalog
                if select is not None:
                    self._opening = replace(self._opening, style=replace(self._opening.style,
                                                                         style=StyleMix.named(select)))
                self.catalogChanged.emit(catalog, self._opening.style.style)
                return
        try:
            self.session.reload_catalog(select=select)
        except StylecamError as exc:
            self.errored.emit("gallery", str(exc))

    def remove_style(self, name: str) -> None:
        """Delete one of the user's styles, through the session (stock styles cannot be removed)."""
        try:
            if self.session is None:
                UserStyleStore().remove(name)
                self.reload_styles()
            else:
                self.session.remove_style(name)
        except StylecamError as exc:
            self.errored.emit("gallery", str(exc))

    def set_output(self, name: str, on: bool) -> None:
        """Turn the virtual camera ("vcam") or the network stream ("stream") on or off."""
        if self.session is not None:
            self.session.set_output(name, on)

    def set_viewing(self, on: bool) -> None:
        """The window shows frames (False: minimized or hidden: the session idles unless an output reads)."""
        self._viewing = on
        if self.session is not None:
            self.session.set_viewing(on)

    def latest(self) -> tuple[int, Optional[FrameResult]]:
        return self.session.latest.latest() if self.session else (0, None)

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to quit and join it; False (and a log line) if it did not stop in time."""
        self._stop.set()
        self._retry.set()
        if self.session is not None:
            self.session.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        alive = self._thread.is_alive()
        if alive:
            log.error("engine worker did not stop within %.1fs", timeout)
        return not alive

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # -- worker thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._open():
                    self.session.call_soon(self._make_thumbnails)
                    self.session.run(stop=self._stop)
                    break
                self._retry.wait()  # nothing left to fall back to: wait for the user's next choice
                self._retry.clear()
        except Exception as exc:  # one catch around the loop: report, never take the GUI down
            log.exception("engine worker failed")
            self.errored.emit("engine", f"{type(exc).__name__}: {exc}")
        finally:
            if self.session is not None:
                self.session.close()

    def _open(self) -> bool:
        """Open a session with the settings asked for, falling back (demo clip, auto) on failure."""
        while not self._stop.is_set():
            with self._lock:
                settings, catalog = self._opening, self._catalog
            session = self._opened = Session(catalog, settings, on_event=self._on_event)
            session.set_viewing(self._viewing)
            try:
                session.open()
            except StylecamError as exc:
                session.close()
                self._opened = None
                kind = error_kind(exc, "backend")
                instead, message = _fallback(settings, kind, str(exc))
                self.errored.emit(kind, message)
                if instead is None:
                    return False
                with self._lock:
                    self._opening = instead
                continue
            with self._lock:
                self.session = session
            return True
        return False

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            self.started.emit(event.source, event.backend)
        elif isinstance(event, SourceGone):
            self.sourceGone.emit(f"{event.message} — showing the last frame")
        elif isinstance(event, SourceBack):
            self.sourceBack.emit()
        elif isinstance(event, BackendSwitched):
            self.status.emit(f"fast path ready: {event.backend}")
        elif isinstance(event, Notice):
            self.status.emit(event.message)
        elif isinstance(event, Failed):
            self.errored.emit(event.kind, event.message)
        elif isinstance(event, OutputChanged):
            if event.output == "record":
                (self.errored.emit("record", event.message) if event.failed else self.status.emit(event.message))
            else:
                self.outputChanged.emit(event.output, event.on, event.message, event.failed)
        elif isinstance(event, StateChanged):
            if "catalog" in event.fields:  # added or removed, here or over the network: the gallery follows
                self.catalogChanged.emit(event.state.catalog, event.state.style.style)
                self._make_thumbnails()  # on the session's thread, with the backend that serves it
            elif "style" in event.fields and event.remote:
                self.remoteStyle.emit(event.state.style.style)

    def _make_thumbnails(self) -> None:
        """On the session's thread (between frames), with the backend in use."""
        session = self.session
        if session is None:
            return
        try:
            for style_id, path in enumerate(make_thumbnails(session.catalog, session.pipeline.backend)):
                self.thumbnail.emit(style_id, str(path))
                if self._stop.is_set():
                    return
        except StylecamError as exc:
            self.errored.emit("gallery", str(exc))


class StyleTrainer(QObject):
    """Adds a user style on a background thread. A picture style (the default) is ready in about a
    second; a fitted row (``settings.mode`` fit/full) shows an instant teacher preview first, then
    progress. Then the app swaps in the new catalog and the gallery gains the style."""

    preview = Signal(object)  # RGB uint8: the current frame in the picture's style (picture network)
    progress = Signal(int, int)
    finished = Signal(str)  # the new style's name
    failed = Signal(str)

    def __init__(self, picture: Path, name: str, frame: Optional[np.ndarray], settings=None):
        super().__init__()
        from engine.training.fit_row import FitSettings

        self.picture, self.name, self.frame = Path(picture), name, frame
        self.settings = settings or FitSettings(mode="picture")
        self._thread = threading.Thread(target=self._run, name="style-trainer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        from engine.live.preview import picture_preview
        from engine.training.new_style import add_style

        try:
            if self.frame is not None and self.settings.mode != "picture":
                self.preview.emit(picture_preview(self.frame, self.picture))
            add_style(self.picture, self.name, self.settings, progress=lambda i, n, loss: self.progress.emit(i, n))
        except StylecamError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # report, never take the app down
            log.exception("adding a style failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(self.name)
