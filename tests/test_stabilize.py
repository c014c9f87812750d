"""Anti-flicker on the demo clip (a pan over photos): warp error must drop by half; a scene cut must reset it.
Webcam-like footage (noise, occlusion, exposure) is in test_steady_footage.py."""
import cv2
import numpy as np
import pytest

from engine.backends import create_backend
from engine.video.capture import SourceSettings, open_source
from lab.evaluate import WarpError
from engine.live.pipeline import Pipeline, StyleSettings
from engine.frame.stabilize import Stabilizer, _refine


def _clip(pack, size, n=30):
    """n frames of the demo clip (a pan/zoom over package photos), stylized."""
    with open_source(SourceSettings("demo", size=size, paced=False, loop=False)) as src:
        frames = [src.read().image for _ in range(n)]
    with create_backend("onnxruntime", pack=pack) as b:
        outs = [b.run(f, pack.weights("19")) for f in frames]
    return frames, outs


@pytest.fixture(scope="module")
def moving(pack):
    return _clip(pack, (320, 240))


@pytest.mark.parametrize("size", [(320, 240), (640, 480)])
def test_stabilization_halves_the_warp_error(size, pack, moving):
    frames, outs = moving if size == (320, 240) else _clip(pack, size, 20)
    raw, steady, stab = WarpError(), WarpError(), Stabilizer()
    for f, o in zip(frames, outs):
        raw.add(f, o)
        steady.add(f, stab(f, o))
    assert steady.value <= 0.5 * raw.value, (raw.value, steady.value)


def test_scene_cut_resets_without_ghosts(moving, photos):
    frames, outs = moving
    stab = Stabilizer()
    for f, o in zip(frames[:5], outs[:5]):
        stab(f, o)
    other = np.ascontiguousarray(np.flipud(255 - frames[5]))  # a completely different picture
    stylized_other = np.ascontiguousarray(np.flipud(outs[5]))
    out = stab(other, stylized_other)
    assert stab.cuts == 1
    assert np.array_equal(out, stylized_other)  # nothing of the old scene leaks in


def test_pipeline_stabilize_setting(pack):
    src = open_source(SourceSettings("synthetic", size=(160, 120), paced=False))
    pipe = Pipeline(src, create_backend("onnxruntime", pack=pack), pack, [], StyleSettings("19", stabilize=True))
    steady = [pipe.step().stylized for _ in range(4)]
    pipe.update(stabilize=False)
    plain = pipe.step()
    assert pipe.stabilizer._prev_out is None  # off means reset: no stale frame when switched back on
    pipe.close()
    # the setting changes the output: the stabilized frame is not what the network alone gives
    raw_pipe = Pipeline(open_source(SourceSettings("synthetic", size=(160, 120), paced=False)),
                        create_backend("onnxruntime", pack=pack), pack, [], StyleSettings("19"))
    raw = [raw_pipe.step().stylized for _ in range(5)]
    raw_pipe.close()
    assert steady[-1].shape == (120, 160, 3)
    assert np.abs(steady[-1].astype(int) - raw[3]).mean() > 0.5  # blended with the warped previous frame
    assert np.array_equal(plain.stylized, raw[4])  # off: exactly the plain output


def test_warping_ahead_gives_the_same_frames(moving):
    """``warp_ahead`` (the previous output moved before the new one exists) changes no pixel; a frame
    prepared again without its output does not reuse a stale warp."""
    frames, outs = moving
    plain, ahead = Stabilizer(), Stabilizer()
    for i, (f, o) in enumerate(zip(frames[:8], outs[:8])):
        ahead.prepare(f)
        ahead.warp_ahead()
        if i == 4:  # prepared again: the warp made above is for the flow before, not this one
            ahead.prepare(f)
            plain.prepare(f)
            plain.prepare(f)
        assert np.array_equal(plain(f, o), ahead(f, o)), i


def test_flow_beside_a_gpu_network_gives_the_same_frames(pack):
    """Beside a network that leaves the cores free, the stabilizer's flow runs on a side thread while
    the network runs: the frames are exactly the sequential ones. (No GPU exists here: ONNX Runtime on
    the CPU stands in, marked as not using the cores.)"""
    from engine.backends.ort import OrtCpuBackend

    class OffCpu(OrtCpuBackend):
        on_cpu = False

    def frames(backend, overlap):
        src = open_source(SourceSettings("footage", size=(160, 120), paced=False))
        with Pipeline(src, backend, pack, [], StyleSettings("7", stabilize=True)) as pipe:
            assert pipe.overlap_prepare == (backend.on_cpu is False)
            pipe.overlap_prepare = overlap
            return [pipe.step().stylized for _ in range(6)]

    overlapped = frames(OffCpu(pack=pack), True)
    sequential = frames(create_backend("onnxruntime", pack=pack), False)
    assert all(np.array_equal(a, b) for a, b in zip(overlapped, sequential))
    assert np.abs(overlapped[-1].astype(int) - overlapped[-2]).mean() > 0  # frames flow


