"""The only place where Qt meets the engine: a thread that runs one live Session and turns its typed
events into Qt signals.

The GUI never waits on the model. The session publishes each result into a latest-frame slot that
the view polls; requests from the GUI (source, size, backend, style, recording, outputs, catalog) go
to the session, which applies them between two frames. Until the first source and backend open, the
worker holds the request and retries with the next one (the GUI falls back to the demo clip or auto).
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
from engine.events import (BackendSwitched, CatalogChanged, Event, Failed, Notice, OutputChanged, SourceBack,
                           SourceGone, Started, StyleChanged, error_kind)
from engine.governor import GovernorSettings
from engine.pipeline import FrameResult, Pipeline, StyleSettings
from engine.server import ServeSettings
from engine.session import Session, SessionSettings
from engine.styles import StylePack
from engine.thumbnails import make_thumbnails

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineRequest:
    source: str
    size: Optional[tuple[int, int]]
    backend: str


class EngineWorker(QObject):
    """Signals are delivered to the GUI thread (queued)."""

    status = Signal(str)  # transient news: a recording saved, a fast path ready
    sourceGone = Signal(str)  # the camera stopped delivering: the last frame stays on screen
    sourceBack = Signal()
    errored = Signal(str, str)  # (component, message): shown next to the component that failed
    started = Signal(str, str)  # (source description, backend description) after a (re)build
    thumbnail = Signal(int, str)  # (style id, png path)
    outputChanged = Signal(str, bool, str, bool)  # (output name, now on, message, failed)
    remoteStyle = Signal(str)  # a style asked for over the network stream
    remotePicture = Signal(str)  # a picture style added over the network stream (its name)

    def __init__(self, pack: StylePack, request: EngineRequest, style: StyleSettings):
        super().__init__()
        self.pack = pack
        self._lock = threading.Lock()
        self._wanted = request  # what to open, until a session runs
        self._style = style
        self._serve = ServeSettings(port=defaults.SERVE_PORT)
        self._governor = GovernorSettings(target_fps=defaults.TARGET_FPS_LIVE)
        self._stop = threading.Event()
        self._retry = threading.Event()
        self._viewing = True  # the window shows frames
        self.session: Optional[Session] = None
        self._opening: Optional[Session] = None  # the session being opened (its events arrive first)
        self.current: Optional[EngineRequest] = None
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
    def serve_settings(self) -> ServeSettings:
        return self._serve

    @serve_settings.setter
    def serve_settings(self, value: ServeSettings) -> None:
        self._serve = value
        if self.session is not None:
            self.session.settings = replace(self.session.settings, serve=value)

    def request(self, **changes) -> None:
        """A new source/size/backend: the running session switches between frames (keeping the old one
        if the new one fails); before the first session, the next attempt uses it."""
        with self._lock:
            self._wanted = replace(self._wanted, **changes)
            session = self.session
        if session is None:
            self._retry.set()
            return
        if "source" in changes or "size" in changes:
            session.set_source(self._wanted.source, self._wanted.size)
        if "backend" in changes:
            session.set_backend(self._wanted.backend)

    def set_style(self, style: StyleSettings) -> None:
        self._style = style
        if self.session is not None:
            try:
                self.session.set_style_settings(style=style.style, strength=style.strength,
                                                preserve_colors=style.preserve_colors, stabilize=style.stabilize,
                                                mask=style.mask)
            except StylecamError as exc:
                self.errored.emit(error_kind(exc, "style"), str(exc))

    def set_full_quality(self, on: bool) -> None:
        """Pin the render scale at 1.0 (governor off), or hold the live frame rate again."""
        self._governor = GovernorSettings(target_fps=None if on else defaults.TARGET_FPS_LIVE)
        if self.session is not None:
            self.session.set_governor(self._governor)

    def set_recording(self, path: Optional[Path]) -> None:
        if self.session is not None:
            self.session.record(path)

    def set_pack(self, pack: StylePack) -> None:
        """Styles were added or removed: the session swaps the catalog between frames."""
        self.pack = pack
        if self.session is not None:
            self.session.set_catalog(pack)
            self.session.call_soon(self._make_thumbnails)

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
                self._retry.wait()  # the GUI asks for a fallback (demo clip, auto)
                self._retry.clear()
        except Exception as exc:  # one catch around the loop: report, never take the GUI down
            log.exception("engine worker failed")
            self.errored.emit("engine", f"{type(exc).__name__}: {exc}")
        finally:
            if self.session is not None:
                self.session.close()

    def _open(self) -> bool:
        with self._lock:
            want = self._wanted
        style = self._style
        settings = SessionSettings(source=want.source, size=want.size, backend=want.backend, style=style,
                                   read_timeout=defaults.LIVE_READ_TIMEOUT_S, serve=self._serve,
                                   governor=self._governor, idle_unwatched=True)
        session = self._opening = Session(self.pack, settings, on_event=self._on_event)
        session.set_viewing(self._viewing)
        try:
            session.open()
        except StylecamError as exc:
            session.close()
            self.errored.emit(error_kind(exc, "backend"), str(exc))
            return False
        with self._lock:
            self.session = session
        return True

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            s = (self.session or self._opening).settings
            self.current = EngineRequest(s.source, s.size, s.backend)
            with self._lock:
                self._wanted = self.current
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
        elif isinstance(event, StyleChanged) and event.remote:
            self.remoteStyle.emit(event.spec)
        elif isinstance(event, CatalogChanged) and event.select:
            self.remotePicture.emit(event.select)

    def _make_thumbnails(self) -> None:
        """On the session's thread (between frames), with the backend in use."""
        try:
            for style_id, path in enumerate(make_thumbnails(self.pack, self.session.pipeline.backend)):
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
        from engine.user_styles import add_style, picture_preview

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
