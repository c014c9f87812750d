"""The only place where Qt meets the engine: a worker thread that owns source, backend and pipeline.

The GUI never waits on the model. The worker publishes each result into a one-slot "latest"
(frame + sequence number) that the view polls; requests from the GUI (source, size, backend,
style, recording) go into latest-wins slots the worker applies before its next frame.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine.backends import BackendOptions, create_backend
from engine.backends.base import COMPILED_CPU
from engine.capture import SourceSettings, open_source
from engine.errors import SourceLost, StylecamError
from engine.pipeline import FrameResult, Pipeline, StyleSettings
from engine.server import ServeSettings, StreamServer
from engine.sinks import VideoFileSink
from engine.sinks.mjpeg import MjpegHub
from engine.sinks.virtualcam import VirtualCamSink
from engine.styles import StylePack
from engine.thumbnails import make_thumbnails

log = logging.getLogger(__name__)


# A network first needed mid-stream (a new picture style) runs at once while its compiled build warms aside.
LIVE = BackendOptions(background_warmup=True)


@dataclass(frozen=True)
class EngineRequest:
    source: str
    size: Optional[tuple[int, int]]
    backend: str


class EngineWorker(QObject):
    """Runs the pipeline on a Python thread; signals are delivered to the GUI thread (queued)."""

    status = Signal(str)  # transient news: camera lost/back, recording saved
    errored = Signal(str, str)  # (component, message): shown next to the component that failed
    started = Signal(str, str)  # (source description, backend description) after a (re)build
    thumbnail = Signal(int, str)  # (style id, png path)
    outputChanged = Signal(str, bool, str)  # (output name, now on, message)
    remoteStyle = Signal(str)  # a style asked for over the network stream
    remotePicture = Signal(str)  # a picture style added over the network stream (its name)

    def __init__(self, pack: StylePack, request: EngineRequest, style: StyleSettings):
        super().__init__()
        self.pack = pack
        self._lock = threading.Lock()
        self._request: Optional[EngineRequest] = request  # pending, applied by the worker
        self._wanted = request  # the newest request ever made (the base for the next change)
        self._style = style
        self._style_dirty = True
        self._record: Optional[Path] = None
        self._record_dirty = False
        self._outputs: dict[str, bool] = {}  # "vcam"/"stream" → wanted on
        self._outputs_dirty = False
        self._upgrade = None  # a warmed-up faster backend, swapped in at the next frame
        self._new_pack: Optional[StylePack] = None
        self.warmup: Optional[threading.Thread] = None  # compiles the fast path in the background
        self.server: Optional[StreamServer] = None
        self.serve_settings = ServeSettings(port=8080)
        self._stop = threading.Event()
        self._latest: Optional[FrameResult] = None
        self._seq = 0
        self.current: Optional[EngineRequest] = None
        self.pipeline: Optional[Pipeline] = None
        self._thread = threading.Thread(target=self._run, name="stylecam-engine", daemon=True)

    # -- GUI side -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def request(self, **changes) -> None:
        """Rebuild with a new source/size/backend; the worker applies the newest request."""
        with self._lock:
            self._wanted = self._request = replace(self._wanted, **changes)

    def set_style(self, style: StyleSettings) -> None:
        with self._lock:
            self._style, self._style_dirty = style, True

    def set_recording(self, path: Optional[Path]) -> None:
        with self._lock:
            self._record, self._record_dirty = path, True

    def set_pack(self, pack: StylePack) -> None:
        """A new style pack (a user style was added): the worker rebuilds its backend with it."""
        with self._lock:
            self._new_pack = pack

    def set_output(self, name: str, on: bool) -> None:
        """Turn the virtual camera ("vcam") or the network stream ("stream") on or off."""
        with self._lock:
            self._outputs[name] = on
            self._outputs_dirty = True

    def latest(self) -> tuple[int, Optional[FrameResult]]:
        with self._lock:
            return self._seq, self._latest

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to quit and join it; False (and a log line) if it did not stop in time."""
        self._stop.set()
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
            self._loop()
        except Exception as exc:  # one catch around the loop: report, never take the GUI down
            log.exception("engine worker failed")
            self.errored.emit("engine", f"{type(exc).__name__}: {exc}")
        finally:
            if self.server is not None:
                self.server.close()
            if self.pipeline is not None:
                self.pipeline.close()

    def _loop(self) -> None:
        lost = False
        while not self._stop.is_set():
            self._apply_requests()
            if self.pipeline is None:
                self._stop.wait(0.05)
                continue
            try:
                result = self.pipeline.step()
            except SourceLost as exc:
                if not lost:
                    self.status.emit(f"{exc} — showing the last frame")
                lost = True
                continue
            except StylecamError as exc:
                self.errored.emit("style", str(exc))
                self._stop.wait(0.2)
                continue
            if result is None:  # a non-looping source ended: keep the last frame on screen
                self._stop.wait(0.05)
                continue
            if lost:
                self.status.emit("camera is back")
                lost = False
            with self._lock:
                self._latest, self._seq = result, self._seq + 1

    def _apply_requests(self) -> None:
        with self._lock:
            request, self._request = self._request, None
            style, style_dirty, self._style_dirty = self._style, self._style_dirty, False
            record, record_dirty, self._record_dirty = self._record, self._record_dirty, False
            outputs, outputs_dirty, self._outputs_dirty = dict(self._outputs), self._outputs_dirty, False
        if request is not None and request != self.current:
            self._rebuild(request)
        if self.pipeline is None:
            return
        with self._lock:
            upgrade, self._upgrade = self._upgrade, None
            new_pack, self._new_pack = self._new_pack, None
        if new_pack is not None:
            self._swap_pack(new_pack)
        if upgrade is not None and upgrade.pack is not self.pack:
            if hasattr(upgrade, "adopt") and upgrade.pack.stock.digest == self.pack.stock.digest:
                upgrade.adopt(self.pack)  # a picture style arrived while it warmed up
            else:
                upgrade.close()
                upgrade = None
        if upgrade is not None:
            if self.current.backend == "auto":
                old, self.pipeline.backend = self.pipeline.backend, upgrade
                old.close()
                log.info("switched to the warmed-up %s", upgrade.describe())
                self.started.emit(self.current.source, upgrade.describe())
                self.status.emit(f"fast path ready: {upgrade.describe()}")
            else:
                upgrade.close()
        if style_dirty:
            try:
                self.pipeline.update(style=style.style, strength=style.strength,
                                     preserve_colors=style.preserve_colors, stabilize=style.stabilize,
                                     mask=style.mask)
            except StylecamError as exc:
                self.errored.emit("style", str(exc))
        if record_dirty:
            self._set_record_sink(record)
        if outputs_dirty:
            self._apply_outputs(outputs)

    def _rebuild(self, request: EngineRequest) -> None:
        """Open what changed; on failure keep the running pipeline and report the component."""
        old = self.pipeline
        source = backend = None
        try:
            if old is None or self.current is None or (request.source, request.size) != (
                    self.current.source, self.current.size):
                source = open_source(SourceSettings(spec=request.source, size=request.size, loop=True))
            if old is None or self.current is None or request.backend != self.current.backend:
                # "auto" starts on a backend that needs no compile; a compiled CPU path warms up
                # in the background and replaces it when ready (see _prepare_upgrade).
                backend = create_backend(request.backend, pack=self.pack, options=LIVE,
                                         oneshot=request.backend == "auto")
                if request.backend == "auto":
                    self.warmup = threading.Thread(target=self._prepare_upgrade, args=(backend.name,),
                                                   name="backend-warmup", daemon=True)
                    self.warmup.start()
        except StylecamError as exc:
            if source is not None:
                source.close()
            self.errored.emit("backend" if source is not None else "source", str(exc))
            return
        if old is not None:
            for part, new in ((old.source, source), (old.backend, backend)):
                if new is not None:
                    part.close()
        pipe = Pipeline(source or old.source, backend or old.backend, self.pack,
                        old.sinks if old else [], old.settings if old else StyleSettings(), read_timeout=0.25)
        self.pipeline, self.current = pipe, request
        self._style_dirty = True
        label = request.source if request.size is None else f"{request.source} @ {request.size[0]}x{request.size[1]}"
        self.started.emit(label, pipe.backend.describe())
        if old is None:
            self._make_thumbnails()

    def _swap_pack(self, pack: StylePack) -> None:
        current = self.pipeline.backend
        try:
            if hasattr(current, "adopt") and current.catalog.stock.digest == pack.stock.digest:
                backend = current.adopt(pack)  # a picture style: nothing to rebuild
            else:
                backend = create_backend(self.current.backend, pack=pack, options=LIVE,
                                         oneshot=self.current.backend == "auto")
        except StylecamError as exc:
            self.errored.emit("backend", str(exc))
            return
        self.pack = pack
        old = self.pipeline.set_pack(pack, backend)
        if old is not backend:
            old.close()
        self._make_thumbnails()

    def _prepare_upgrade(self, current_name: str) -> None:
        """Build the full `auto` choice; if it is a compiled CPU path, warm it on a real frame."""
        if self._stop.wait(2.0):  # a window closed right away never starts an (uninterruptible) compile
            return
        try:
            best = create_backend("auto", pack=self.pack, options=LIVE)
        except StylecamError:
            return
        if best.name == current_name or best.name not in COMPILED_CPU:
            best.close()
            return
        self.status.emit(f"preparing {best.name} (builds once per size, about 20–60 s)…")
        while not self._stop.is_set():
            _, result = self.latest()
            if result is not None:
                try:
                    best.warm(result.original)  # compiles each network for this size
                except Exception as exc:  # a failed upgrade keeps the running backend
                    log.warning("fast path failed to start: %s", exc)
                    best.close()
                    return
                with self._lock:
                    self._upgrade = best
                return
            self._stop.wait(0.1)
        best.close()

    def _make_thumbnails(self) -> None:
        try:
            for style_id, path in enumerate(make_thumbnails(self.pack, self.pipeline.backend)):
                self.thumbnail.emit(style_id, str(path))
                if self._stop.is_set():
                    return
        except StylecamError as exc:
            self.errored.emit("gallery", str(exc))

    def _apply_outputs(self, wanted: dict[str, bool]) -> None:
        sinks = self.pipeline.sinks
        vcam = next((s for s in sinks if isinstance(s, VirtualCamSink)), None)
        hub = next((s for s in sinks if isinstance(s, MjpegHub)), None)
        if wanted.get("vcam") and vcam is None:
            size = self.current.size or (640, 480)
            try:
                sink = VirtualCamSink(size[0] - size[0] % 2, size[1] - size[1] % 2, self.pipeline.source.fps or 30.0)
                sinks.append(sink)
                self.outputChanged.emit("vcam", True, f"virtual camera on: {sink.device}")
            except StylecamError as exc:
                self.outputChanged.emit("vcam", False, str(exc))
        elif not wanted.get("vcam") and vcam is not None:
            sinks.remove(vcam)
            vcam.close()
            self.outputChanged.emit("vcam", False, "virtual camera off")
        if wanted.get("stream") and hub is None:
            hub = MjpegHub()
            try:
                self.server = StreamServer(hub, _WorkerControl(self), self.serve_settings).start()
            except StylecamError as exc:
                hub.close()
                self.outputChanged.emit("stream", False, str(exc))
                return
            sinks.append(hub)
            self.outputChanged.emit("stream", True, f"streaming at {self.server.url} (stream.mjpg)")
        elif not wanted.get("stream") and hub is not None:
            sinks.remove(hub)
            self.server.close()
            self.server = None
            hub.close()
            self.outputChanged.emit("stream", False, "network stream off")

    def _set_record_sink(self, path: Optional[Path]) -> None:
        sinks = self.pipeline.sinks
        for sink in [s for s in sinks if isinstance(s, VideoFileSink)]:
            sink.close()
            sinks.remove(sink)
            self.status.emit(f"saved {sink.frames} frames to {sink.path}")
        if path is not None:
            try:
                sinks.append(VideoFileSink(path, fps=self.pipeline.source.fps or 30.0))
            except StylecamError as exc:
                self.errored.emit("record", str(exc))


class _WorkerControl:
    """Style control for the network stream inside the app: validated here, applied by the GUI (so
    the gallery and sliders show what a remote client picked)."""

    def __init__(self, worker: EngineWorker):
        self.worker = worker

    def styles(self) -> list[dict]:
        return [{"id": s.id, "name": s.name, "slug": s.slug} for s in self.worker.pack.styles]

    def set_style(self, spec: str) -> str:
        label = self.worker.pack.describe(spec)  # raises StyleError → HTTP 400
        self.worker.remoteStyle.emit(spec)
        return label

    def add_picture(self, data: bytes, name: str) -> str:
        """Saved here (the HTTP thread); the GUI reloads its gallery and selects it."""
        from engine.server import free_picture_name
        from engine.user_styles import add_picture_style

        name = free_picture_name(self.worker.pack, name)
        style, _ = add_picture_style(data, name, label=f"upload {name!r}")
        self.worker.remotePicture.emit(style.name)
        return style.name

    def current(self) -> str:
        return self.worker._style.style

    def fps(self) -> float:
        pipe = self.worker.pipeline
        return pipe.fps if pipe else 0.0


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
