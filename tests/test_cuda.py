"""GPU paths. Marked `cuda`: they run on a machine with an NVIDIA GPU (scripts/gpu_check.sh) and skip
elsewhere with the reason; the CPU-reachable parts (frame I/O, profiles, cache keys) run everywhere."""
import importlib.util

import numpy as np
import pytest
import torch

from engine.backends import BackendOptions, create_single
from engine.backends.torch_frames import TorchFrameIO
from engine.backends.trt_plan import EngineKey, engine_path, profile_for, timing_cache_path
from engine.frame.frames import from_output, to_input
from engine.metrics import psnr

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch")
has_trt = importlib.util.find_spec("tensorrt") is not None




def test_torch_frame_io_matches_numpy_path(photos):
    """The GPU upload/download code, run on the CPU: same padding, scaling and rounding as frames.py."""
    io = TorchFrameIO("cpu", 4)
    for img in photos.values():
        x = io.upload(img)
        assert np.abs(x.numpy() - to_input(img, 4)).max() < 1e-6
        y = np.random.default_rng(0).random(x.shape, dtype=np.float32)
        h, w = img.shape[:2]
        assert np.abs(io.download(torch.from_numpy(y), h, w).astype(int) - from_output(y, h, w)).max() <= 1


def test_shape_profiles():
    p = profile_for(1920, 1080, 4)
    assert p.opt == (1, 3, 1080, 1920) and p.max == p.opt and p.min == (1, 3, 64, 64)
    assert p.covers(720, 1280) and not p.covers(2160, 3840)
    odd = profile_for(641, 481, 4, max_size=(1280, 720))
    assert odd.opt == (1, 3, 484, 644) and odd.max == (1, 3, 720, 1280)
    assert all(s[2] % 4 == 0 and s[3] % 4 == 0 for s in (odd.min, odd.opt, odd.max))


def test_engine_cache_key_changes_with_everything_that_matters(tmp_path):
    base = dict(gpu="NVIDIA H100 80GB HBM3", trt_version="10.9.0", model_sha256="ab" * 32, precision="fp16",
                profile=profile_for(1920, 1080, 4))
    key = EngineKey(**base)
    assert EngineKey(**base).filename() == key.filename()  # stable
    for field, other in [("gpu", "NVIDIA H200"), ("trt_version", "10.10.0"), ("model_sha256", "cd" * 32),
                         ("precision", "fp32"), ("profile", profile_for(1280, 720, 4))]:
        assert EngineKey(**{**base, field: other}).filename() != key.filename(), field
    assert engine_path(key, tmp_path).parent == tmp_path
    assert "1920x1080" in key.filename() and key.filename().endswith(".engine")
    assert timing_cache_path("NVIDIA H100 80GB HBM3", "10.9.0", tmp_path).name == \
        "timing-nvidia-h100-80gb-hbm3-trt10.9.0.cache"


@pytest.mark.cuda
@cuda
def test_fp16_cuda_matches_fp32_reference(pack, photos):
    ref = create_single("torch-cpu", pack=pack)
    with create_single("torch-cuda", pack=pack) as gpu:
        for spec in ["3", "15", "17", "19", "3:0.5,12:0.5"]:
            for img in photos.values():
                assert psnr(gpu.run(img, pack.weights(spec)), ref.run(img, pack.weights(spec))) >= 35, spec


@pytest.mark.cuda
@cuda
def test_cuda_graphs_follow_style_switches(pack, photos):
    eager = create_single("torch-cuda", pack=pack, options=BackendOptions(cuda_graphs=False))
    graphs = create_single("torch-cuda", pack=pack, options=BackendOptions(cuda_graphs=True))
    img = photos["coffee"]
    for spec in ["3", "12", "3", "0:0.2,25:0.8"]:  # the captured graph must see each new weight vector
        a, b = eager.run(img, pack.weights(spec)), graphs.run(img, pack.weights(spec))
        assert np.abs(a.astype(int) - b).max() <= 1, spec
    assert len(graphs._graphs) == 1
    graphs.run(photos["chelsea"], pack.weights("3"))
    assert len(graphs._graphs) == 2  # one graph per resolution


@pytest.mark.cuda
@pytest.mark.skipif(not has_trt, reason="TensorRT is not installed (it cannot be installed in this workplace)")
def test_tensorrt_engine_is_cached_and_styles_switch_without_rebuild(pack, photos):
    from engine.backends.tensorrt import TensorRTBackend

    opts = BackendOptions(max_size=(256, 256))
    first = TensorRTBackend(pack=pack, options=opts)
    ref = create_single("torch-cpu", pack=pack)
    engine = first.engine
    for spec in ["3", "19"]:
        out = first.run(photos["coffee"], pack.weights(spec))
        assert psnr(out, ref.run(photos["coffee"], pack.weights(spec))) >= 35
        assert first.engine is engine
    second = TensorRTBackend(pack=pack, options=opts)  # from the engine cache, no rebuild
    assert second.engine_file == first.engine_file and second.engine_file.is_file() and not second.built
    assert np.array_equal(second.run(photos["coffee"], pack.weights("3")),
                          first.run(photos["coffee"], pack.weights("3")))


@pytest.fixture(scope="module")
def picture_pack():
    from engine.styles.packs import StylePack
    from engine.styles.user_styles import PICTURE_MANIFEST

    return StylePack.load(PICTURE_MANIFEST)


@pytest.mark.cuda
@cuda
def test_picture_network_on_cuda_with_graphs(picture_pack, photos):
    """The picture network through the same fp16 + CUDA-graph path; codes switch without a new graph."""
    vectors = picture_pack.calibration_vectors()[:4]
    ref = create_single("torch-cpu", pack=picture_pack)
    with create_single("torch-cuda", pack=picture_pack) as gpu:
        for v in vectors:
            assert psnr(gpu.run(photos["coffee"], v), ref.run(photos["coffee"], v)) >= 35
        assert len(gpu._graphs) <= 1


def test_picture_network_gets_its_own_tensorrt_engine(picture_pack, pack):
    """Runs anywhere: the cache key a start looks up (the backend's own function, on the exported models)
    differs between the networks and with the precision, and is stable for the same inputs."""
    from engine.backends.tensorrt import engine_key

    opts = BackendOptions(max_size=(1280, 720))
    keys = {engine_key(p, opts, "NVIDIA H200", "10.9.0").filename() for p in (picture_pack, pack)}
    assert len(keys) == 2
    assert engine_key(pack, opts, "NVIDIA H200", "10.9.0").filename() in keys
    assert engine_key(pack, BackendOptions(max_size=(1280, 720), precision="fp32"), "NVIDIA H200",
                      "10.9.0").filename() not in keys


def test_a_frame_outside_the_tensorrt_profile_is_an_input_error_with_the_range():
    from engine.errors import InputError

    prof = profile_for(640, 480, 4)
    prof.check(480, 640)
    with pytest.raises(InputError, match=r"outside .*64x64 to 640x480"):
        prof.check(720, 1280)
