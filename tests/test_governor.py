"""The frame-rate governor: it lowers the render scale when frames are slow and raises it when they are
fast, never below the floor, and the output keeps its size. The slow backend is the real ONNX Runtime
backend plus a sleep proportional to the pixels it is given (a stand-in for a slow CPU: this test must
not depend on the speed of the machine it runs on)."""
import threading
import time

import numpy as np
import pytest

from engine.backends.networks import NetworkBackends, as_catalog
from engine.backends.ort import OrtCpuBackend
from engine.video.capture import SourceSettings, open_source
from engine.errors import InputError
from engine.live.governor import Governor, GovernorSettings, Level
from engine.live.pipeline import Pipeline, StyleSettings

SIZE = (160, 120)


class SleepyBackend(OrtCpuBackend):
    """ONNX Runtime, then ``ms_at_full`` of sleep at SIZE, scaled by the pixels actually run."""

    ms_at_full = 60.0

    def infer(self, x, style_weights):
        h, w = x.shape[-2:]
        time.sleep(self.ms_at_full / 1000.0 * (h * w) / (SIZE[0] * SIZE[1]))
        return super().infer(x, style_weights)


def _pipeline(pack, governor):
    source = open_source(SourceSettings("synthetic", size=SIZE, paced=False))
    backend = SleepyBackend(pack=pack)
    return Pipeline(source, backend, pack, [], StyleSettings("19"), governor=governor), backend


def test_slow_frames_lower_the_scale_fast_frames_raise_it(pack):
    # 10 FPS: a budget (100 ms) far above what ONNX Runtime itself needs at 160×120 on any machine,
    # so the sleep decides: 240 ms at full size, 2 ms later
    pipe, backend = _pipeline(pack, GovernorSettings(target_fps=10, window=6, hold_s=0.0))
    backend.ms_at_full = 240.0
    scales, sizes = [], set()
    for _ in range(30):
        r = pipe.step()
        scales.append(r.render_scale)
        sizes.add(r.stylized.shape)
    assert scales[0] == 1.0 and scales[-1] < 1.0  # 240 ms at full size cannot hold 10 FPS
    assert 240 * scales[-1] ** 2 <= 100  # ... the chosen scale does
    assert sizes == {(SIZE[1], SIZE[0], 3)}  # frames kept flowing at the output's own size
    assert "to hold 10 FPS" in r.governor
    low = scales[-1]
    backend.ms_at_full = 2.0  # headroom: back up, one rung at a time, to full size
    for _ in range(60):
        r = pipe.step()
    assert r.render_scale == 1.0 > low
    pipe.close()


def test_never_below_the_floor(pack):
    pipe, backend = _pipeline(pack, GovernorSettings(target_fps=30, window=4, min_scale=0.75))
    backend.ms_at_full = 200.0
    seen = [pipe.step().render_scale for _ in range(16)]
    assert min(seen) == 0.75 and seen[-1] == 0.75
    pipe.close()


def test_off_means_the_set_scale_and_can_be_turned_on_live(pack):
    pipe, backend = _pipeline(pack, GovernorSettings())
    assert pipe.governor is None
    assert all(pipe.step().render_scale == 1.0 for _ in range(8))
    pipe.set_governor(GovernorSettings(target_fps=30, window=4))  # from any thread; applied next frame
    seen = [pipe.step().render_scale for _ in range(12)]
    assert seen[-1] < 1.0
    pipe.set_governor(GovernorSettings(target_fps=None))  # "full quality"
    assert pipe.step().render_scale == 1.0
    pipe.close()


def test_no_oscillation_at_a_steady_load():
    """A cost just above budget at full size: one step down, then it stays (no up-down-up)."""
    g = Governor(GovernorSettings(target_fps=30, window=5))
    scale_cost = lambda s: 40.0 * s ** 2 + 2.0  # noqa: E731 - ms: mostly pixels, a little fixed
    history = []
    for i in range(200):
        now = i / 30.0
        move = g.observe(scale_cost(g.scale) * (1 + 0.05 * np.random.default_rng(len(history)).standard_normal()),
                         now=now)
        if move is not None:
            g.moved(move, now=now)
        history.append(g.scale)
    assert g.changes == 1 and history[-1] < 1.0


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="--min-scale"):
        GovernorSettings(target_fps=30, min_scale=0.1).check()
    with pytest.raises(InputError, match="--target-fps"):
        GovernorSettings(target_fps=-5).check()


