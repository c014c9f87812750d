"""One live run: the single owner of source → backend → pipeline → sinks, and of every change to them.

The CLI commands (stylize, vcam, serve, bench) and the app's worker are thin clients: they describe
what they want in ``SessionSettings``, call ``open()`` and ``run()``, and listen to typed events
(engine/events.py). Requests from any thread (a new source, backend, style, recording, output,
catalog) are recorded at once and applied between two frames on the session's thread, so a frame never
sees half a change. With ``backend="auto"`` in live use the session starts on a backend that needs no
build and hot-swaps the compiled one in when it has warmed up on a real frame. The network stream's
remote control is the session itself (``styles``, ``set_style``, ``current``, ``fps``, ``add_picture``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from . import defaults
from .backends import COMPILED_CPU, BackendOptions, create_backend
from .backends.build_worker import BuildWorker
from .capture import Source, SourceSettings, open_source
from .catalog import StyleCatalog
from .events import (BackendSwitched, CatalogChanged, Event, Failed, Notice, OutputChanged, Started,
                     StyleChanged)
from .errors import StylecamError
from .governor import GovernorSettings
from .pipeline import FrameResult, Pipeline, StyleSettings
from .server import ServeSettings, StreamServer, free_picture_name
from .sinks import VideoFileSink
from .sinks.base import Sink
from .sinks.mjpeg import MjpegHub
from .sinks.virtualcam import VirtualCamSink
from .slot import LatestSlot
from .user_styles import add_picture_style, load_picture_pack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSettings:
    source: str = "camera"
    size: Optional[tuple[int, int]] = None  # None: the source's own
    fps: float = defaults.FPS
    backend: str = "auto"
    style: StyleSettings = field(default_factory=StyleSettings)
    live: bool = True  # a camera-like run: keep going at the end and on errors, warm compiled paths aside
    loop: Optional[bool] = None  # files start over at the end (None: when live)
    paced: bool = True  # files and stills at their frame rate (False: as fast as the backend goes)
    oneshot: bool = False  # a single image: skip compiled backends
    read_timeout: float = defaults.READ_TIMEOUT_S
    threads: int = 0
    serve: ServeSettings = field(default_factory=ServeSettings)
    governor: GovernorSettings = field(default_factory=GovernorSettings)  # hold a frame rate (live: 30 FPS)
    # the app: with its window hidden and no sink that wants frames (a stream client, the virtual
    # camera, a recording), make none; the CLI's vcam and serve always run
    idle_unwatched: bool = False

    def label(self) -> str:
        return self.source if self.size is None else f"{self.source} @ {defaults.size_text(self.size)}"


class Session:
    def __init__(self, catalog, settings: SessionSettings = SessionSettings(), sinks: list[Sink] = (),
                 on_event: Callable[[Event], None] = lambda e: None, source: Optional[Source] = None):
        """``source``: an already open source the session takes over (instead of ``settings.source``)."""
        self.catalog = catalog
        self.settings = settings
        self.on_event = on_event
        self.latest: LatestSlot[FrameResult] = LatestSlot()
        self.pipeline: Optional[Pipeline] = None
        self.server: Optional[StreamServer] = None
        self._initial_sinks = list(sinks)
        self._given_source = source
        self._lock = threading.Lock()
        self._adding = threading.Lock()
        self._todo: list[Callable[[], None]] = []  # applied between frames, on the session's thread
        self._stop = threading.Event()
        self._upgrade = None  # a warmed-up backend waiting to take over
        self.warmup: Optional[threading.Thread] = None
        self.builder = BuildWorker()  # every compile of this session runs there (starts at the first one)
        self._viewing = True  # the app's window shows frames (set_viewing)
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> "Session":
        """Open source, backend and pipeline; on failure close what was opened and raise."""
        s = self.settings
        source = backend = None
        try:
            s.style.check(self.catalog)  # a bad style fails before anything heavy opens
            source = self._given_source or self._open_source(s.source, s.size)
            backend = self._create_backend(s.backend)
            self.pipeline = Pipeline(source, backend, self.catalog, self._initial_sinks, s.style,
                                     read_timeout=s.read_timeout, governor=s.governor, background_warmup=s.live)
        except BaseException:
            for part in (backend, source, *self._initial_sinks):
                if part is not None:
                    part.close()
            raise
        self._emit(Started(s.label(), backend.describe()))
        return self

    def run(self, max_frames: Optional[int] = None, stop: Optional[threading.Event] = None,
            on_frame: Callable[[FrameResult], None] = lambda r: None) -> int:
        """Frames until the source ends (files), ``max_frames``, ``stop`` or ``close()``."""
        stop = stop or self._stop

        def publish(result: FrameResult) -> None:
            self.latest.publish(result)
            on_frame(result)
        return self.pipeline.run(max_frames, stop=_Either(stop, self._stop), on_frame=publish, on_event=self._emit,
                                 between_frames=self._apply, keep_alive=self.settings.live, idle=self.idle)

    def set_viewing(self, on: bool) -> None:
        """The app's window shows frames (False: minimized or hidden); any thread."""
        self._viewing = on

    def idle(self) -> bool:
        """Nobody would see a frame made now (only with ``idle_unwatched``: the app)."""
        if not self.settings.idle_unwatched or self._viewing:
            return False
        return not any(sink.wants_frames() for sink in self.pipeline.sinks)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Release server, sinks, backend and source (each once), even after a failed open."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.latest.close()
        if self.server is not None:
            self.server.close()
        if self.pipeline is not None:
            self.pipeline.close()
        with self._lock:
            upgrade, self._upgrade = self._upgrade, None
        if upgrade is not None:
            upgrade.close()
        self.builder.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests from any thread: applied between frames ---------------------------------------
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the session's thread before the next frame (backends are not thread-safe)."""
        with self._lock:
            self._todo.append(fn)

    def set_source(self, spec: str, size: Optional[tuple[int, int]] = None) -> None:
        self.call_soon(lambda: self._swap_source(spec, size))

    def set_backend(self, name: str) -> None:
        self.call_soon(lambda: self._swap_backend(name))

    def set_style_settings(self, **changes) -> StyleSettings:
        """Validated now (a bad spec raises here), used from the next frame."""
        return self.pipeline.update(**changes)

    def set_catalog(self, catalog, select: Optional[str] = None) -> None:
        """Styles added or removed (same or new networks). Style requests are checked against it at
        once; the backend follows between frames; ``select`` picks a style by name."""
        self.call_soon(lambda: self._swap_backend_catalog(catalog))  # before the pipeline takes the catalog
        self.pipeline.set_catalog(catalog)
        if select is not None:
            self.pipeline.update(style=select)

    def record(self, path: Optional[Path]) -> None:
        """Start recording to ``path`` (MP4), or stop with None."""
        self.call_soon(lambda: self._set_record(path))

    def set_output(self, name: str, on: bool) -> None:
        """Turn the virtual camera ("vcam") or the network stream ("stream") on or off."""
        self.call_soon(lambda: self._set_output(name, on))

    # -- the network stream's remote control ---------------------------------------------------
    def styles(self) -> list[dict]:
        return [{"id": s.id, "name": s.name, "slug": s.slug} for s in self.pipeline.requested_pack.styles]

    def set_style(self, spec: str) -> str:
        """A style asked for over the network: applied here; the app shows it (StyleChanged)."""
        self.pipeline.update(style=spec)  # raises StyleError → HTTP 400
        label = self.pipeline.requested_pack.describe(spec)
        self._emit(StyleChanged(spec, label, remote=True))
        return label

    def current(self) -> str:
        return self.pipeline.requested.style

    def fps(self) -> float:
        return self.pipeline.fps if self.pipeline else 0.0

    def render(self) -> dict:
        """What runs now and how well: what /stats shows (from the newest frame, never the live backend)."""
        pipe = self.pipeline
        governor = pipe.governor if pipe else None
        _, result = self.latest.latest()
        return {"render_scale": result.render_scale if result else (pipe.render_scale if pipe else 1.0),
                "target_fps": governor.settings.target_fps if governor else None,
                "fps_goal": governor.fps_goal if governor else None,
                "governor": governor.describe() if governor else "off",
                "backend": result.backend if result else None,
                "network": "+".join(result.networks) if result else None,
                "latency_p50_ms": round(result.latency_p50_ms, 1) if result else None,
                "latency_p95_ms": round(result.latency_p95_ms, 1) if result else None,
                "idle": self.idle() if pipe else False,
                "builds_pending": self.builder.pending()}

    def set_governor(self, settings: GovernorSettings) -> None:
        """A new frame-rate target (or off: "full quality"), from any thread."""
        self.pipeline.set_governor(settings)
        self.settings = replace(self.settings, governor=settings)

    def add_picture(self, data: bytes, name: str) -> str:
        """A picture style from uploaded bytes, selected at once (the picture network needs no rebuild)."""
        with self._adding:  # two uploads at once get two names
            catalog = self.pipeline.requested_pack
            name = free_picture_name(catalog, name)
            style, _ = add_picture_style(data, name, taken={s.slug for s in catalog.styles}, label=f"upload {name!r}")
            new = StyleCatalog([catalog.stock, load_picture_pack()])
            self.set_catalog(new, select=style.name)
        self._emit(CatalogChanged(new, select=style.name))
        return style.name

    # -- the session's thread ------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        try:
            self.on_event(event)
        except Exception:  # a listener's bug never stops the frames
            log.exception("event listener failed on %r", event)

    def _apply(self) -> None:
        with self._lock:
            todo, self._todo = self._todo, []
            upgrade, self._upgrade = self._upgrade, None
        for fn in todo:
            fn()
        if upgrade is not None:
            self._take_upgrade(upgrade)

    def _open_source(self, spec: str, size):
        s = self.settings
        loop = s.live if s.loop is None else s.loop
        return open_source(SourceSettings(spec=spec, size=size, fps=s.fps, paced=s.paced, loop=loop))

    def _create_backend(self, name: str):
        s = self.settings
        options = BackendOptions(threads=s.threads, max_size=s.size, background_warmup=s.live, builder=self.builder)
        # Live "auto" starts on a backend that needs no build; the compiled one warms aside.
        quick = s.oneshot or (s.live and name == "auto")
        backend = create_backend(name, pack=self.catalog, options=options, oneshot=quick)
        if s.live and name == "auto" and not s.oneshot:
            self.warmup = threading.Thread(target=self._prepare_upgrade, args=(backend.name, options),
                                           name="backend-warmup", daemon=True)
            self.warmup.start()
        return backend

    def _swap_source(self, spec: str, size) -> None:
        try:
            source = self._open_source(spec, size)
        except StylecamError as exc:
            self._emit(Failed("source", str(exc)))  # the running source stays
            return
        self.pipeline.source.close()
        self.pipeline.source = source
        self.settings = replace(self.settings, source=spec, size=size)
        self._emit(Started(self.settings.label(), self.pipeline.backend.describe()))

    def _swap_backend(self, name: str) -> None:
        try:
            backend = self._create_backend(name)
        except StylecamError as exc:
            self._emit(Failed("backend", str(exc)))  # the running backend stays
            return
        self.pipeline.replace_backend(backend).close()
        self.settings = replace(self.settings, backend=name)
        self._emit(Started(self.settings.label(), backend.describe()))

    def _swap_backend_catalog(self, catalog) -> None:
        current = self.pipeline.backend
        if hasattr(current, "adopt") and current.catalog.stock.digest == catalog.stock.digest:
            current.adopt(catalog)  # a picture style: nothing to rebuild
        else:
            try:
                new = create_backend(self.settings.backend, pack=catalog, oneshot=self.settings.backend == "auto",
                                     options=BackendOptions(threads=self.settings.threads, background_warmup=True,
                                                            builder=self.builder))
            except StylecamError as exc:
                self._emit(Failed("backend", str(exc)))
                return
            self.pipeline.replace_backend(new).close()
        self.catalog = catalog

    def _prepare_upgrade(self, current_name: str, options: BackendOptions) -> None:
        """Build the full `auto` choice; if it is a compiled CPU path, warm it on a real frame."""
        if self._stop.wait(defaults.WARMUP_DELAY_S):  # closed right away: never start a compile
            return
        try:
            best = create_backend("auto", pack=self.catalog, options=options)
        except StylecamError:
            return
        if best.name == current_name or best.name not in COMPILED_CPU:
            best.close()
            return
        self._emit(Notice(f"preparing {best.name} (builds once per size, about 20–60 s)…"))
        seq = 0
        while not self._stop.is_set():
            seq, result = self.latest.wait_newer(seq, timeout=0.5)
            if result is None:
                continue
            try:
                best.warm(result.original)  # compiles each network for this size
            except Exception as exc:  # a failed upgrade keeps the running backend
                log.warning("fast path failed to start: %s", exc)
                best.close()
                return
            with self._lock:
                self._upgrade = best
            return
        best.close()

    def _take_upgrade(self, upgrade) -> None:
        if self.settings.backend != "auto" or self._closed:
            upgrade.close()
            return
        if upgrade.pack is not self.pipeline.pack:
            if upgrade.pack.stock.digest != self.pipeline.pack.stock.digest:
                upgrade.close()
                return
            upgrade.adopt(self.pipeline.pack)  # a picture style arrived while it warmed up
        self.pipeline.replace_backend(upgrade).close()
        log.info("switched to the warmed-up %s", upgrade.describe())
        self._emit(BackendSwitched(upgrade.describe()))
        self._emit(Started(self.settings.label(), upgrade.describe()))

    def _set_record(self, path: Optional[Path]) -> None:
        sinks = self.pipeline.sinks
        for sink in [s for s in sinks if isinstance(s, VideoFileSink)]:
            sinks.remove(sink)
            sink.close()
            self._emit(OutputChanged("record", False, f"saved {sink.frames} frames to {sink.path}"))
        if path is not None:
            try:
                sinks.append(VideoFileSink(path, fps=self.pipeline.source.fps or defaults.FPS))
                self._emit(OutputChanged("record", True, f"recording to {path}"))
            except StylecamError as exc:
                self._emit(OutputChanged("record", False, str(exc), failed=True))

    def serve(self) -> StreamServer:
        """Start the network stream now (before ``run``: a CLI wants its error at once); raises."""
        if self.server is not None:
            return self.server
        hub = MjpegHub()
        try:
            self.server = StreamServer(hub, self, self.settings.serve).start()
        except BaseException:
            hub.close()
            raise
        self.pipeline.sinks.append(hub)
        return self.server

    def _set_output(self, name: str, on: bool) -> None:
        kind = VirtualCamSink if name == "vcam" else MjpegHub
        sinks = self.pipeline.sinks
        running = next((s for s in sinks if isinstance(s, kind)), None)
        if on and running is None:
            try:
                if name == "vcam":
                    w, h = self.settings.size or defaults.FRAME_SIZE
                    sink = VirtualCamSink(w - w % 2, h - h % 2, self.pipeline.source.fps or defaults.FPS)
                    message = f"virtual camera on: {sink.device}"
                    sinks.append(sink)
                else:
                    message = f"streaming at {self.serve().url} (stream.mjpg)"
            except StylecamError as exc:
                self._emit(OutputChanged(name, False, str(exc), failed=True))
                return
            self._emit(OutputChanged(name, True, message))
        elif not on and running is not None:
            sinks.remove(running)
            if name == "stream" and self.server is not None:
                self.server.close()
                self.server = None
            running.close()
            self._emit(OutputChanged(name, False, "virtual camera off" if name == "vcam" else "network stream off"))


class _Either:
    """Stops when either event is set (a caller's stop, or the session's own)."""

    def __init__(self, a: threading.Event, b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()

    def wait(self, timeout: float) -> bool:
        return self.a.wait(timeout) or self.b.is_set()
