"""source → preprocess → infer → postprocess → stabilize → mask → sinks, one frame at a time, every
stage timed. ``Pipeline.run`` is the engine's only frame loop (the live session drives it too).

Settings (style, strength, colours) go into a latest-wins slot that the next frame picks up, so
the GUI, the HTTP server or a CLI flag can change them from any thread without touching the model.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import numpy as np

from .. import defaults
from ..backends.base import Backend
from ..backends.networks import NetworkBackends, around, as_catalog, blend_outputs
from ..video.capture import Source
from ..errors import InputError, SourceLost, StylecamError
from .events import Event, Failed, SourceBack, SourceGone, error_kind
from ..frame.frames import (check_render_scale, check_strength, guided_upscale, mix, preserve_colors, scaled_input,
                            scaled_shape)
from .governor import Governor, GovernorSettings
from ..metrics import LatencyMeter, RateMeter
from ..frame.segment import check_mask, composite
from ..sinks.base import Sink
from ..frame.stabilize import Stabilizer, StabilizerSettings
from ..frame import kernels
from ..frame.carry import Carrier
from ..frame.fill_blend import paint
from ..styles.mix import StyleMix
from ..styles.catalog import StyleCatalog
from ..styles.packs import StylePack
from .governor import Level
from .steady_carried import SteadyCarried
from .keyframes import Job, KeyframeRenderer, Rendered
from .levels import LevelScheduler

log = logging.getLogger(__name__)
# postprocess: back to uint8 at the frame's size, blended across networks, colours and strength
STAGES = ("capture", "preprocess", "infer", "postprocess", "stabilize", "carry", "mask", "output")
WORK = ("preprocess", "infer", "postprocess", "stabilize", "mask")  # a frame's own work: what the governor times
LATENCY_WINDOW = 120  # frames in the latency percentiles a frame carries
KEYFRAME_MODES = ("auto", "on", "off")  # carry full-size keyframes along the motion (auto: where they cannot keep up)
KEYFRAME_OFF_SHARE = 0.8  # auto: render every frame again once keyframes take under this share of a frame's time
FIRST_KEYFRAME_S = 120.0  # the longest the first frame of a source waits for its keyframe (a cold build)


@dataclass(frozen=True)
class StyleSettings:
    """The look: the style mix and what is done around it. A spec given as text is parsed here, once
    (StyleSettings is built where text enters: the CLI, HTTP, the app's settings)."""

    style: StyleMix = StyleMix(((0, 1.0),))
    strength: float = 1.0
    preserve_colors: bool = False
    render_scale: float = 1.0  # < 1: run the network smaller, upscale edge-aware (lower quality, faster)
    stabilize: bool = False  # anti-flicker (engine/frame/stabilize.py); live sources turn it on (defaults.STABILIZE_LIVE)
    mask: str = "none"  # none | person | background: which layer gets the style

    def __post_init__(self):
        if not isinstance(self.style, StyleMix):
            object.__setattr__(self, "style", StyleMix.parse(self.style))

    def check(self, pack) -> np.ndarray:
        """Every field checked against ``pack`` in one place; returns the style's weight vector."""
        weights = self.style.weights(pack)  # StyleError for a style the catalog lacks
        check_strength(self.strength)
        check_render_scale(self.render_scale)
        check_mask(self.mask)
        return weights


def finish(out: np.ndarray, frame: np.ndarray, settings: StyleSettings, small: Optional[np.ndarray] = None,
           pool: Optional[ThreadPoolExecutor] = None) -> np.ndarray:
    """Back to the frame's size (edge-aware when scaled; ``small``: the frame the network saw; ``pool``
    takes half the upscale), then colours and strength."""
    if out.shape != frame.shape:
        out = guided_upscale(out, frame, small, pool=pool)
    if settings.preserve_colors:
        out = preserve_colors(out, frame)
    return mix(out, frame, settings.strength)


def stylize_frame(backend: Backend, frame: np.ndarray, weights: np.ndarray, settings: StyleSettings) -> np.ndarray:
    """One frame through the whole fast path, untimed (stylize, fidelity checks)."""
    small = scaled_input(frame, settings.render_scale)
    return finish(backend.run(small, weights), frame, settings, small)  # NetworkBackends.run blends networks


@dataclass
class FrameResult:
    index: int
    original: np.ndarray
    stylized: np.ndarray
    times_ms: dict[str, float]
    networks: tuple[str, ...] = ("stock",)  # two when a blend spans both networks (twice the cost)
    render_scale: float = 1.0  # what the network ran at (the governor's choice, or the setting)
    governor: str = ""  # "render 0.62× to hold 30 FPS" while the governor is on
    latency_ms: float = 0.0  # from the frame's grab to its hand-over to the sinks
    latency_p50_ms: float = 0.0  # ... over the last LATENCY_WINDOW frames
    latency_p95_ms: float = 0.0
    backend: str = ""  # what ran it, described (the HUD and /stats read it here, never the live backend)
    grabbed_at: float = 0.0  # when the source frame was grabbed (perf_counter): a sink's latency starts here
    mode: str = "direct"  # "keyframes": the newest keyframe carried to this frame; "direct": rendered for it
    keyframe: int = 0  # the source frame the shown keyframe was rendered from (its own index when direct)
    keyframe_age_ms: float = 0.0  # grab of this frame − grab of the keyframe's source frame
    keyframe_fps: float = 0.0  # keyframes rendered per second (keyframe mode)
    trusted: float = 1.0  # share of the picture carried from the keyframe (the rest filled from this frame)
    build_failure: str = ""  # why this size runs on the stand-in for good (a build given up), for the HUD


@dataclass
class StageStats:
    """Per-stage durations in ms, kept for percentiles."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in (*STAGES, "total", "latency")})

    def add(self, times_ms: dict[str, float]) -> None:
        for name, value in times_ms.items():
            self.samples.setdefault(name, []).append(value)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95))}
            for name, v in self.samples.items() if v
        }

    def reset(self) -> None:
        for v in self.samples.values():
            v.clear()


class Pipeline:
    def __init__(self, source: Source, backend: NetworkBackends | Backend, catalog: StyleCatalog | StylePack,
                 sinks: list[Sink] = (),
                 settings: StyleSettings = StyleSettings(), read_timeout: float = 2.0,
                 governor: GovernorSettings = GovernorSettings(), background_warmup: bool = False,
                 keyframes: str = "off", kernels_ready: Optional[threading.Event] = None):
        """``governor``: hold a frame rate by the render scale (then ``settings.render_scale`` is unused);
        ``background_warmup``: a compiled backend builds a new scale's size on a thread meanwhile;
        ``keyframes``: on, off, or auto (with the governor on: where the network at full size cannot
        hold the source's rate), the network renders full-size keyframes on its own thread and every
        frame shows the newest one carried along the motion (engine/live/keyframes.py); ``kernels_ready``:
        numba's kernels warming up (engine/frame/kernels.py; None: the pipeline starts it), which the first
        frame waits for."""
        if keyframes not in KEYFRAME_MODES:
            raise InputError(f"--keyframes must be one of {', '.join(KEYFRAME_MODES)}, got {keyframes!r}")
        self.source = source
        self.read_timeout = read_timeout  # how long a live source may stay silent before SourceLost
        self.catalog = catalog = as_catalog(catalog)  # one network's pack (tools, tests): as its own catalog
        self.backend = backend = around(backend, catalog)  # one network's backend: as the composite
        self.sinks: list[Sink] = []
        self.delivery: dict[str, LatencyMeter] = {}  # per sink: grab → delivery, pooled over frames
        for sink in sinks:
            self.add_sink(sink)
        self.stats = StageStats()
        self._rate = RateMeter()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.keyframes = keyframes
        self.carrying = keyframes == "on"  # keyframe mode is what runs now (auto: set with the governor)
        self._kernels_ready = kernels_ready or kernels.warm_up()
        self._carrier = Carrier()  # the display loop's (flow to the keyframe, warp, fill)
        self._renderer: Optional[KeyframeRenderer] = None  # the network's thread, made when carrying starts
        self._tag = 0  # the look's number: bumped by every change of look, so no keyframe shows an old one
        self._shown: Optional[Rendered] = None  # the keyframe carried to the last frame
        self._painter: Optional[Rendered] = None  # a new source's frames: the old one's last keyframe paints them
        # CPU inference threads spin after a run: more workers would wait for a busy core (docs/pipeline-overlap.md)
        self.stabilizer = Stabilizer(StabilizerSettings(threads=1 if backend.on_cpu else 0))
        self._steady_carried = SteadyCarried(self.stabilizer)  # keyframe mode: steady video on the frames shown
        # the stabilizer's flow runs beside the network where its threads leave the cores (a GPU; ONNX
        # Runtime and OpenVINO, which sleep between ops), never beside OpenMP threads that spin
        self.overlap_prepare = not backend.on_cpu
        self.overlap_cpu = backend.on_cpu and backend.idles_between_runs
        # with the cores free, the second one takes half of the upscale when the flow does not
        cores_free = (self.overlap_cpu or self.overlap_prepare) and (os.cpu_count() or 1) > 1
        self._upscale_pool = ThreadPoolExecutor(1, thread_name_prefix="upscale") if cores_free else None
        self._side: Optional[ThreadPoolExecutor] = None
        self.segmenter = None
        self.background_warmup = background_warmup
        self.levels = LevelScheduler(None, background_warmup)  # the governor and the builds its levels need
        # unpaced sources (bench) run faster than real time: the governor's holds count frames at its goal
        self._paced = source.paced
        self._clock = 0.0
        self._frame_shape: Optional[tuple] = None  # the source's frames, as last read
        self._look: Optional[tuple] = None  # what the output looks like (``_apply``), and the catalog
        self._look_catalog = None
        self.set_governor(governor)
        self._apply(settings)

    # -- changes: made on the pipeline's thread, between frames (a Session queues them) -------------
    def _apply(self, settings: StyleSettings, weights: Optional[np.ndarray] = None) -> None:
        weights = settings.check(self.catalog) if weights is None else weights
        self._ensure_segmenter(settings.mask)
        # a new look (style, blend, strength, colours, catalog) shows at once: steadied, it would fade in
        # from the old one over a second or more (where nothing moves 0.93 of the old is kept a frame)
        look = (weights.tobytes(), settings.strength, settings.preserve_colors)
        if self._look is not None and (look != self._look or self.catalog is not self._look_catalog):
            self.stabilizer.reset()
            self.levels.changed()
            self._tag += 1
            if self.governor is not None:
                self.governor.restart()
        self._look, self._look_catalog = look, self.catalog
        self.settings, self.weights = settings, weights

    def _ensure_segmenter(self, mask: str) -> None:
        if mask != "none" and self.segmenter is None:
            from ..frame.segment import PersonSegmenter

            self.segmenter = PersonSegmenter()  # BackendUnavailable/ModelError if LiteRT or the model is missing

    def apply(self, state) -> None:
        """A live state (engine/live/state.py), whole: its catalog, look, governor and keyframe mode, in
        use from the next frame; raises (and changes nothing of the look) on a bad one. Not thread-safe:
        the pipeline's own thread (a Session applies states between frames), or before it runs."""
        weights = state.style.check(state.catalog)
        old_catalog, self.catalog = self.catalog, state.catalog
        try:
            self._apply(state.style, weights)
        except BaseException:
            self.catalog = old_catalog
            raise
        if state.governor != self._governor_settings:
            self.set_governor(state.governor)
        if state.keyframes != self.keyframes:
            self.set_keyframes(state.keyframes)

    def update(self, **changes) -> StyleSettings:
        """New style settings, checked and in use from the next frame (tools and tests; a live session
        hands over whole states: ``apply``); raises (and changes nothing) on a bad one."""
        new = replace(self.settings, **changes)
        self._apply(new)
        return new

    def set_governor(self, settings: GovernorSettings) -> None:
        """Turn the governor on, off or to a new target (not thread-safe, as ``update``). Keyframes on
        auto go with it: off ("full quality") renders every frame at full size."""
        settings.check()
        self._governor_settings = settings
        self.levels.new_governor(Governor(settings) if settings.active else None)
        if self.keyframes == "auto":
            if self.governor is None:
                self._stop_carrying()
            elif not self.carrying:
                self._start_carrying()

    def set_keyframes(self, mode: str) -> None:
        """Carry keyframes on, off, or auto (with the governor: where the network cannot hold the rate)."""
        if mode not in KEYFRAME_MODES:
            raise InputError(f"--keyframes must be one of {', '.join(KEYFRAME_MODES)}, got {mode!r}")
        self.keyframes = mode
        if mode == "on" or (mode == "auto" and self.governor is not None):
            if not self.carrying:
                self._start_carrying()
        else:
            self._stop_carrying()

    def replace_source(self, source: Source) -> Source:
        """Read frames from ``source`` from the next frame on; returns the old one for the caller to close."""
        old, self.source = self.source, source
        self._paced = source.paced
        self.levels.changed()
        self._tag += 1
        self._steady_carried.restart()
        if self._renderer is not None:
            # the old source's keyframes mean nothing to the new one's frames, but their colours do: its
            # frames show at once, painted by the last one's colour table, until their own keyframe comes
            self._painter = self._shown
            self._renderer.forget(self._tag)
        return old

    def add_sink(self, sink: Sink) -> None:
        sink.latency = self.delivery.setdefault(sink.name, LatencyMeter())
        self.sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        self.sinks.remove(sink)

    def replace_backend(self, backend: NetworkBackends):
        """Run frames on ``backend`` from the next frame (on the pipeline's thread, between frames);
        returns the old one for the caller to close (with keyframes, a stand-in whose close waits for
        the render in flight, on the keyframe thread: the frames never wait for it). The sizes the old
        one had built mean nothing to the new one: a compiled one builds a new level aside again
        instead of on a frame."""
        old, self.backend = self.backend, backend
        if self._renderer is not None:
            old = _Retiring(old, self._renderer)
        self.levels.new_backend()
        return old

    def delivery_summary(self) -> dict[str, dict]:
        """Per output: grab → delivery p50/p95 in ms over its last frames (pooled over frames)."""
        out = {}
        for name, meter in list(self.delivery.items()):
            p50, p95 = meter.percentiles(50, 95)
            if p50 is not None:
                out[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "frames": len(meter)}
        return out

    @property
    def governor(self) -> Optional[Governor]:
        """The frame-rate governor (None: full quality); its levels are scheduled by ``levels``."""
        return self.levels.governor

    @property
    def render_scale(self) -> float:
        """The scale the network runs at now."""
        return self.governor.scale if self.governor else self.settings.render_scale

    @property
    def fps(self) -> float:
        """Frames finished per second over the last few seconds."""
        return self._rate.rate

    # -- frames ----------------------------------------------------------------------------
    def step(self) -> Optional[FrameResult]:
        """Process one frame; None when the source has ended. Raises SourceLost while a camera is away.
        The stages: read, stylize (steadying's flow up front or aside) and steady, or carry the newest
        keyframe to it; mask, write, account."""
        settings, weights = self.settings, self.weights
        light = self.levels.light_for(self.backend, weights, self._frame_shape)
        scale = self.render_scale
        t0 = time.perf_counter()
        frame = self.source.read(self.read_timeout)
        if frame is None:
            return None
        t1 = time.perf_counter()
        self._frame_shape = frame.image.shape
        shown: Optional[Rendered] = None
        if self.carrying:
            out, shown, times = self._carried(frame, settings, weights)
            image, networks, ran, scale = frame.image, shown.info["networks"], shown.info["backend"], \
                shown.info["render_scale"]
        else:
            self._kernels_ready.wait(FIRST_KEYFRAME_S)  # a first start: steady video's kernel compiles meanwhile
            out, image, networks, ran, times = self._stylize(frame.image, settings, weights, scale, light)
            t4 = time.perf_counter()
            if settings.stabilize:
                out = self.stabilizer(frame.image, out)
            times["stabilize"] += time.perf_counter() - t4
            times["carry"] = 0.0
        t5 = time.perf_counter()
        if settings.mask != "none":
            out = composite(out, frame.image, self.segmenter.mask(frame.image), settings.mask)
        t6 = time.perf_counter()
        for sink in self.sinks:
            sink.write(out, frame.timestamp)
        t7 = time.perf_counter()
        times.update(capture=t1 - t0, mask=t6 - t5, output=t7 - t6, total=t7 - t0,
                     latency=max(0.0, t7 - frame.timestamp))
        result = self._account(frame, out, image, weights, scale, networks, ran, times, t7)
        if shown is not None:
            result.mode, result.keyframe = "keyframes", shown.key.index
            result.keyframe_age_ms = max(0.0, 1000.0 * (frame.timestamp - shown.grabbed_at))
            result.keyframe_fps, result.trusted = self._renderer.rate.rate, self._carrier.trusted
        else:
            result.keyframe = frame.index
        result.build_failure = self.backend.build_failure(scaled_shape(frame.image.shape, scale)) or ""
        return result

    # -- keyframe mode ---------------------------------------------------------------------------
    def _keyframe_renderer(self) -> KeyframeRenderer:
        if self._renderer is None:
            self._renderer = KeyframeRenderer(self._carrier)
        return self._renderer

    def _carried(self, frame, settings: StyleSettings, weights: np.ndarray) -> tuple[np.ndarray, Rendered, dict]:
        """Hand the frame to the keyframe thread (it renders the newest one it has when it is free),
        then show the newest keyframe carried to this frame. Only the first frame of a source waits."""
        renderer = self._keyframe_renderer()
        level = self.levels.key_level(self.settings.render_scale)
        self.levels.prepare_key(self.backend, weights, scaled_shape(frame.image.shape, level.scale), level.light)
        render = functools.partial(self._render_key, settings, weights, level)
        renderer.offer(Job(frame.index, frame.image, frame.timestamp, self._tag, self.backend, render))
        shown = renderer.newest()
        t2 = time.perf_counter()
        if shown is None and self._painter is not None:  # a new source: painted, as after a cut
            shown, self._carrier.trusted = self._painter, 0.0
            out = paint(frame.image, shown.key.lut)
            return out, shown, _carried_times(time.perf_counter() - t2, 0.0)
        if shown is None:  # the start: nothing to carry yet
            shown = renderer.wait(self._tag, FIRST_KEYFRAME_S)
            if shown is None:
                error = renderer.error
                raise error if error is not None else StylecamError("no keyframe came from the network")
            self._kernels_ready.wait(FIRST_KEYFRAME_S)  # a first start: the carry's kernels compile meanwhile
            t2 = time.perf_counter()
        self._shown, self._painter = shown, None
        out = self._carrier.carry(shown.key, frame.image, frame.index)
        carry_ms = 1000.0 * (time.perf_counter() - t2)
        out, steady_ms = self._steady_carried(frame.image, out, shown.key, self._carrier.trusted, settings.stabilize,
                                              carry_ms, 1000.0 / (self.source.fps or defaults.FPS))
        return out, shown, _carried_times(carry_ms / 1000.0, steady_ms / 1000.0)

    def _render_key(self, settings: StyleSettings, weights: np.ndarray, level: Level, backend,
                    image: np.ndarray) -> tuple[np.ndarray, dict]:
        """On the keyframe thread: the network at ``level`` and back to the frame's size."""
        small = scaled_input(image, level.scale)
        outputs, networks, ran, _ = self._run_network(small, weights, level.light, backend)
        out = finish(blend_outputs(outputs), image, settings, small, self._upscale_pool)
        return out, {"networks": tuple(networks), "backend": ran, "render_scale": level.scale}

    def _start_carrying(self) -> None:
        self.carrying = True
        self.stabilizer.reset()
        self._painter = None
        if self._renderer is not None:
            self._renderer.forget(self._tag)  # its last keyframe is from long ago: the next frame waits for a fresh one

    def _stop_carrying(self) -> None:
        if self.carrying:
            self.carrying = False
            self.stabilizer.reset()

    def _switch_keyframes(self) -> None:
        """auto: back to rendering every frame once keyframes come fast enough to (a fast network)."""
        governor, renderer = self.governor, self._renderer
        if self.keyframes != "auto" or governor is None or renderer is None or self._paced is False:
            return
        if self._paced and self.source.fps > 0:
            governor.source_fps = self.source.fps
        p90 = renderer.render_p90_ms()
        if p90 is not None and p90 <= KEYFRAME_OFF_SHARE * governor.budget_ms:
            log.info("keyframes take %.0f ms of %.0f: rendering every frame", p90, governor.budget_ms)
            self._stop_carrying()
            renderer.times.clear()
            governor.moved(governor.level)

    def _stylize(self, image: np.ndarray, settings: StyleSettings, weights: np.ndarray, scale: float,
                 light: bool) -> tuple[np.ndarray, np.ndarray, list, str, dict]:
        """The network at ``scale`` and back to the frame's size (colours, strength). The stabilizer's
        flow runs up front, or aside: beside the network (GPU; CPU at full scale) or the upscale (CPU,
        below full scale), when it does not denoise the network's input. Returns the output, the image
        the network saw (denoised or not), the networks and backends that ran, and seconds per stage."""
        t1 = time.perf_counter()
        preparing: Optional[Future] = None
        later = (settings.stabilize and self.stabilizer.settings.denoise == 0
                 and (self.overlap_prepare or self.overlap_cpu))
        beside_network = self.overlap_prepare or (self.overlap_cpu and scale >= 1.0)
        if not settings.stabilize:
            self.stabilizer.reset()  # switching it on later starts from a clean frame
        elif beside_network and later:
            preparing = self._prepare_aside(image)
        elif not later:
            image = self.stabilizer.prepare(image)  # flow and confidence (and a denoised input) up front
        t2 = time.perf_counter()
        small = scaled_input(image, scale)
        try:
            outputs, networks, ran, times = self._run_network(small, weights, light)
            t3 = time.perf_counter()
            if later and preparing is None:
                preparing = self._prepare_aside(image)
            # the second core takes half the upscale unless the stabilizer's flow has it (then the
            # upscale's half would queue behind the flow: 0.7 ms slower than one thread)
            out = finish(blend_outputs(outputs), image, settings, small, None if preparing else self._upscale_pool)
        except BaseException:
            if preparing is not None:  # a failed frame must not leave the flow running into the next one
                wait([preparing])
            raise
        t4 = time.perf_counter()
        if preparing is not None:
            preparing.result()  # done by now, unless the network was faster than the flow
        times["postprocess"] += t4 - t3
        times["stabilize"] = (t2 - t1) + (time.perf_counter() - t4)
        return out, image, networks, ran, times

    def _account(self, frame, out: np.ndarray, image: np.ndarray, weights: np.ndarray, scale: float,
                 networks: list, ran: str, seconds: dict, end: float) -> FrameResult:
        """Timings into the stats and the governor; the frame's result with its latency percentiles."""
        times = {k: v * 1000.0 for k, v in seconds.items()}
        self.stats.add(times)
        self._rate.tick(end)
        described = ""
        if self.governor is not None:
            if self.carrying:
                self._switch_keyframes()
            else:
                self._govern(sum(times[k] for k in WORK), times["infer"], image, weights)
            described = self.governor.describe()
        self._latencies.append(times["latency"])
        p50, p95 = np.percentile(self._latencies, (50, 95))
        return FrameResult(frame.index, frame.image, out, times, tuple(networks), scale, described, times["latency"],
                           float(p50), float(p95), ran, frame.timestamp)

    def _prepare_aside(self, image: np.ndarray) -> Future:
        if self._side is None:
            self._side = ThreadPoolExecutor(1, thread_name_prefix="stabilize-prepare")
        return self._side.submit(self._prepare_ahead, image)

    def _prepare_ahead(self, image: np.ndarray) -> None:
        """The stabilizer's flow, and the previous output moved along it: all of its work that does not
        need this frame's output (beside a GPU, on a side thread while the network runs)."""
        self.stabilizer.prepare(image)
        self.stabilizer.warp_ahead()

    def _run_network(self, small: np.ndarray, weights: np.ndarray, light: bool,
                     backends=None) -> tuple[list, list, str, dict]:
        """The network(s) on the scaled frame: [(output, share)], the networks and backends that ran
        (a stand-in while a size builds), and the timings. ``backends``: the one a keyframe job took."""
        times = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}
        outputs, networks, ran = [], [], []
        for backend, vector, share in (backends or self.backend).parts(weights, small.shape, light=light):
            ta = time.perf_counter()
            x = backend.preprocess(small)
            tb = time.perf_counter()
            y = backend.infer(x, vector)
            tc = time.perf_counter()
            outputs.append((backend.postprocess(y, small.shape[0], small.shape[1]), share))
            networks.append(backend.pack.network)
            ran.append(backend.describe())
            td = time.perf_counter()
            times["preprocess"] += tb - ta
            times["infer"] += tc - tb
            times["postprocess"] += td - tc
        return outputs, networks, " + ".join(dict.fromkeys(ran)), times

    def _now(self) -> float:
        """The governor's clock: real time for paced sources; for unpaced ones (bench), frames at its goal."""
        if self._paced:
            return time.monotonic()
        self._clock += 1.0 / self.governor.fps_goal
        return self._clock

    def _govern(self, work_ms: float, network_ms: float, image: np.ndarray, weights: np.ndarray) -> None:
        """Feed the governor this frame's times; its wish goes to the level scheduler, unless keyframes on
        auto take over (the network cannot hold the rate at full size)."""
        governor = self.governor
        if self._paced and self.source.fps > 0:
            governor.source_fps = self.source.fps  # a camera's measured rate, a file's own
        builder = self.backend.builder
        # a build in the build process shares the cores: its frame times only count when most are late
        governor.cautious = builder is not None and builder.busy()
        now = self._now()
        target = governor.observe(work_ms, network_ms, now=now)
        if self.levels.waiting(self.backend, weights, target, now):
            return  # a level builds aside: the frames wait for it at the level in use
        if target is not None and self.keyframes == "auto" and target.scale < governor.rungs[0]:
            # a smaller render of each frame is softer than a full-size keyframe carried to it
            log.info("%s: the network cannot hold %g FPS at full size, carrying keyframes", governor.describe(),
                     governor.fps_goal)
            self._start_carrying()
            return
        self.levels.take(self.backend, target, image, weights, now)

    def run(self, max_frames: Optional[int] = None, stop: Optional[threading.Event] = None,
            on_frame: Callable[[FrameResult], None] = lambda r: None,
            on_event: Callable[[Event], None] = lambda e: None,
            between_frames: Callable[[], None] = lambda: None, keep_alive: bool = False,
            idle: Callable[[], bool] = lambda: False) -> int:
        """Loop until the source ends, ``max_frames`` or ``stop``; survives a camera that comes and goes
        (SourceGone, then SourceBack). ``keep_alive`` (live use): a source that ends keeps the last frame
        and the loop waiting for changes, and an error in a frame is reported (Failed) instead of raised.
        ``between_frames`` runs before every frame, on this thread (a session applies its requests);
        while ``idle()`` nobody would see a frame, so none is made."""
        stop = stop or threading.Event()
        done, lost = 0, False
        while (max_frames is None or done < max_frames) and not stop.is_set():
            between_frames()
            if idle():
                stop.wait(defaults.IDLE_WAIT_S)
                continue
            try:
                result = self.step()
            except SourceLost as exc:
                if not lost:
                    log.warning("%s", exc)
                    on_event(SourceGone(str(exc)))
                lost = True
                continue
            except Exception as exc:  # noqa: BLE001 - live: a library's own error ends no stream either
                if not keep_alive:
                    raise
                if isinstance(exc, StylecamError):
                    on_event(Failed(error_kind(exc), str(exc)))
                else:
                    log.exception("a frame failed")
                    on_event(Failed("engine", f"{type(exc).__name__}: {exc}"))
                stop.wait(0.2)
                continue
            if result is None:
                if not keep_alive:
                    break
                stop.wait(defaults.IDLE_WAIT_S)  # a file that ended: keep the last frame on screen
                continue
            if lost:
                on_event(SourceBack())
                lost = False
            done += 1
            on_frame(result)
        return done

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close sinks, backend and source (each exactly once)."""
        if self._renderer is not None:
            self._renderer.close()  # no keyframe renders on the backend once it closes
        for pool in (self._side, self._upscale_pool):
            if pool is not None:
                pool.shutdown()
        for sink in self.sinks:
            sink.close()
        self.backend.close()
        self.source.close()


def _carried_times(carry_s: float, steady_s: float) -> dict:
    """A carried frame's seconds per stage (the network ran on its own thread, not in this frame)."""
    return {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0, "stabilize": steady_s, "carry": carry_s}


class _Retiring:
    """A backend the pipeline replaced while keyframes render: ``close`` hands it to the keyframe thread,
    which closes it once no render uses it."""

    def __init__(self, backend, renderer: KeyframeRenderer):
        self.backend, self._renderer = backend, renderer

    def close(self) -> None:
        self._renderer.retire(self.backend)