def _drive(g: Governor, cost_ms, frames: int = 120, start: float = 0.0, fps: float = 30.0) -> list[Level]:
    """Feed ``g`` frames costing ``cost_ms(level)`` (a tuple: work and network ms), ``fps`` a second of
    simulated time from ``start``; the levels it ran at."""
    seen = []
    for i in range(frames):
        now = start + i / fps
        cost = cost_ms(g.level)
        move = g.observe(*(cost if isinstance(cost, tuple) else (cost,)), now=now)
        if move is not None:
            g.moved(move, now=now)
        seen.append(g.level)
    return seen


def test_a_lighter_network_comes_before_any_smaller_scale():
    """Full size on the slim network looks like the full network; a smaller scale is softer: so when
    the style has a lighter network, slow frames move to it (at full size if it fits) first."""
    g = Governor(GovernorSettings(target_fps=30, window=5))
    cost = lambda lv: 100.0 * lv.scale ** 2 * (0.25 if lv.light else 1.0)  # noqa: E731
    assert g.offer_light("slim") is None  # full size on the full network is on both ladders
    seen = _drive(g, cost, frames=600)
    assert seen[-1] == Level(1.0, True)  # 25 ms: full size holds 30 FPS on the slim network
    assert all(lv.light or lv.scale == 1.0 for lv in seen)  # never a smaller scale of the full network
    assert abs(g.light_cost - 0.25) < 1e-6  # measured on both networks, not guessed any more
    # a style the slim network does not carry: back to the full network at a scale that costs no more
    back = g.offer_light("")
    assert back is not None and not back.light and cost(back) <= cost(Level(1.0, True))
    g.moved(back, now=20.0)
    seen = _drive(g, cost, frames=600, start=20.0)
    assert not any(lv.light for lv in seen) and seen[-1].scale < 1.0


def test_without_a_lighter_network_the_ladder_is_the_scales():
    g = Governor(GovernorSettings(target_fps=30, window=5))
    seen = _drive(g, lambda lv: 100.0 * lv.scale ** 2)
    assert not any(lv.light for lv in seen) and seen[-1].scale < 1.0
    assert "network" not in g.describe()


def test_pipeline_runs_the_slim_network_for_a_style_it_carries(pack):
    """The real catalog: the stock network sleeps (a slow CPU), the slim one is plain ONNX Runtime.
    Style 19 is within the slim network's quality floor: the governor runs it at full size instead
    of lowering the scale. A style it does not carry (the first one not marked): back on the stock
    network, at a lower scale."""
    from engine.backends.networks import NetworkBackends
    from engine.styles.user_styles import load_catalog

    catalog = load_catalog()
    within = catalog.lighter["slim"].manifest["within_floor"]
    other = next(i for i in range(catalog.stock.num_styles) if i not in within)
    assert 19 in within
    backends = NetworkBackends("onnxruntime", catalog)
    backends._backends["stock"].close()
    slow = backends._backends["stock"] = SleepyBackend(pack=catalog.stock)
    slow.ms_at_full = 240.0
    source = open_source(SourceSettings("synthetic", size=SIZE, paced=False))
    pipe = Pipeline(source, backends, catalog, [], StyleSettings("19"),
                    governor=GovernorSettings(target_fps=10, window=6, hold_s=0.0))
    results = [pipe.step() for _ in range(30)]
    assert results[0].networks == ("stock",) and results[-1].networks == ("slim",)
    assert results[-1].render_scale == 1.0 and "on the slim network" in results[-1].governor
    assert {r.stylized.shape for r in results} == {(SIZE[1], SIZE[0], 3)}
    pipe.update(style=str(other))
    results = [pipe.step() for _ in range(30)]
    assert results[-1].networks == ("stock",) and results[-1].render_scale < 1.0
    assert {r.stylized.shape for r in results} == {(SIZE[1], SIZE[0], 3)}
    pipe.close()


def test_the_fixed_part_and_the_upscale_are_not_scaled():
    """A frame's time = a fixed part (stabilizer, resizes) + the upscale below full size + the network
    (∝ scale²). The upscale makes a smaller scale of the slim network cost about what full size does:
    the governor learns both parts and settles on full size on the slim network, not below it."""
    g = Governor(GovernorSettings(target_fps=30, window=5))
    g.offer_light("slim")

    def frame(lv):  # (work, network) ms
        network = (22.0 if lv.light else 60.0) * lv.scale ** 2
        return 8.0 + (10.0 if lv.scale < 1 else 0.0) + network, network

    seen = _drive(g, frame, frames=900)  # 30 s
    assert seen[-1] == Level(1.0, True)  # 30 ms: holds 30 FPS, and sharper than any smaller scale
    assert g.changes <= 3  # found in a few moves, then it stays
    assert all(lv == seen[-1] for lv in seen[-60:])