def test_flow_beside_the_upscale_or_cpu_network_gives_the_same_frames(pack):
    """On the CPU, with ONNX Runtime (its threads sleep after a run), the flow runs on a side thread beside
    the upscale when the frame is upscaled, and beside the network at full scale: the same frames as in
    sequence either way."""
    def frames(overlap, scale):
        src = open_source(SourceSettings("footage", size=(160, 120), paced=False))
        settings = StyleSettings("7", stabilize=True, render_scale=scale)
        with Pipeline(src, create_backend("onnxruntime", pack=pack), pack, [], settings) as pipe:
            assert pipe.overlap_cpu and not pipe.overlap_prepare
            pipe.overlap_cpu = overlap
            out = [pipe.step().stylized for _ in range(6)]
            return out, pipe._side is not None

    for scale in (0.5, 1.0):
        (overlapped, aside), (sequential, in_line) = frames(True, scale), frames(False, scale)
        assert aside and not in_line
        assert all(np.array_equal(a, b) for a, b in zip(overlapped, sequential))


@pytest.mark.parametrize("mode", ["person", "background"])
def test_mask_keeps_the_other_layer_untouched(mode, pack, photos):
    """astronaut: a person in front of a background. Where the mask says 'not this layer', the output
    must be the original pixels exactly; where it fully is, the stylized ones."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT (ai-edge-litert) is not installed")
    from engine.video.capture import StillSource
    from engine.frame.segment import PersonSegmenter

    img = np.ascontiguousarray(photos["astronaut"])
    person = PersonSegmenter().mask(img)
    assert (person == 0).mean() > 0.05 and (person == 1).mean() > 0.05  # both layers present
    src = StillSource(SourceSettings("image", paced=False), img)
    pipe = Pipeline(src, create_backend("onnxruntime", pack=pack), pack, [], StyleSettings("19", mask=mode))
    out = pipe.step().stylized
    pipe.update(mask="none")
    full = pipe.step().stylized
    pipe.close()
    keep, styled = (person == 0, person == 1) if mode == "person" else (person == 1, person == 0)
    assert np.array_equal(out[keep], img[keep])
    assert np.array_equal(out[styled], full[styled])


def test_bad_mask_is_refused(pack, photos):
    from engine.video.capture import StillSource
    from engine.errors import InputError

    pipe = Pipeline(StillSource(SourceSettings("image", paced=False), photos["coffee"]),
                    create_backend("onnxruntime", pack=pack), pack, [])
    with pytest.raises(InputError, match="--mask"):
        pipe.update(mask="cat")
    pipe.close()


def test_blend_by_rects_matches_the_whole_frame_blend():
    """_blend warps only inside the rects of what moves (grown by one analysis pixel, as prepare does)
    and takes the previous frame as it is elsewhere, then blends pixel by pixel with the weight upsampled
    by repetition: that is the whole-frame bilinear warp (the flow interpolated on the frame's own grid)
    and OpenCV's float blendLinear, within one level (the kernel weighs in 1/256 steps)."""
    import cv2

    from engine.frame.stabilize import _active_rects

    rng = np.random.default_rng(0)
    h, w, k = 480, 640, 4
    smooth = lambda: cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)  # noqa: E731
    prev, cur = smooth(), smooth()
    sh, sw = h // k, w // k
    active = np.zeros((sh, sw), np.uint8)
    active[30:70, 20:60] = 255  # a person
    active[5:9, 140:150] = 255  # a passer-by far off
    active[100:120, 0:12] = 255  # someone at the frame's corner
    flow = np.zeros((sh, sw, 2), np.float32)
    flow[active > 0] = rng.uniform(-3, 3, (int((active > 0).sum()), 2))
    weight = rng.uniform(0.5, 0.93, (sh, sw)).astype(np.float32)  # trust varies everywhere, moving or not
    rects = _active_rects(cv2.dilate(active, np.ones((3, 3), np.uint8)))
    covered = np.zeros_like(active)
    for x, y, rw, rh in rects:
        covered[y:y + rh, x:x + rw] = 1
    assert covered[active > 0].all() and covered.mean() < 0.5  # every moving pixel, far from all of them
    out = Stabilizer()._blend(prev, cur, flow, weight, rects)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    full_map = cv2.resize(flow * k, (w, h), interpolation=cv2.INTER_LINEAR) + np.dstack([gx, gy])
    warped = cv2.remap(prev, full_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wt = cv2.resize(weight, (w, h), interpolation=cv2.INTER_NEAREST)
    ref = cv2.blendLinear(warped, cur, wt, 1 - wt)
    assert np.abs(out.astype(int) - ref).max() <= 1
    # and the whole frame in one pass (rects None) is the same frame
    whole = Stabilizer()._blend(prev, cur, flow, weight, None)
    assert np.abs(whole.astype(int) - ref).max() <= 1


@pytest.mark.parametrize("size", [(482, 854), (241, 427)])
def test_warp_reaches_the_last_pixel_of_any_frame_size(size, photos):
    """At 854×482 the analysis grid (1/4) covers 852×480 pixels: the last columns and rows were left
    unwritten (garbage in a whole-frame pass). A uniform flow must move every pixel, up to the last,
    as a plain shift does: over the whole frame, and in a rect at the grid's far corner."""
    import cv2

    h, w = size
    frame = np.ascontiguousarray(cv2.resize(photos["astronaut"], (w, h)))
    stab = Stabilizer()
    k = stab.settings.analysis(h)[0]
    assert w % k and h % k
    flow = np.full((h // k, w // k, 2), 1.5 / k, np.float32)  # 1.5 frame pixels right and down
    shifted = cv2.warpAffine(frame, np.float32([[1, 0, 1.5], [0, 1, 1.5]]), (w, h),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    whole = stab._warp(frame, flow, None)
    assert np.abs(whole.astype(int) - shifted).max() <= 1
    corner = stab._warp(frame, flow, [(w // k - 5, h // k - 3, 5, 3)])
    top, left = k * (h // k - 3), k * (w // k - 5)  # the rect in frame pixels, to the frame's far corner
    assert np.abs(corner[top:, left:].astype(int) - shifted[top:, left:]).max() <= 1
    assert np.array_equal(corner[:top], frame[:top])  # and nothing outside the rect moved


@pytest.mark.parametrize("active_share", [0.1, 1.0])
def test_workers_give_the_same_frame_as_one(active_share, moving):
    """The warp and blend split over workers (rects, or bands of the whole frame) write disjoint
    regions: the output is byte for byte what one worker gives, on rects and on the whole frame."""
    from engine.frame.stabilize import StabilizerSettings

    frames, outs = moving
    if active_share < 1.0:  # a still scene with two moving corners: a few rects
        frames = [frames[0].copy() for _ in frames]
        for i, f in enumerate(frames):
            f[:24, :32] = frames[0][i:i + 24, i:i + 32]
            f[-24:, -32:] = frames[0][-24 - i:-i or None, -32 - i:-i or None]
    results = []
    for threads in (1, 3):
        stab, got = Stabilizer(StabilizerSettings(threads=threads)), []
        for f, o in zip(frames[:8], outs[:8]):
            got.append(stab(f, o))
        results.append(got)
    for a, b in zip(*results):
        assert np.array_equal(a, b)
    assert any(not np.array_equal(a, o) for a, o in zip(results[0][1:], outs[1:8]))  # it did blend


@pytest.mark.parametrize("size", [(30, 42), (480, 640)])
def test_weighted_blend_matches_opencv(size):
    """The numba kernel against cv2.blendLinear with the weight upsampled by repetition (the frame's
    last rows and columns past k·(h//k) take the last weight): within one level, in 1/256 steps."""
    import cv2

    from engine.frame.weighted_blend import blend_rows

    rng = np.random.default_rng(1)
    h, w, k = *size, 4
    a, b = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))
    weight = rng.uniform(0, 1, (h // k, w // k)).astype(np.float32)
    out = np.zeros_like(a)
    blend_rows(a, b, weight, k, out, (0, h // 2))
    blend_rows(a, b, weight, k, out, (h // 2, h))  # in two bands, as the workers do
    full = np.pad(np.repeat(np.repeat(weight, k, 0), k, 1), ((0, h % k), (0, w % k)), mode="edge")
    ref = cv2.blendLinear(a, b, full, 1 - full)
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_flow_refinement_moves_toward_the_true_motion_and_leaves_flat_areas():
    from skimage import data

    prev = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (160, 120), interpolation=cv2.INTER_AREA)
    true = np.float32([1.3, -0.7])  # each pixel of the new frame was here in the previous one
    gray = cv2.warpAffine(prev, np.float32([[1, 0, true[0]], [0, 1, true[1]]]), (160, 120),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    coarse = np.zeros((120, 160, 2), np.float32) + np.float32([0.9, -0.3])  # off by 0.57, as DIS's grid is
    inner = (slice(8, -8), slice(8, -8))
    before = np.median(np.linalg.norm(coarse - true, axis=2)[inner])
    after = np.median(np.linalg.norm(_refine(coarse, gray, prev, 5) - true, axis=2)[inner])
    assert after < 0.7 * before, (before, after)  # measured 0.57 → 0.35
    flat = np.full((120, 160), 128, np.uint8)  # nothing to measure motion on: DIS's flow is kept
    np.testing.assert_array_equal(_refine(coarse, flat, flat, 5), coarse)
