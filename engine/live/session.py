"""One live run: the single owner of source → backend → pipeline → sinks, and of every change to them.

The CLI commands (stylize, vcam, serve, bench) and the app's worker are thin clients: they describe
what they want in ``SessionSettings``, call ``open()`` and ``run()``, and listen to typed events
(engine/events.py). The session is the only owner of live state: the style settings, the catalog,
the governor, the source, the backend and the outputs. A request from any thread is checked at once
against the newest requested state (a bad one raises there), recorded, and applied between two frames
on the session's thread through ONE queue, so a frame never sees half a change; a change that fails
there becomes an event and the running state stays as it was. With ``backend="auto"`` in live use the session starts on a backend that needs no
build and hot-swaps the compiled one in when it has warmed up on a real frame. The network stream's
remote control is the session itself (``styles``, ``set_style``, ``current``, ``fps``, ``add_picture``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from .. import defaults
from ..backends import BACKENDS, COMPILED_CPU, BackendOptions, auto_choice, create_backend
from ..cpu_tuning import usable_cores
from ..backends.build_worker import BuildWorker
from ..backends.networks import as_catalog
from ..video.capture import Source, SourceSettings, open_source
from .events import (BackendSwitched, CatalogChanged, Event, Failed, Notice, OutputChanged, Started,
                     StyleChanged, error_kind)
from ..errors import StyleError, StylecamError
from .governor import GovernorSettings
from .pipeline import FrameResult, Pipeline, StyleSettings, scaled_shape
from ..sinks.server import ServeSettings, StreamServer, free_picture_name
from ..sinks import VideoFileSink
from ..sinks.base import Sink
from ..sinks.mjpeg import MjpegHub
from ..sinks.virtualcam import VirtualCamSink
from ..slot import LatestSlot
from ..styles.user_styles import UserStyleStore, add_picture_style, load_catalog

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
    keyframes: str = "auto"  # carry full-size keyframes along the motion: auto (with the governor), on, off
    # the app: with its window hidden and no sink that wants frames (a stream client, the virtual
    # camera, a recording), make none; the CLI's vcam and serve always run
    idle_unwatched: bool = False

    def label(self) -> str:
        return self.source if self.size is None else f"{self.source} @ {defaults.size_text(self.size)}"


class Session:
    def __init__(self, catalog, settings: SessionSettings = SessionSettings(), sinks: list[Sink] = (),
                 on_event: Callable[[Event], None] = lambda e: None, source: Optional[Source] = None,
                 store: Optional[UserStyleStore] = None):
        """``source``: an already open source the session takes over (instead of ``settings.source``);
        ``store``: where uploaded picture styles go (default: the user's)."""
        self.store = store
        catalog = as_catalog(catalog)  # one network's pack (tools, tests) as its own catalog
        self.catalog = catalog  # what the frames use (applied); requests check against ``_wanted_catalog``
        self.settings = settings  # as opened: the live values are the fields below
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
        # the newest requested state (guarded by _lock); the pipeline gets it through the queue
        self._wanted_catalog = catalog
        self._style = settings.style
        self._serve = settings.serve
        self._source_spec, self._size, self._backend_name = settings.source, settings.size, settings.backend
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> "Session":
        """Open source, backend and pipeline; on failure close what was opened and raise."""
        s = self.settings
        source = backend = None
        try:
            s.style.check(self.catalog)  # a bad style fails before anything heavy opens
            source = self._given_source or self._open_source(s.source, s.size)
            backend = self._create_backend(s.backend, source)
            self.pipeline = Pipeline(source, backend, self.catalog, self._initial_sinks, s.style,
                                     read_timeout=s.read_timeout, governor=s.governor, background_warmup=s.live,
                                     keyframes=s.keyframes)
        except BaseException:
            for part in (backend, source, *self._initial_sinks):
                if part is not None:
                    part.close()
            raise
        self._emit(Started(self.label(), backend.describe()))
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
        if self.warmup is not None and self.warmup is not threading.current_thread():
            self.warmup.join(defaults.QUIT_WAIT_S)  # a compile under way in it must end before the process does
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
        """Checked now against the newest catalog (a bad spec raises here), used from the next frame."""
        with self._lock:
            new = replace(self._style, **changes)
            new.check(self._wanted_catalog)
            self._style = new
            self._todo.append(lambda: self._apply_style(new))
        return new

    def set_catalog(self, catalog, select: Optional[str] = None, remote: bool = False) -> None:
        """Styles added or removed (same or new networks): requests are checked against it at once; the
        backend and the pipeline follow between frames (CatalogChanged, or Failed and the old catalog
        stays); ``select`` picks a style by name."""
        with self._lock:
            style = self._style
            if select is not None:
                style = replace(style, style=select)
            try:
                style.check(catalog)
            except StyleError:
                if select is not None:
                    raise
                style = replace(style, style="0")  # the style in use was removed
            before = (self._wanted_catalog, self._style)
            self._wanted_catalog, self._style = catalog, style
            self._todo.append(lambda: self._swap_catalog(catalog, style, before, select, remote))

    def set_governor(self, settings: GovernorSettings) -> None:
        """A new frame-rate target (or off: "full quality"), from any thread."""
        settings.check()
        self.call_soon(lambda: self.pipeline.set_governor(settings))

    def set_serve_settings(self, settings: ServeSettings) -> None:
        """Where the next network stream listens (a running one keeps its address)."""
        with self._lock:
            self._serve = settings

    @property
    def style(self) -> StyleSettings:
        """The newest style settings asked for."""
        with self._lock:
            return self._style

    @property
    def wanted_catalog(self):
        """The newest catalog asked for (what style requests are checked against)."""
        with self._lock:
            return self._wanted_catalog

    def record(self, path: Optional[Path]) -> None:
        """Start recording to ``path`` (MP4), or stop with None."""
        self.call_soon(lambda: self._set_record(path))

    def set_output(self, name: str, on: bool) -> None:
        """Turn the virtual camera ("vcam") or the network stream ("stream") on or off."""
        self.call_soon(lambda: self._set_output(name, on))

    # -- the network stream's remote control ---------------------------------------------------
    def styles(self) -> list[dict]:
        return [{"id": s.id, "name": s.name, "slug": s.slug} for s in self.wanted_catalog.styles]

    def set_style(self, spec: str) -> str:
        """A style asked for over the network: applied here; the app shows it (StyleChanged)."""
        self.set_style_settings(style=spec)  # raises StyleError → HTTP 400
        label = self.wanted_catalog.describe(spec)
        self._emit(StyleChanged(spec, label, remote=True))
        return label

    def current(self) -> str:
        return self.style.style

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
                "latency_p50_ms": round(result.latency_p50_ms, 1) if result else None,  # grab → hand-over
                "latency_p95_ms": round(result.latency_p95_ms, 1) if result else None,
                "mode": result.mode if result else None,  # keyframes (carried along the motion) or direct
                "keyframe_fps": round(result.keyframe_fps, 1) if result else None,
                "keyframe_age_ms": round(result.keyframe_age_ms, 1) if result else None,
                "build_failure": result.build_failure if result else "",  # why this size runs on the stand-in
                # grab → each output's delivery (the stream: encoded for its clients), pooled over frames
                "latency": pipe.delivery_summary() if pipe else {},
                "idle": self.idle() if pipe else False,
                "builds_pending": self.builder.pending()}

    def add_picture(self, data: bytes, name: str) -> str:
        """A picture style from uploaded bytes, selected at once (the picture network needs no rebuild)."""
        with self._adding:  # two uploads at once get two names
            catalog = self.wanted_catalog
            name = free_picture_name(catalog, name)
            style, _ = add_picture_style(data, name, store=self.store, taken={s.slug for s in catalog.styles},
                                         label=f"upload {name!r}")
            self.set_catalog(load_catalog(store=self.store), select=style.name, remote=True)  # the one place a catalog is built
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

    def _create_backend(self, name: str, source: Source):
        s = self.settings
        options = BackendOptions(threads=self._network_threads(source), max_size=s.size, background_warmup=s.live,
                                 builder=self.builder)
        # "auto" takes the compiled path at once when it is cached for these frames (a relaunch), and
        # a file long enough to repay the build builds it first. Otherwise it starts on a backend that
        # needs no build: live, the compiled one then warms aside; a short file never builds one.
        quick = s.oneshot or (name == "auto" and not self._compiled_cached(source)
                              and (s.live or not self._build_pays(source)))
        if quick and not s.live and not s.oneshot:
            log.info("%d frames: too short to repay a compiled build, running on a backend that needs none",
                     source.frame_count)
        backend = create_backend(name, pack=self.catalog, options=options, oneshot=quick)
        if quick and s.live and not s.oneshot:
            self.warmup = threading.Thread(target=self._prepare_upgrade, args=(backend.name, options),
                                           name="backend-warmup", daemon=True)
            self.warmup.start()
        return backend

    def _network_threads(self, source: Optional[Source] = None) -> int:
        """The network's CPU threads: as asked, else, live with keyframes, one core fewer than there are
        where the display loop needs one to itself: from 4 cores, or above 640×480 (docs/pipeline-overlap.md)."""
        s = self.settings
        if s.threads or not s.live or s.keyframes == "off":
            return s.threads
        size = s.size or (source.frame_size if source else None) or defaults.FRAME_SIZE
        cores = usable_cores()
        if cores >= 4 or size[0] * size[1] > defaults.FRAME_SIZE[0] * defaults.FRAME_SIZE[1]:
            return max(1, cores - 1)
        return 0

    def _compiled_cached(self, source: Source) -> bool:
        """``auto`` would pick a compiled CPU backend, and its stock network is cached for these frames."""
        best, size = auto_choice(), self.settings.size or source.frame_size
        return best in COMPILED_CPU and size is not None and BACKENDS[best].ready(self.catalog.stock, size[1], size[0])

    @staticmethod
    def _build_pays(source: Source) -> bool:
        """A file long enough to repay compiling for its frames (unknown length: assume it is)."""
        count, size = source.frame_count, source.frame_size
        return not count or size is None or count * size[0] * size[1] >= defaults.BUILD_PAYS_PIXEL_FRAMES

    def running(self) -> tuple[str, Optional[tuple[int, int]], str]:
        """(source spec, size, backend name) running now."""
        with self._lock:
            return self._source_spec, self._size, self._backend_name

    @property
    def serve_settings(self) -> ServeSettings:
        with self._lock:
            return self._serve

    def label(self) -> str:
        """The source (and size) running now."""
        with self._lock:
            spec, size = self._source_spec, self._size
        return spec if size is None else f"{spec} @ {defaults.size_text(size)}"

    def _swap_source(self, spec: str, size) -> None:
        try:
            source = self._open_source(spec, size)
        except StylecamError as exc:
            self._emit(Failed("source", str(exc)))  # the running source stays
            return
        self.pipeline.replace_source(source).close()
        with self._lock:
            self._source_spec, self._size = spec, size
        self._emit(Started(self.label(), self.pipeline.backend.describe()))

    def _swap_backend(self, name: str) -> None:
        try:
            backend = self._create_backend(name, self.pipeline.source)
        except StylecamError as exc:
            self._emit(Failed("backend", str(exc)))  # the running backend stays
            return
        self.pipeline.replace_backend(backend).close()
        with self._lock:
            self._backend_name = name
        self._emit(Started(self.label(), backend.describe()))

    def _apply_style(self, style: StyleSettings) -> None:
        try:
            self.pipeline.update(**{f: getattr(style, f) for f in ("style", "strength", "preserve_colors",
                                                                    "stabilize", "mask")})
        except StylecamError as exc:  # e.g. no person segmenter here: the running look stays
            with self._lock:
                if self._style is style:
                    self._style = self.pipeline.settings
            self._emit(Failed(error_kind(exc, "style"), str(exc)))

    def _swap_catalog(self, catalog, style: StyleSettings, before: tuple, select, remote: bool) -> None:
        """On the session's thread: the backend serves ``catalog`` (a picture style changes nothing
        there; new stock weights need a new backend), then the pipeline uses it. A failure keeps both
        as they were, and the requests go back to them."""
        current = self.pipeline.backend
        try:
            if current.catalog.stock.digest == catalog.stock.digest:
                current.adopt(catalog)
            else:
                with self._lock:
                    name = self._backend_name
                new = create_backend(name, pack=catalog, oneshot=name == "auto",
                                     options=BackendOptions(threads=self._network_threads(self.pipeline.source),
                                                            background_warmup=self.settings.live,
                                                            builder=self.builder))
                self.pipeline.replace_backend(new).close()
            self.pipeline.set_pack(catalog, style)
        except (StylecamError, ValueError) as exc:
            with self._lock:
                if self._wanted_catalog is catalog:  # nothing newer was asked for meanwhile
                    self._wanted_catalog, self._style = before
            log.warning("the styles were not changed: %s", exc)
            self._emit(Failed("backend", f"the styles were not changed: {exc}"))
            return
        self.catalog = catalog
        self._emit(CatalogChanged(catalog, select=select, remote=remote))

    def _prepare_upgrade(self, current_name: str, options: BackendOptions) -> None:
        """Start the full `auto` choice; if it is a compiled CPU path, build what the frames run now
        (the level the governor chose: its network and size) and hand it over between two frames."""
        if self._stop.wait(defaults.WARMUP_DELAY_S):  # closed right away: never start a build
            return
        try:
            best = create_backend("auto", pack=self.catalog, options=options)
        except StylecamError:
            return
        if best.name == current_name or best.name not in COMPILED_CPU:
            best.close()
            return
        self._emit(Notice(f"preparing {best.name} (builds once per size and network, then cached)…"))
        seq = 0
        while not self._stop.is_set():
            seq, result = self.latest.wait_newer(seq, timeout=0.5)
            if result is None:
                continue
            try:
                self._build_level(best, result)
            except Exception as exc:  # noqa: BLE001 - a failed upgrade keeps the running backend
                log.warning("fast path failed to start: %s", exc)
                best.close()
                return
            if self._stop.is_set():  # quitting: the build was left (or finished) on the way out, not failed
                break
            with self._lock:
                self._upgrade = best
            return
        best.close()

    def _build_level(self, backend, result: FrameResult) -> None:
        """Build ``backend`` for the level ``result`` ran at (on the warm-up thread; blocks)."""
        weights = self.pipeline.weights  # once: the style may change while it builds (then it builds aside)
        light = any(name in self.catalog.lighter for name in result.networks)
        shape = scaled_shape(result.original.shape, result.render_scale)
        for thread in backend.prepare(weights, shape, light=light):
            while thread.is_alive() and not self._stop.is_set():
                thread.join(0.5)
        if not self._stop.is_set() and not backend.level_ready(weights, shape, light=light):
            raise StylecamError(f"{backend.name} could not build {shape[1]}x{shape[0]}")

    def _take_upgrade(self, upgrade) -> None:
        with self._lock:
            auto = self._backend_name == "auto"
        if not auto or self._closed:
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
        self._emit(Started(self.label(), upgrade.describe()))

    def _set_record(self, path: Optional[Path]) -> None:
        for sink in [s for s in self.pipeline.sinks if isinstance(s, VideoFileSink)]:
            self.pipeline.remove_sink(sink)
            sink.close()
            self._emit(OutputChanged("record", False, f"saved {sink.frames} frames to {sink.path}"))
        if path is not None:
            try:
                self.pipeline.add_sink(VideoFileSink(path, fps=self.pipeline.source.fps or defaults.FPS))
                self._emit(OutputChanged("record", True, f"recording to {path}"))
            except StylecamError as exc:
                self._emit(OutputChanged("record", False, str(exc), failed=True))

    def serve(self) -> StreamServer:
        """Start the network stream now (before ``run``: a CLI wants its error at once); raises."""
        if self.server is not None:
            return self.server
        hub = MjpegHub()
        try:
            with self._lock:
                serve = self._serve
            self.server = StreamServer(hub, self, serve).start()
        except BaseException:
            hub.close()
            raise
        self.pipeline.add_sink(hub)
        return self.server

    def _set_output(self, name: str, on: bool) -> None:
        kind = VirtualCamSink if name == "vcam" else MjpegHub
        running = next((s for s in self.pipeline.sinks if isinstance(s, kind)), None)
        if on and running is None:
            try:
                if name == "vcam":
                    with self._lock:
                        w, h = self._size or defaults.FRAME_SIZE
                    sink = VirtualCamSink(w - w % 2, h - h % 2, self.pipeline.source.fps or defaults.FPS)
                    message = f"virtual camera on: {sink.device}"
                    self.pipeline.add_sink(sink)
                else:
                    message = f"streaming at {self.serve().url} (stream.mjpg)"
            except StylecamError as exc:
                self._emit(OutputChanged(name, False, str(exc), failed=True))
                return
            self._emit(OutputChanged(name, True, message))
        elif not on and running is not None:
            self.pipeline.remove_sink(running)
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