def test_the_budget_follows_a_source_slower_than_the_target():
    """A 24 fps clip can never give 30 FPS: 36 ms frames fit its 41.7 ms interval, so the scale stays at
    full size (aiming at 30 FPS it would drop, softening every frame for nothing)."""
    g = Governor(GovernorSettings(target_fps=30, window=5))
    g.source_fps = 24.0
    seen = _drive(g, lambda lv: 36.0 * lv.scale ** 2, frames=240, fps=24.0)
    assert all(lv.scale == 1.0 for lv in seen) and g.changes == 0
    assert "to hold 24 FPS" in g.describe()
    g.source_fps = 30.0  # the same frames against a 30 fps camera: down
    seen = _drive(g, lambda lv: 36.0 * lv.scale ** 2, frames=240, start=20.0)
    assert seen[-1].scale < 1.0


def test_a_burst_of_slow_frames_does_not_move_it():
    """Half a second of frames just over budget (the other core busy with a repaint or a build) is
    no reason to soften the picture: only overload that lasts ``confirm_s`` is."""
    g = Governor(GovernorSettings(target_fps=30, window=5, confirm_s=1.0))
    burst = iter([38.0] * 15 + [25.0] * 200)  # 0.5 s of 38 ms (p90 over, median over: but only 15 frames)
    seen = _drive(g, lambda lv: 25.0 if lv.scale < 1 else next(burst), frames=200)
    assert g.changes <= 1
    g2 = Governor(GovernorSettings(target_fps=30, window=9, confirm_s=1.0))
    mixed = iter([20.0, 20.0, 20.0, 20.0, 20.0, 20.0, 20.0, 38.0, 38.0] * 2 + [20.0] * 400)
    seen = _drive(g2, lambda lv: next(mixed) * lv.scale ** 2, frames=200)
    assert all(lv.scale == 1.0 for lv in seen)  # p90 over budget for 0.6 s, but never most frames


def test_a_step_up_that_fails_is_not_retried_soon():
    """Hysteresis in time: after a move no step up for ``hold_s``; a step up that had to be taken back
    doubles the wait. A load where the model misjudges one rung (0.875 costs 6 ms more than its pixels
    say) tempts it up again and again: over a minute it tries a few times, each wait twice the last."""
    g = Governor(GovernorSettings(target_fps=30, window=6, hold_s=5.0, confirm_s=0.5, up_margin=0.95))
    cost = lambda lv: 40.0 * lv.scale ** 2 + (6.0 if lv.scale == 0.875 else 0.0)  # noqa: E731
    moves = []
    for i in range(60 * 30):
        now = i / 30.0
        move = g.observe(cost(g.level), now=now)
        if move is not None:
            moves.append((now, move.scale))
            g.moved(move, now=now)
    ups = [t for t, scale in moves if scale == 0.875]
    assert 2 <= len(ups) <= 4, moves  # it does try (the model says it fits), but not every 5 s
    waits = np.diff(ups)
    assert all(b >= 1.9 * a for a, b in zip(waits, waits[1:])), moves
    assert moves[-1][1] == 0.75


def test_while_a_build_shares_the_cores_only_late_frames_move_it_down():
    """A build in the build process takes CPU from the frames: p90 just over budget then says nothing
    about the level (cautious), but most frames late still does; steps up stay allowed."""
    g = Governor(GovernorSettings(target_fps=30, window=6, confirm_s=0.5))
    g.cautious = True
    spiky = iter([30.0, 30.0, 30.0, 30.0, 38.0, 38.0] * 100)  # p90 over budget for seconds, median under
    _drive(g, lambda lv: next(spiky), frames=300)
    assert g.changes == 0
    _drive(g, lambda lv: 45.0 * lv.scale ** 2, frames=30, start=10.0)  # most frames late: down at once
    assert g.changes == 1 and g.scale < 1.0


def test_a_new_style_finds_its_level_without_waiting_out_the_hold():
    """The hold is against flip-flopping under one load. A new style is a new load: once measured it
    steps straight to the level that fits (here: back up to full size), not after ``hold_s``."""
    g = Governor(GovernorSettings(target_fps=30, window=5, hold_s=10.0))
    _drive(g, lambda lv: 60.0 * lv.scale ** 2, frames=60)  # a heavy style: down
    assert g.scale < 1.0
    g.restart()  # the user picks a light style
    seen = _drive(g, lambda lv: 15.0 * lv.scale ** 2, frames=30, start=2.0)  # one second of it
    assert seen[-1].scale == 1.0


