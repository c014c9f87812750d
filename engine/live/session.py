"""One live run: the single owner of source → backend → pipeline → sinks, and of every change to them.

The CLI commands and the app's worker are thin clients: they say how to run in ``SessionSettings``,
call ``open()`` and ``run()``, and listen to typed events (events.py). What the run shows is one frozen
value, ``state`` (state.py: catalog, look, governor, source, size, backend, keyframes, outputs). A
request from any thread makes the next value, checked at once against the newest one asked for (a bad
one raises there); between two frames the session makes the running parts match it, part by part (a
part that fails stays as it was: Failed), and says what changed (StateChanged). With ``backend="auto"``
in live use the session starts on a backend that needs no build and hot-swaps the compiled one in when
it has warmed up on a real frame. The network stream's remote control is the session itself
(``styles``, ``set_remote_style``, ``current``, ``fps``, ``stats``, ``add_picture``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from .. import defaults
from ..backends import BACKENDS, COMPILED_CPU, BackendOptions, auto_choice, create_backend
from ..cpu_tuning import usable_cores, yield_to_display
from ..backends.build_worker import BuildWorker
from ..backends.networks import as_catalog
from ..video.capture import Source, SourceSettings, open_source
from ..frame import kernels
from .events import BackendSwitched, Event, Failed, Notice, OutputChanged, Started, StateChanged, error_kind
from ..errors import StyleError, StylecamError
from .governor import GovernorSettings
from .pipeline import FrameResult, Pipeline, StyleSettings, scaled_shape
from ..sinks.server import ServeSettings, StreamServer, free_picture_name
from ..sinks import VideoFileSink
from ..sinks.base import Sink
from ..sinks.mjpeg import MjpegHub
from ..sinks.virtualcam import VirtualCamSink
from ..slot import LatestSlot
from ..styles.mix import StyleMix
from ..styles.user_styles import UserStyleStore, add_picture_style, reload_catalog
from .state import LiveState, Outputs, changed

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


class Session:
    def __init__(self, catalog, settings: SessionSettings = SessionSettings(), sinks: list[Sink] = (),
                 on_event: Callable[[Event], None] = lambda e: None, source: Optional[Source] = None,
                 store: Optional[UserStyleStore] = None):
        """``source``: an already open source the session takes over (instead of ``settings.source``);
        ``store``: where uploaded picture styles go (default: the user's)."""
        self.store = store
        self.settings = settings  # how it runs (live, paced, threads...); what it shows is ``state``
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
        # the state the frames use (the session's thread changes it), and the newest asked for (under _lock)
        given = Outputs(vcam=any(isinstance(s, VirtualCamSink) for s in sinks),  # a CLI's own outputs count too
                        record=next((s.path for s in sinks if isinstance(s, VideoFileSink)), None))
        self.state = LiveState(as_catalog(catalog), settings.style, settings.governor, settings.source, settings.size,
                               settings.backend, settings.keyframes, given, settings.serve)
        self._wanted = self.state
        self._remote = False  # the newest request came over the network (the app shows it, never re-sends it)
        self._closed = False

    @property
    def catalog(self):
        """The styles the frames use now."""
        return self.state.catalog

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> "Session":
        """Open source, backend and pipeline; on failure close what was opened and raise."""
        s, state = self.settings, self.state
        source = backend = None
        try:
            state.style.check(state.catalog)  # a bad style fails before anything heavy opens
            kernels_ready = kernels.warm_up()  # beside the source's and the backend's start (engine/frame/kernels.py)
            source = self._given_source or self._open_source(state.source, state.size)
            backend = self._create_backend(state, source)
            self.pipeline = Pipeline(source, backend, state.catalog, self._initial_sinks, state.style,
                                     read_timeout=s.read_timeout, governor=state.governor, background_warmup=s.live,
                                     keyframes=state.keyframes, kernels_ready=kernels_ready)
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
        # first: a compile in the build process can stop at once, and the warm-up waits on it (an int8 build
        # under way held a quit for up to a minute)
        self.builder.close()
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

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests from any thread: the next state, applied between frames --------------------------
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the session's thread before the next frame (backends are not thread-safe)."""
        with self._lock:
            self._todo.append(fn)

    def request(self, remote: bool = False, **changes) -> LiveState:
        """The next state: ``changes`` to the newest one asked for, checked now (a bad style raises here
        and nothing changes), used from the next frame. ``remote``: asked for over the network."""
        with self._lock:
            new = replace(self._wanted, **changes)
            new.style.check(new.catalog)
            new.governor.check()
            self._wanted, self._remote = new, self._remote or remote
        return new

    def set_source(self, spec: str, size: Optional[tuple[int, int]] = None) -> None:
        self.request(source=spec, size=size)

    def set_backend(self, name: str) -> None:
        self.request(backend=name)

    def set_look(self, style: StyleSettings) -> StyleSettings:
        """The look asked for here (the app's controls): checked against the newest catalog."""
        return self.request(style=style).style

    def set_governor(self, settings: GovernorSettings) -> None:
        """A new frame-rate target (or off: "full quality"), from any thread."""
        self.request(governor=settings)

    def set_serve_settings(self, settings: ServeSettings) -> None:
        """Where the next network stream listens (a running one keeps its address)."""
        self.request(serve=settings)

    def record(self, path: Optional[Path]) -> None:
        """Start recording to ``path`` (MP4), or stop with None."""
        with self._lock:
            outputs = self._wanted.outputs
        self.request(outputs=replace(outputs, record=path))

    def set_output(self, name: str, on: bool) -> None:
        """Turn the virtual camera ("vcam") or the network stream ("stream") on or off."""
        with self._lock:
            outputs = self._wanted.outputs
        self.request(outputs=replace(outputs, **{name: on}))

    @property
    def wanted(self) -> LiveState:
        """The newest state asked for (what requests are checked against)."""
        with self._lock:
            return self._wanted

    @property
    def style(self) -> StyleSettings:
        """The newest look asked for."""
        return self.wanted.style

    @property
    def wanted_catalog(self):
        """The newest catalog asked for."""
        return self.wanted.catalog

    @property
    def serve_settings(self) -> ServeSettings:
        return self.wanted.serve

    def running(self) -> tuple[str, Optional[tuple[int, int]], str]:
        """(source spec, size, backend name) running now."""
        state = self.state
        return state.source, state.size, state.backend

    def label(self) -> str:
        """The source (and size) running now."""
        return self.state.label()

    # -- the catalog: the one place it is rebuilt ---------------------------------------------------
    def load_catalog(self):
        """Every style, from the manifest this session's catalog came from (a --pack stays) and its store."""
        return reload_catalog(self.catalog, store=self.store)

    def set_catalog(self, catalog, select: Optional[str] = None, remote: bool = False) -> None:
        """Styles added or removed: requests are checked against it at once; the backend and the
        pipeline follow between frames (StateChanged, or Failed and the old catalog stays); ``select``
        picks a style by name; the style in use falls back to the first when it was removed."""
        with self._lock:
            style = self._wanted.style
        if select is not None:
            style = replace(style, style=StyleMix.named(select))
            style.check(catalog)  # raises: the selected style must be there
        else:
            try:
                style.check(catalog)
            except StyleError:
                style = replace(style, style=StyleMix.named(0))  # the style in use was removed
        self.request(remote=remote, catalog=catalog, style=style)

    def reload_catalog(self, select: Optional[str] = None, remote: bool = False) -> None:
        """The styles changed on disk (one added here): every client sees the new catalog."""
        self.set_catalog(self.load_catalog(), select=select, remote=remote)

    def remove_style(self, name: str) -> None:
        """Delete one of the user's styles (stock styles cannot be removed: StylecamError)."""
        (self.store or UserStyleStore()).remove(name)
        self.reload_catalog()

    # -- the network stream's remote control ---------------------------------------------------
    def styles(self) -> list[dict]:
        return [{"id": s.id, "name": s.name, "slug": s.slug} for s in self.wanted_catalog.styles]

    def set_remote_style(self, mix: StyleMix) -> str:
        """A style asked for over the network (parsed there): used from the next frame, and the app
        shows it (StateChanged with ``remote``); its label."""
        with self._lock:
            look = self._wanted.style
        state = self.request(remote=True, style=replace(look, style=mix))
        return mix.label(state.catalog)

    def current(self) -> str:
        """The newest style asked for, as a spec in the catalog's names (what /styles reports)."""
        wanted = self.wanted
        return wanted.style.style.spec(wanted.catalog)

    def fps(self) -> float:
        return self.pipeline.fps if self.pipeline else 0.0

    def stats(self) -> dict:
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
            self.reload_catalog(select=style.name, remote=True)
        return style.name

    # -- the session's thread ------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        try:
            self.on_event(event)
        except Exception:  # a listener's bug never stops the frames
            log.exception("event listener failed on %r", event)

    def _apply(self) -> None:
        """Between two frames: queued calls, then the newest state asked for, then a warmed-up backend."""
        with self._lock:
            todo, self._todo = self._todo, []
            upgrade, self._upgrade = self._upgrade, None
            wanted, remote, self._remote = self._wanted, self._remote, False
        for fn in todo:
            fn()
        if wanted is not self.state:
            self._reach(wanted, remote)
        if upgrade is not None:
            self._take_upgrade(upgrade)

    def _reach(self, wanted: LiveState, remote: bool) -> None:
        """Make the running parts match ``wanted``, one part at a time; a part that fails stays as it
        was (Failed, and the request goes back to it). Then the state is the one value that ran."""
        old, diff = self.state, changed(self.state, wanted)
        state = old
        if diff & {"source", "size"}:
            state = self._reach_source(state, wanted)
        if "backend" in diff:
            state = self._reach_backend(state, wanted)
        if diff & {"catalog", "style", "governor", "keyframes"}:
            state = self._reach_look(state, wanted)
        if "outputs" in diff:
            state = self._reach_outputs(state, wanted)
        state = replace(state, serve=wanted.serve)
        self.state = state
        done = changed(old, state)
        if done:
            self._emit(StateChanged(state, done, remote))

    def _went_back(self, **fields) -> None:
        """A change failed: the newest request returns to what runs."""
        with self._lock:
            self._wanted = replace(self._wanted, **fields)

    def _reach_source(self, state: LiveState, wanted: LiveState) -> LiveState:
        try:
            source = self._open_source(wanted.source, wanted.size)
        except StylecamError as exc:
            self._went_back(source=state.source, size=state.size)
            self._emit(Failed("source", str(exc)))  # the running source stays
            return state
        self.pipeline.replace_source(source).close()
        state = replace(state, source=wanted.source, size=wanted.size)
        self._emit(Started(state.label(), self.pipeline.backend.describe()))
        return state

    def _reach_backend(self, state: LiveState, wanted: LiveState) -> LiveState:
        try:
            backend = self._create_backend(replace(state, backend=wanted.backend), self.pipeline.source)
        except StylecamError as exc:
            self._went_back(backend=state.backend)
            self._emit(Failed("backend", str(exc)))  # the running backend stays
            return state
        self.pipeline.replace_backend(backend).close()
        state = replace(state, backend=wanted.backend)
        self._emit(Started(state.label(), backend.describe()))
        return state

    def _reach_look(self, state: LiveState, wanted: LiveState) -> LiveState:
        """The catalog (the backend serves it: a picture style changes nothing there; new stock weights
        need a new backend), then the look, the governor and the keyframe mode, handed to the pipeline
        whole. A failure keeps what ran."""
        look = replace(state, catalog=wanted.catalog, style=wanted.style, governor=wanted.governor,
                       keyframes=wanted.keyframes)
        try:
            if wanted.catalog is not state.catalog:
                current = self.pipeline.backend
                if current.catalog.stock.digest == wanted.catalog.stock.digest:
                    current.adopt(wanted.catalog)
                else:
                    self.pipeline.replace_backend(self._create_backend(look, self.pipeline.source)).close()
            self.pipeline.apply(look)
        except (StylecamError, ValueError) as exc:
            self._went_back(catalog=state.catalog, style=state.style, governor=state.governor,
                            keyframes=state.keyframes)
            if wanted.catalog is not state.catalog:
                log.warning("the styles were not changed: %s", exc)
                self._emit(Failed("backend", f"the styles were not changed: {exc}"))
            else:
                self._emit(Failed(error_kind(exc, "style"), str(exc)))  # e.g. no person segmenter here
            return state
        return look

    def _reach_outputs(self, state: LiveState, wanted: LiveState) -> LiveState:
        """Each output on or off as asked: the outputs are declared in one place (``_open_output``)."""
        outputs = state.outputs
        for name in ("vcam", "stream", "record"):
            want, have = getattr(wanted.outputs, name), getattr(outputs, name)
            if want == have:
                continue
            if have:
                self._close_output(name, have)
            if want and not self._open_output(name, want, state):
                off = None if name == "record" else False
                outputs = replace(outputs, **{name: off})
                self._went_back(outputs=replace(self.wanted.outputs, **{name: off}))
            else:
                outputs = replace(outputs, **{name: want})
        return replace(state, outputs=outputs)

    # the outputs, in one place: what each one is, how it starts, how it stops
    def _open_output(self, name: str, value, state: LiveState) -> bool:
        fps = self.pipeline.source.fps or defaults.FPS
        try:
            if name == "vcam":
                w, h = state.size or defaults.FRAME_SIZE
                sink = VirtualCamSink(w - w % 2, h - h % 2, fps)
                self.pipeline.add_sink(sink)
                message = f"virtual camera on: {sink.device}"
            elif name == "stream":
                message = f"streaming at {self.serve().url} (stream.mjpg)"
            else:
                self.pipeline.add_sink(VideoFileSink(value, fps=fps))
                message = f"recording to {value}"
        except StylecamError as exc:
            self._emit(OutputChanged(name, False, str(exc), failed=True))
            return False
        self._emit(OutputChanged(name, True, message))
        return True

    def _close_output(self, name: str, value) -> None:
        kind = {"vcam": VirtualCamSink, "stream": MjpegHub, "record": VideoFileSink}[name]
        for sink in [s for s in self.pipeline.sinks if isinstance(s, kind)]:
            self.pipeline.remove_sink(sink)
            if name == "stream" and self.server is not None:
                self.server.close()
                self.server = None
            sink.close()
            message = {"vcam": "virtual camera off", "stream": "network stream off",
                       "record": f"saved {getattr(sink, 'frames', 0)} frames to {value}"}[name]
            self._emit(OutputChanged(name, False, message))

    def serve(self) -> StreamServer:
        """Start the network stream now (before ``run``: a CLI wants its error at once); raises."""
        if self.server is not None:
            return self.server
        hub = MjpegHub()
        try:
            self.server = StreamServer(hub, self, self.wanted.serve).start()
        except BaseException:
            hub.close()
            raise
        self.pipeline.add_sink(hub)
        return self.server

    # -- sources and backends -------------------------------------------------------------------
    def _open_source(self, spec: str, size):
        s = self.settings
        loop = s.live if s.loop is None else s.loop
        return open_source(SourceSettings(spec=spec, size=size, fps=s.fps, paced=s.paced, loop=loop))

    def _options(self, state: LiveState, source: Optional[Source]) -> BackendOptions:
        """Every backend of this session is made with these: the size running now (not the one it opened
        with), its threads, live warm-up and the session's build process."""
        return BackendOptions(threads=self._network_threads(state, source), max_size=state.size,
                              background_warmup=self.settings.live, builder=self.builder)

    def _create_backend(self, state: LiveState, source: Source):
        s, name = self.settings, state.backend
        options = self._options(state, source)
        # "auto" takes the compiled path at once when it is cached for these frames (a relaunch), and
        # a file long enough to repay the build builds it first. Otherwise it starts on a backend that
        # needs no build: live, the compiled one then warms aside; a short file never builds one.
        quick = s.oneshot or (name == "auto" and not self._compiled_cached(state, source)
                              and (s.live or not self._build_pays(source)))
        if quick and not s.live and not s.oneshot:
            log.info("%d frames: too short to repay a compiled build, running on a backend that needs none",
                     source.frame_count)
        backend = create_backend(name, pack=state.catalog, options=options, oneshot=quick)
        if quick and s.live and not s.oneshot:
            self.warmup = threading.Thread(target=self._prepare_upgrade, args=(backend.name, options),
                                           name="backend-warmup", daemon=True)
            self.warmup.start()
        return backend

    def _network_threads(self, state: LiveState, source: Optional[Source] = None) -> int:
        """The network's CPU threads: as asked, else, live with keyframes, one core fewer than there are
        where the display loop needs one to itself: from 4 cores, or above 640×480 (docs/pipeline-overlap.md)."""
        s = self.settings
        if s.threads or not s.live or state.keyframes == "off":
            return s.threads
        size = state.size or (source.frame_size if source else None) or defaults.FRAME_SIZE
        cores = usable_cores()
        if cores >= 4 or size[0] * size[1] > defaults.FRAME_SIZE[0] * defaults.FRAME_SIZE[1]:
            return max(1, cores - 1)
        return 0

    @staticmethod
    def _compiled_cached(state: LiveState, source: Source) -> bool:
        """``auto`` would pick a compiled CPU backend, and it opens at once for these frames (its stock network
        cached: an int8 model of this size, OpenVINO's export)."""
        best, size = auto_choice(), state.size or source.frame_size
        return (best in COMPILED_CPU and size is not None
                and BACKENDS[best].opens_at_once(state.catalog.stock, size[1], size[0]))

    @staticmethod
    def _build_pays(source: Source) -> bool:
        """A file long enough to repay compiling for its frames (unknown length: assume it is)."""
        count, size = source.frame_count, source.frame_size
        return not count or size is None or count * size[0] * size[1] >= defaults.BUILD_PAYS_PIXEL_FRAMES

    def _prepare_upgrade(self, current_name: str, options: BackendOptions) -> None:
        """Start the full `auto` choice; if it is a compiled CPU path, build what the frames run now
        (the level the governor chose: its network and size) and hand it over between two frames."""
        yield_to_display()  # and the inference threads the new backend starts from here
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
        if self.state.backend != "auto" or self._closed:
            upgrade.close()
            return
        catalog = self.pipeline.catalog
        if upgrade.catalog is not catalog:
            if upgrade.catalog.stock.digest != catalog.stock.digest:
                upgrade.close()
                return
            upgrade.adopt(catalog)  # a picture style arrived while it warmed up
        self.pipeline.replace_backend(upgrade).close()
        log.info("switched to the warmed-up %s", upgrade.describe())
        self._emit(BackendSwitched(upgrade.describe()))
        self._emit(Started(self.label(), upgrade.describe()))


class _Either:
    """Stops when either event is set (a caller's stop, or the session's own)."""

    def __init__(self, a: threading.Event, b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()

    def wait(self, timeout: float) -> bool:
        return self.a.wait(timeout) or self.b.is_set()
