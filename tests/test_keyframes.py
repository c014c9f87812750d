"""Keyframes carried by motion: the network renders full-size keyframes on its own thread, every frame shows
the newest one moved along the flow. Real network (ONNX Runtime), real photos, real video files; the
references are the full-size renders of the same frames."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from engine.backends import create_backend
from stylecam.cli import main
from engine.frame.carry import Carrier
from engine.live.pipeline import Pipeline, StyleSettings, stylize_frame
from engine.metrics import psnr
from engine.sinks.base import NullSink
from engine.video.capture import SourceSettings
from engine.video.demo import write_clip
from engine.video.replay import ReplaySource
from tests.waiting import wait_until

SIZE = (192, 144)  # (w, h): small enough to be quick, large enough for the flow


def _pan(image: np.ndarray, n: int, step: int, size=SIZE) -> list[np.ndarray]:
    """``n`` frames of a camera panning across ``image`` by ``step`` pixels a frame (a real photo)."""
    w, h = size
    return [np.ascontiguousarray(image[40:40 + h, 20 + i * step:20 + i * step + w]) for i in range(n)]


@pytest.fixture(scope="module")
def net(pack):
    backend = create_backend("onnxruntime", pack=pack)
    yield backend, pack
    backend.close()


def _render(net, frame, style="7"):
    backend, pack = net
    return stylize_frame(backend, frame, pack.weights(style), StyleSettings(style=style))


def test_an_old_keyframe_follows_the_motion(net):
    """A keyframe 4 frames old (the camera panned 8 pixels since), carried by the flow, is much closer to the
    full-size render of the current frame than the keyframe left where it was, and than a half-size render
    of the current frame; the keyframe of the frame itself is shown as it is."""
    frames = _pan(data.astronaut(), 5, 2)
    carrier = Carrier()
    key = carrier.keyframe(0, frames[0], _render(net, frames[0]))
    carried = carrier.carry(key, frames[4], 4)
    ideal = _render(net, frames[4])
    backend, pack = net
    half = stylize_frame(backend, frames[4], pack.weights("7"), StyleSettings(style="7", render_scale=0.5))
    assert psnr(carried, ideal) > psnr(key.output, ideal) + 4.0
    assert psnr(carried, ideal) > psnr(half, ideal) + 3.0
    assert carrier.carry(carrier.keyframe(4, frames[4], ideal), frames[4], 4) is ideal


def _edge_corr(a: np.ndarray, b: np.ndarray) -> float:
    ea, eb = (cv2.Canny(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), 60, 160).astype(np.float32) for x in (a, b))
    ea, eb = (cv2.GaussianBlur(x, (0, 0), 2.0).ravel() for x in (ea, eb))
    return float(np.corrcoef(ea, eb)[0, 1])


def test_a_cut_shows_no_ghost(net):
    """Carried across a cut, the keyframe of the old scene leaves none of its picture: the frame shows the
    new scene's shapes, and the old keyframe's edges are not in it."""
    old = _pan(data.astronaut(), 1, 0)[0]
    new = _pan(data.coffee(), 1, 0)[0]
    carrier = Carrier()
    key = carrier.keyframe(1, old, _render(net, old))
    shown = carrier.carry(key, new, 2)
    assert carrier.trusted == 0.0
    assert _edge_corr(shown, new) > 0.5
    assert _edge_corr(shown, key.output) < 0.15


def _clip(tmp_path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    return write_clip(tmp_path / "clip.avi", frames, fps, (w, h), fourcc="MJPG")


def test_replay_delivers_like_a_camera(tmp_path):
    """A file played as a camera keeps its own rate: a reader that is slower than the file gets the newest
    frame, and every arrival is announced, taken or not."""
    frames = _pan(data.astronaut(), 30, 2)
    arrivals = []
    source = ReplaySource(SourceSettings(loop=False), _clip(tmp_path, frames, 60.0),
                          on_arrival=lambda i, t: arrivals.append(i))
    got = []
    while (frame := source.read(2.0)) is not None:
        got.append(frame.index)
        wait_until(lambda: False, timeout=0.05)  # a slow reader: 20 reads a second against 60 frames
    source.close()
    assert arrivals == list(range(1, 31))
    assert len(got) < 20 and got == sorted(got) and got[-1] == 30


def test_live_writes_one_frame_per_source_frame(tmp_path):
    """`stylize --live` writes one numbered PNG and one JSON line per source frame, in order, with what was
    on screen (the keyframe it carried, its network and scale)."""
    frames = _pan(data.astronaut(), 45, 2)
    out = tmp_path / "live"
    assert main(["stylize", str(_clip(tmp_path, frames)), f"{out}/", "--live", "--style", "7",
                 "--backend", "onnxruntime", "--keyframes", "on", "-q"]) == 0
    pngs = sorted(out.glob("frame_*.png"))
    lines = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    assert len(pngs) == len(frames) == len(lines)
    assert [x["source"] for x in lines] == list(range(1, len(frames) + 1))
    shown = [x for x in lines if x["shown"] is not None]
    assert shown and all(x["mode"] == "keyframes" and x["keyframe"] <= x["shown"] <= x["source"] for x in shown)
    assert cv2.imread(str(pngs[-1])).shape == frames[0].shape


def test_a_new_style_shows_within_a_keyframe_interval(net):
    """After a switch, the frames show the new style as soon as the keyframe rendered after it is there: at
    most the render in flight and one more; steady video on the frames shown keeps nothing of the old."""
    backend, pack = net
    frames = _pan(data.astronaut(), 300, 0)
    from engine.video.capture import StillSource

    source = StillSource(SourceSettings("image", fps=30.0), frames[0])
    pipe = Pipeline(source, create_backend("onnxruntime", pack=pack), pack, [NullSink()],
                    StyleSettings(style="7", stabilize=True), keyframes="on")  # steady video on, as live
    a, b = _render(net, frames[0], "7"), _render(net, frames[0], "1")
    for _ in range(10):
        pipe.step()
    times = list(pipe._renderer.times)
    pipe.update(style="1")
    shown_old = 0
    while True:
        r = pipe.step()
        if psnr(r.stylized, b) > psnr(r.stylized, a):
            break
        shown_old += 1
        assert shown_old < 300
    interval_frames = 30.0 * max(times) / 1000.0
    pipe.close()
    assert shown_old <= 2 * interval_frames + 2
    assert psnr(r.stylized, b) > 30.0


def test_steady_video_after_a_cut_keeps_no_ghost(net, tmp_path):
    """Steady video runs on the frames shown. Across a cut the old keyframe's colour map paints the new scene
    until its own keyframe comes; from that keyframe on, the frames are the new scene's render, with nothing
    of the painted frames blended in."""
    backend, pack = net
    old, new = _pan(data.astronaut(), 1, 0)[0], _pan(data.coffee(), 1, 0)[0]
    clip = _clip(tmp_path, [old] * 15 + [new] * 30)
    source = ReplaySource(SourceSettings(loop=False), clip)
    pipe = Pipeline(source, create_backend("onnxruntime", pack=pack), pack, [NullSink()],
                    StyleSettings(style="7", stabilize=True), keyframes="on")
    results = []
    while (r := pipe.step()) is not None:
        results.append((r.index, r.keyframe, r.trusted, r.original, r.stylized))
    pipe.close()
    painted = [x for x in results if x[0] > 15 and x[1] <= 15]
    after = [x for x in results if x[1] > 15]
    assert painted and all(t == 0.0 for _, _, t, _, _ in painted)  # the cut, painted by the old colour map
    assert len(after) >= 5
    for index, key, _, image, shown in after:
        assert psnr(shown, _render(net, image)) > 30.0, (index, key)


def test_steady_video_on_carried_frames_stands_down_when_it_cannot_keep_up():
    """Steady video on the frames shown blends the frame before into the next while the display loop affords
    it; once carrying and steadying take more than nine tenths of a frame's interval it stops, and the
    frames go out as carried (a frame late is worse than a flicker); it tries again later, and stays on once
    the carry is faster."""
    from engine.frame.stabilize import Stabilizer, StabilizerSettings
    from engine.live.steady_carried import AFFORD_FRAMES, RETRY_FRAMES, SteadyCarried

    frames = _pan(data.astronaut(), AFFORD_FRAMES + 5, 1)
    rng = np.random.default_rng(3)
    shown = [np.clip(f.astype(np.int16) + rng.integers(-12, 13, f.shape), 0, 255).astype(np.uint8) for f in frames]
    key = Carrier().keyframe(0, frames[0], shown[0])

    def run(carry_ms: float) -> tuple[SteadyCarried, list[bool]]:
        steady = SteadyCarried(Stabilizer(StabilizerSettings(threads=1)))
        changed = [not np.array_equal(steady(f, s, key, 1.0, True, carry_ms, 33.3)[0], s)
                   for f, s in zip(frames, shown)]
        return steady, changed

    cheap, changed = run(1.0)
    assert cheap.affordable and all(changed[1:])  # every frame after the first blended with the one before
    dear, changed = run(30.0)
    assert not dear.affordable
    assert any(changed[1:AFFORD_FRAMES]) and not any(changed[AFFORD_FRAMES:])
    changed = []
    for i in range(RETRY_FRAMES + AFFORD_FRAMES):  # it tries again later, and stays on where the carry got faster
        f, s = frames[i % len(frames)], shown[i % len(frames)]
        changed.append(not np.array_equal(dear(f, s, key, 1.0, True, 1.0, 33.3)[0], s))
    assert dear.affordable and sum(changed[-AFFORD_FRAMES:]) >= AFFORD_FRAMES - 2  # (the pan's two wraps)


def test_the_fill_blend_kernel_matches_its_formula():
    """The numba kernel against the formula in NumPy: trusted cells copied, the rest ``c·moved + (1 − c)·fill``,
    the fill the local map ``a·grey + b`` where the colour is within SEEN_Z spreads of what the map saw, and
    the colour table (the source colour's bin) beyond, weighted by (SEEN_Z / z)²; each pixel with its
    analysis cell's values (the last row and column take the rest)."""
    from engine.frame.fill_blend import LUT_BINS, SEEN_FLOOR, SEEN_Z, fill_blend

    rng = np.random.default_rng(3)
    k, h, w = 4, 38, 53  # not multiples of k: the last cells take the rows and columns left over
    moved = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    source = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
    a = rng.uniform(-1, 1, (h // k, w // k, 3)).astype(np.float32)
    b = rng.uniform(-0.5, 1, (h // k, w // k, 3)).astype(np.float32)
    conf = rng.choice(np.array([0.0, 0.3, 0.9985, 0.999, 1.0], np.float32), (h // k, w // k))
    seen = np.dstack([rng.uniform(0, 1, (h // k, w // k, 3)), rng.uniform(0, 0.3, (h // k, w // k))]).astype(np.float32)
    nb = LUT_BINS
    lut = rng.uniform(0, 255, (nb ** 3, 3)).astype(np.float32)
    rows = np.minimum(np.arange(h) // k, h // k - 1)
    cols = np.minimum(np.arange(w) // k, w // k - 1)
    cell = (lambda x: x[rows][:, cols])
    c = cell(conf)[..., None]
    g = gray[..., None].astype(np.float32)
    z = np.linalg.norm(source / 255 - cell(seen)[..., :3], axis=2, keepdims=True) / (cell(seen)[..., 3:] + SEEN_FLOOR)
    local = np.where(z <= SEEN_Z, 1.0, (SEEN_Z / np.maximum(z, 1e-6)) ** 2)
    q = source.astype(int) * nb // 256  # the nearest bin
    table = lut[(q[..., 0] * nb + q[..., 1]) * nb + q[..., 2]]
    fill = local * (cell(a) * g + cell(b) * 255) + (1 - local) * table
    want = np.where(c >= np.float32(0.999), moved, np.clip(c * moved + (1 - c) * fill + 0.5, 0, 255).astype(np.uint8))
    got = fill_blend(moved, source, gray, a, b, conf, k, seen, lut)
    assert np.abs(got.astype(int) - want).max() <= 1  # float rounding of the blend
    trusted = c[..., 0] >= np.float32(0.999)
    assert (got[trusted] == moved[trusted]).all()
    assert (got != moved).any()
    assert (fill_blend(moved, source, gray, a, b, conf, k) != got).any()  # without seen: the local map everywhere
    # along a flow the kernel reads the map where it leads, nearest and clamped: as OpenCV's nearest remap of
    # the map (whole cells and a third, so no rounding ties; some lead out of the map, to its edge)
    flow = np.dstack([rng.integers(-3, 4, conf.shape), rng.integers(-3, 4, conf.shape)]).astype(np.float32) + 0.3
    moved_map = [cv2.remap(x, flow, None, cv2.INTER_NEAREST | cv2.WARP_RELATIVE_MAP, borderMode=cv2.BORDER_REPLICATE)
                 for x in (a, b, seen)]
    along = fill_blend(moved, source, gray, a, b, conf, k, seen, lut, flow)
    assert np.array_equal(along, fill_blend(moved, source, gray, *moved_map[:2], conf, k, moved_map[2], lut))
    assert (along != got).any()
    mine = moved.copy()
    assert fill_blend(mine, source, gray, a, b, conf, k, seen, lut, overwrite=True) is mine and np.array_equal(mine, got)


def test_something_new_is_filled_in_the_palette_not_the_local_colours():
    """A bright object comes in where the keyframe had a dark flat wall: the wall's local colour map would paint
    it the wall's colour (it is flat: only its mean), the keyframe's colours (its colour table, which was a
    palette by grey when this test was written) paint it as the keyframe painted bright things."""
    h, w = 144, 192
    source = np.full((h, w, 3), 40, np.uint8)
    source[:, w // 2:] = 220  # a bright right half
    styled = np.where(source[..., :1] > 128, np.array([230, 220, 0], np.uint8), np.array([0, 0, 200], np.uint8))
    carrier = Carrier()
    key = carrier.keyframe(0, source, styled.astype(np.uint8))
    now = source.copy()
    now[40:100, 20:70] = 220  # something bright came in over the dark wall
    out = carrier.carry(key, now, 1)
    inside = out[55:85, 30:60].reshape(-1, 3).astype(float).mean(axis=0)
    assert np.abs(inside - [230, 220, 0]).mean() < 40, inside  # yellow, as the bright half was painted
    assert np.abs(out[5:30, 5:60].astype(float) - [0, 0, 200]).mean() < 10  # the wall itself stays blue


def test_something_new_is_filled_by_its_colour_not_its_grey():
    """A yellow thing comes in over a dark blue wall. The keyframe had yellow things, and three times as many
    blue ones of the same grey: a palette by grey level paints it mostly blue, the keyframe's colour table
    paints it as the keyframe painted yellow things."""
    h, w = 144, 192
    source = np.empty((h, w, 3), np.uint8)
    source[:, :w // 2] = (40, 42, 170)  # the wall, dark blue (grey 56)
    source[:, w // 2:] = (80, 80, 220)  # light blue (grey 96)
    source[h * 3 // 4:, w // 2:] = (150, 90, 0)  # yellow-brown (grey 98)
    grey = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
    assert abs(int(grey[-1, -1]) - int(grey[0, -1])) <= 2
    styled = np.where(source[..., 2:] > 100, np.array([0, 0, 200], np.uint8), np.array([230, 220, 0], np.uint8))
    carrier = Carrier()
    key = carrier.keyframe(0, source, styled.astype(np.uint8))
    now = source.copy()
    now[40:100, 20:70] = (150, 90, 0)  # the yellow thing over the wall
    out = carrier.carry(key, now, 1)
    inside = out[55:85, 30:60].reshape(-1, 3).astype(float).mean(axis=0)
    assert np.abs(inside - [230, 220, 0]).mean() < 40, inside  # yellow, as the keyframe painted yellow things
    assert np.abs(out[5:30, 5:15].astype(float) - [0, 0, 200]).mean() < 10  # the wall itself stays blue


def test_a_new_source_shows_at_once_painted_then_its_own_keyframes(net):
    """A switch to another camera does not hold the picture for the new source's first keyframe: its first
    frame shows at once, its own shapes in the old keyframe's colours (nothing of the old picture), and its
    own full-size keyframes follow."""
    backend, pack = net
    from engine.video.capture import StillSource

    old, new = _pan(data.astronaut(), 1, 0)[0], _pan(data.coffee(), 1, 0)[0]
    pipe = Pipeline(StillSource(SourceSettings("image", fps=30.0), old), create_backend("onnxruntime", pack=pack),
                    pack, [NullSink()], StyleSettings(style="7", stabilize=True), keyframes="on")
    for _ in range(5):
        last_old = pipe.step()
    pipe.replace_source(StillSource(SourceSettings("image", fps=30.0), new)).close()
    first = pipe.step()
    assert first.trusted == 0.0  # painted: before, the frame waited for the new source's keyframe
    assert _edge_corr(first.stylized, new) > 0.5
    assert _edge_corr(first.stylized, last_old.stylized) < 0.15
    ideal = _render(net, new)
    for _ in range(300):
        r = pipe.step()
        if r.trusted > 0.0:
            break
    pipe.close()
    assert psnr(r.stylized, ideal) > 30.0  # its own keyframe, carried


def test_at_1280x720_the_flow_carries_a_zoom_closer_than_a_coarser_flow():
    """At 1280×720 the flow goes one pyramid level finer than DIS's ultrafast preset (its keyframes are older
    there): a keyframe of a photo, the camera since zoomed in 4 % and turned 1.5°, comes closer to the frame
    than with the preset's level (the keyframe's "render" is its source, so the truth is the frame itself)."""
    from engine.frame.carry import CarrySettings

    photo = cv2.resize(data.astronaut(), (1280, 720), interpolation=cv2.INTER_AREA)
    turn = cv2.getRotationMatrix2D((640, 360), 1.5, 1.04)
    frame = cv2.warpAffine(photo, turn, (1280, 720), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    inner = (slice(60, 660), slice(100, 1180))  # away from the edges, which the zoom pushes out of view

    def carried(settings: CarrySettings) -> float:
        carrier = Carrier(settings)
        out = carrier.carry(carrier.keyframe(0, photo, photo), frame, 1)
        return psnr(out[inner], frame[inner])

    finer, preset = carried(CarrySettings()), carried(CarrySettings(finest_coarse=2))
    assert finer > preset + 0.3, (finer, preset)
