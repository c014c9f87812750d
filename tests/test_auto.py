"""`auto` moves on when a backend fails to start with any error, not only BackendUnavailable, and logs
why; backends that never ran on real hardware come after the measured ones and doctor says so."""
import logging

import numpy as np
import pytest

from engine.backends import registry
from engine.backends.base import Backend
from engine.backends.registry import BACKENDS, create_single
from stylecam.cli import main
from engine.errors import BackendUnavailable


class WrongApi(Backend):
    """A backend whose library changed under it: its constructor raises what a real API mismatch raises."""

    name = "wrong-api"

    def __init__(self, *, pack, options=None):
        raise AttributeError("'Builder' object has no attribute 'build_engine'")

    def preprocess(self, frame):
        return frame

    def infer(self, x, style_weights):
        return x

    def postprocess(self, y, height, width):
        return y


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAM_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "cache"


def test_auto_moves_on_past_a_backend_that_raises_something_else(pack, photos, monkeypatch, caplog):
    monkeypatch.setitem(BACKENDS, "wrong-api", WrongApi)
    monkeypatch.setattr(registry, "AUTO_ORDER", ["wrong-api", "onnxruntime"])
    with caplog.at_level(logging.INFO, logger="engine.backends.registry"):
        backend = create_single("auto", pack=pack)
    try:
        assert backend.name == "onnxruntime"
        out = backend.run(photos["coffee"], pack.weights("7"))
        assert out.shape == photos["coffee"].shape and np.abs(out.astype(int) - photos["coffee"]).mean() > 10
    finally:
        backend.close()
    said = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in said] == ["auto: wrong-api failed to start (AttributeError: 'Builder' object "
                                              "has no attribute 'build_engine'); trying the next backend"]


def test_auto_moves_on_past_a_real_backend_whose_model_is_corrupt(pack, own_cache, monkeypatch, caplog):
    """OpenVINO on a damaged ONNX export raises ModelError from its constructor: auto takes the next."""
    from engine.backends.export import cached_onnx

    if BACKENDS["openvino"].unavailable_reason():
        pytest.skip(BACKENDS["openvino"].unavailable_reason())
    path = cached_onnx(pack, cpu_layout=True)
    path.write_bytes(b"not a model" * 100)
    monkeypatch.setattr(registry, "AUTO_ORDER", ["openvino", "torch-cpu"])
    with caplog.at_level(logging.WARNING, logger="engine.backends.registry"):
        with create_single("auto", pack=pack) as backend:
            assert backend.name == "torch-cpu"
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith("auto: openvino failed to start (ModelError: OpenVINO cannot read") and "next" in said


def test_when_every_backend_fails_one_error_names_each_reason(pack, monkeypatch):
    monkeypatch.setitem(BACKENDS, "wrong-api", WrongApi)
    monkeypatch.setattr(registry, "AUTO_ORDER", ["wrong-api", "tensorrt"])
    with pytest.raises(BackendUnavailable) as err:
        create_single("auto", pack=pack)
    text = str(err.value)
    assert text.startswith("no backend can run here — wrong-api: AttributeError: 'Builder'")
    assert "; tensorrt: " in text


def test_never_run_backends_follow_the_measured_ones_and_doctor_says_so(capsys):
    order = registry.AUTO_ORDER
    assert set(registry.NEVER_RAN) == {"tensorrt", "onnxruntime-cuda"}
    measured_gpu = [n for n in order if not BACKENDS[n].on_cpu and BACKENDS[n].ran_on_hardware]
    assert measured_gpu and all(order.index(n) > order.index(m) for n in registry.NEVER_RAN for m in measured_gpu)
    assert main(["doctor"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert all("never run on real hardware" in lines[n] for n in registry.NEVER_RAN)
    assert not any("never run" in lines[n] for n in BACKENDS if n not in registry.NEVER_RAN)