def test_a_new_style_settles_where_a_run_from_the_top_would():
    """The bench starts at full size and steps down to the best level predicted to fit; live, a style
    switch enters the ladder from below (the level the last style ran at). Its first decision takes the
    same best fitting level, not only what clears the stricter margin for steps up."""
    # (work, network) ms: 0.625 fits 33 ms (28.7 predicted), misses 0.8 × 33 (26.7)
    cost = lambda lv: (6.0 + 58.0 * lv.scale ** 2, 58.0 * lv.scale ** 2)  # noqa: E731
    top = Governor(GovernorSettings(target_fps=30, window=5))
    assert _drive(top, cost, frames=150)[-1].scale == 0.625
    live = Governor(GovernorSettings(target_fps=30, window=5))
    live.moved(Level(0.5), now=0.0)
    live._fresh = False  # the old rule: measured at 0.5 it stays (0.625 misses the margin for a step up)
    _drive(live, cost, frames=30, start=0.0)
    assert live.scale == 0.5
    live.restart()  # a new style with the same cost
    assert _drive(live, cost, frames=30, start=2.0)[-1].scale == 0.625


class BuildingBackend(NetworkBackends):
    """A compiled backend as the pipeline sees one in live use: full size runs now, every smaller
    size has to build first, and the build runs on a thread until ``built`` is set (a build slower
    than this test; its wait, not its compile, is what is tested here). The frames run on the sleepy
    ONNX Runtime backend."""

    def __init__(self, pack):
        sleepy = SleepyBackend(pack=pack)
        super().__init__(sleepy.name, as_catalog(pack), first=sleepy)
        self.sleepy = sleepy
        self.built = threading.Event()
        self.asked = []
        self.full_size_built = True

    def level_ready(self, weights, shape, light=False):
        return self.built.is_set() or (self.full_size_built and tuple(shape[:2]) == (SIZE[1], SIZE[0]))

    def prepare(self, weights, shape, light=False):
        self.asked.append(tuple(shape[:2]))
        thread = threading.Thread(target=self.built.wait, daemon=True)
        thread.start()
        return [thread]


def test_a_step_down_waits_for_its_build_asked_once_then_takes_it(pack, caplog):
    """Slow frames want a smaller scale that is still building: the frames go on at full size, the
    build is asked for once and said once (the live soak logged it 36 times in two minutes); once
    built, the step down is taken."""
    source = open_source(SourceSettings("synthetic", size=SIZE, paced=False))
    backend = BuildingBackend(pack)
    backend.sleepy.ms_at_full = 240.0
    pipe = Pipeline(source, backend, pack, [], StyleSettings("19"), background_warmup=True,
                    governor=GovernorSettings(target_fps=10, window=6, hold_s=0.0))
    with caplog.at_level("INFO", logger="engine.live"):
        scales = [pipe.step().render_scale for _ in range(20)]
        assert set(scales) == {1.0} and len(backend.asked) == 1
        assert sum("building" in r.getMessage() for r in caplog.records) == 1
        backend.built.set()
        scales = [pipe.step().render_scale for _ in range(10)]
    assert scales[-1] < 1.0
    pipe.close()


def test_on_the_stand_in_a_step_down_is_taken_at_once(pack, caplog):
    """When no size is built yet, the frames run on the quick stand-in, which runs any size without a
    build: slow frames step down at once (the cold soak sat 30 s at 18 FPS waiting for a build), and
    the smaller size's compiled model is asked for aside."""
    source = open_source(SourceSettings("synthetic", size=SIZE, paced=False))
    backend = BuildingBackend(pack)
    backend.sleepy.ms_at_full, backend.full_size_built = 240.0, False
    pipe = Pipeline(source, backend, pack, [], StyleSettings("19"), background_warmup=True,
                    governor=GovernorSettings(target_fps=10, window=6, hold_s=0.0))
    with caplog.at_level("INFO", logger="engine.live"):
        scales = [pipe.step().render_scale for _ in range(20)]
    assert scales[-1] < 1.0 and backend.asked and all(s != (SIZE[1], SIZE[0]) for s in backend.asked)
    assert any("on the stand-in" in r.getMessage() for r in caplog.records)
    backend.built.set()
    pipe.close()
