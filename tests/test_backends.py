"""Every registered backend against the PyTorch reference; unavailable ones skip with their reason."""
import numpy as np
import pytest

from engine.backends import available_backends, create_single, known_backends
from engine.errors import BackendUnavailable, InputError
from engine.metrics import psnr
from tests.conftest import run_stock


@pytest.fixture(scope="module")
def availability():
    return available_backends()


@pytest.mark.parametrize("name", ["torch-cpu", "onnxruntime", "openvino", "torch-cuda", "onnxruntime-cuda", "tensorrt"])
def test_backend_matches_original_model(name, pack, photos, stock_session, availability):
    if availability[name] != "ok":
        pytest.skip(f"{name} unavailable here: {availability[name]}")
    fp32 = name in ("torch-cpu", "onnxruntime", "openvino", "onnxruntime-cuda")
    with create_single(name, pack=pack) as backend:
        for spec in ["7", "3:0.5,12:0.5"]:
            w = pack.weights(spec)
            for img in photos.values():
                out = backend.run(img, w)
                ref = run_stock(stock_session, img, w)
                assert out.shape == img.shape and out.dtype == np.uint8
                diff = np.abs(out.astype(int) - ref)
                if fp32:
                    assert diff.max() <= 2, (name, spec)
                else:  # fp16 GPU paths: judged by PSNR (see test_cuda.py), and close on average
                    mse = np.mean(diff.astype(np.float64) ** 2)
                    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) >= 35 and diff.mean() <= 1.5, \
                        (name, spec, diff.max(), diff.mean())


def test_switching_style_is_an_input_not_a_rebuild(pack, photos):
    with create_single("onnxruntime", pack=pack) as backend:
        session = backend.session
        a = backend.run(photos["coffee"], pack.weights("3"))
        b = backend.run(photos["coffee"], pack.weights("12"))
        assert backend.session is session
        assert np.abs(a.astype(int) - b).mean() > 10


def test_auto_picks_a_working_backend(pack, frames_320, int8_stock):
    """At the suite's shared int8 size: where int8 runs, auto loads that build and matches fp32."""
    with create_single("auto", pack=pack) as backend, create_single("onnxruntime", pack=pack) as ref:
        assert backend.name in known_backends()
        out = backend.run(frames_320[0], pack.weights("0"))
        assert out.shape == frames_320[0].shape
        assert psnr(out, ref.run(frames_320[0], pack.weights("0"))) > 30


def test_unknown_backend_lists_known_ones(pack):
    with pytest.raises(InputError, match="onnxruntime"):
        create_single("nope", pack=pack)


def test_unavailable_backend_says_why(pack, availability, monkeypatch):
    """Each reason names what is missing (a library or the hardware), asking builds nothing, and
    creating the backend fails with that same reason."""
    from engine.backends import BACKENDS

    names_missing = {"tensorrt": "TensorRT", "torch-cuda": "GPU", "onnxruntime-cuda": "CUDAExecutionProvider",
                     "torch-cpu-int8": "int8", "torch-cpu-bf16": "bf16"}
    missing = [n for n, s in availability.items() if s != "ok"]
    if not missing:
        pytest.skip("every backend is available here")
    for name in missing:
        assert names_missing[name] in availability[name], (name, availability[name])
        with pytest.raises(BackendUnavailable, match=names_missing[name]):
            create_single(name, pack=pack)
    for cls in BACKENDS.values():  # checking availability constructs no backend
        monkeypatch.setattr(cls, "__init__", lambda self, **kw: pytest.fail(f"{type(self).name} was built"))
    assert available_backends() == availability


def test_bad_frames_and_weights_are_rejected(pack):
    with create_single("torch-cpu", pack=pack) as backend:
        with pytest.raises(InputError, match="uint8"):
            backend.run(np.zeros((32, 32, 3), np.float32), pack.weights("1"))
        with pytest.raises(InputError, match="too small"):
            backend.run(np.zeros((8, 32, 3), np.uint8), pack.weights("1"))
        with pytest.raises(InputError, match="style weights"):
            backend.run(np.zeros((32, 32, 3), np.uint8), np.ones(5, np.float32))


def test_openvino_builds_each_size_once_and_blends_picture_styles(pack, photos, availability):
    """OpenVINO compiles one model per frame size: a second frame of a size reuses it, a new size gets
    its own, and the picture network (101 rows) runs on it as well, equal to ONNX Runtime's."""
    if availability["openvino"] != "ok":
        pytest.skip(f"openvino unavailable here: {availability['openvino']}")
    from engine.model.config import code_vector
    from engine.styles.packs import StylePack
    from engine.styles.user_styles import PICTURE_MANIFEST

    with create_single("openvino", pack=pack) as backend:
        backend.run(photos["coffee"], pack.weights("3"))
        backend.run(photos["coffee"], pack.weights("12"))
        assert len(backend._requests) == 1
        backend.run(photos["chelsea"], pack.weights("3"))
        assert len(backend._requests) == 2
    picture = StylePack.load(PICTURE_MANIFEST)
    code = code_vector(np.random.default_rng(0).standard_normal(100).astype(np.float32))
    with create_single("openvino", pack=picture) as ov, create_single("onnxruntime", pack=picture) as ort:
        a, b = ov.run(photos["astronaut"], code), ort.run(photos["astronaut"], code)
        assert np.abs(a.astype(int) - b).max() <= 2
