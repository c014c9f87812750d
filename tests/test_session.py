"""The live session: one owner of source, backend, pipeline and sinks; typed events; clean stops."""
import socket
import struct
import threading

import numpy as np
import pytest

import engine.live.session
from engine.video.capture import CameraSource, SourceSettings, StillSource
from engine.errors import BackendUnavailable, SourceError
from engine.live.events import BackendSwitched, Failed, SourceBack, SourceGone, Started
from engine.live.pipeline import StyleSettings
from engine.sinks.server import ServeSettings
from engine.live.session import Session, SessionSettings
from engine.sinks.mjpeg import MjpegHub
from tests.waiting import wait_until


class Events(list):
    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def _running(session, frames):
    stop = threading.Event()
    thread = threading.Thread(target=session.run, kwargs={"stop": stop, "on_frame": frames.append}, daemon=True)
    thread.start()
    return stop, thread


def _wait(predicate, timeout=20.0):
    return wait_until(predicate, timeout)


def test_a_lost_source_is_an_event_and_frames_resume(pack, clip, tmp_path):
    import shutil

    device = tmp_path / "video0.mp4"
    shutil.copy(clip, device)
    events, frames = Events(), []
    cam = CameraSource(SourceSettings("camera", size=(64, 48)), str(device), retry_s=0.05)
    session = Session(pack, SessionSettings(backend="onnxruntime", read_timeout=0.3), source=cam,
                      on_event=events.append).open()
    stop, thread = _running(session, frames)
    try:
        assert _wait(lambda: len(frames) >= 3)
        device.rename(tmp_path / "away.mp4")  # unplug
        assert _wait(lambda: events.of(SourceGone))
        assert "not delivering" in events.of(SourceGone)[0].message
        (tmp_path / "away.mp4").rename(device)  # plug back in
        assert _wait(lambda: events.of(SourceBack))
        count = len(frames)
        assert _wait(lambda: len(frames) > count + 3)
    finally:
        stop.set()
        thread.join(10)
        session.close()


def test_backend_swap_mid_stream_keeps_frames_flowing(pack, photos):
    events, frames = Events(), []
    source = StillSource(SourceSettings("image", fps=200), photos["chelsea"])
    session = Session(pack, SessionSettings(backend="onnxruntime", style=StyleSettings("7")), source=source,
                      on_event=events.append).open()
    first_backend = session.pipeline.backend
    stop, thread = _running(session, frames)
    try:
        assert _wait(lambda: len(frames) >= 3)
        session.set_backend("torch-cpu")
        assert _wait(lambda: session.pipeline.backend.name == "torch-cpu")
        count = len(frames)
        assert _wait(lambda: len(frames) >= count + 3)  # still flowing on the new backend
        assert first_backend.backends["stock"].session is None  # the old one was closed
        assert [e.backend for e in events.of(Started)][-1].startswith("torch-cpu")
        # the same style on either backend: the same picture (within fp32 rounding)
        assert np.abs(frames[-1].stylized.astype(int) - frames[0].stylized).max() <= 2
        session.set_backend("tensorrt")  # cannot run here: reported, the running backend stays
        assert _wait(lambda: events.of(Failed))
        assert events.of(Failed)[-1].kind == "backend" and "TensorRT" in events.of(Failed)[-1].message
        count = len(frames)
        assert _wait(lambda: len(frames) >= count + 3) and session.pipeline.backend.name == "torch-cpu"
    finally:
        stop.set()
        thread.join(10)
        session.close()


def test_clean_stop_releases_source_and_sinks_when_the_backend_fails(pack, clip, monkeypatch):
    opened = []
    real_open = engine.live.session.open_source

    def recording_open(settings):
        source = real_open(settings)
        opened.append(source)
        return source
    monkeypatch.setattr(engine.live.session, "open_source", recording_open)
    hub = MjpegHub()
    session = Session(pack, SessionSettings(source=str(clip), backend="tensorrt"), [hub])
    with pytest.raises(BackendUnavailable, match="TensorRT"):
        session.open()
    assert opened and not opened[0].cap.isOpened()  # the file was released
    assert hub.closed  # and the sink closed
    session.close()  # closing after a failed open is harmless


def test_a_missing_source_fails_before_any_backend(pack):
    with pytest.raises(SourceError, match="camera 97"):
        Session(pack, SessionSettings(source="camera:97", backend="onnxruntime")).open()


def test_auto_starts_at_once_and_swaps_in_the_compiled_backend(pack, frames_320, int8_stock, caplog):
    """Live auto with no usable compiled model for its frames starts on ONNX Runtime; the compiled
    path builds aside and takes over. Where int8 runs, the frames are the suite's shared int8 size
    and its cache entry is cut short first: a relaunch that finds its model damaged starts at once
    and rebuilds it aside (one log line), where it used to stall its first frame on the build."""
    import logging

    from engine.backends import auto_choice
    from engine.backends.compiled_cache import CompiledKey
    from engine.backends.export import onnx_path
    from engine.backends.torch_int8 import RECIPE, TorchInt8Backend

    best = auto_choice()
    if best == "onnxruntime":
        pytest.skip("no compiled CPU path here")
    frame = frames_320[0]
    h, w = frame.shape[:2]
    if int8_stock is not None:
        model = CompiledKey.make(pack, RECIPE, h, w).path()
        model.write_bytes(model.read_bytes()[:4096])
    if best == "openvino":  # a first launch: OpenVINO's export not made yet (a relaunch starts on it at once)
        onnx_path(pack, cpu_layout=True).unlink(missing_ok=True)
    events, frames = Events(), []
    source = StillSource(SourceSettings("image", fps=10), frame)  # frames that leave the build a core
    with caplog.at_level(logging.WARNING, logger="engine.backends.compiled_cache"):
        settings = SessionSettings(backend="auto", size=(w, h), style=StyleSettings(stabilize=False))
        session = Session(pack, settings, source=source, on_event=events.append).open()
    assert session.pipeline.backend.name == "onnxruntime"
    if int8_stock is not None:
        assert len([r for r in caplog.records if "unusable" in r.getMessage()]) == 1
    stop, thread = _running(session, frames)
    try:
        assert _wait(lambda: events.of(BackendSwitched), timeout=300)
        assert session.pipeline.backend.name == best
        count = len(frames)
        assert _wait(lambda: len(frames) >= count + 3)
        assert frames[-1].backend.startswith(best)
    finally:
        stop.set()
        thread.join(10)
        session.close()
    if int8_stock is not None:
        assert TorchInt8Backend.ready(pack, h, w)  # rebuilt, for the tests after this one


def test_a_relaunch_on_the_fp32_path_starts_on_openvino(pack, frames_320, monkeypatch):
    """An AVX2-only CPU (STYLECAM_CPU=avx2): once OpenVINO's export is cached, live auto starts on it at once
    (a size compiles aside in a fraction of a second, ONNX Runtime standing in), not on ONNX Runtime with
    OpenVINO's warm-up thread starved beside two busy cores (2.7 s of second-old keyframes on Zen 4)."""
    from engine.backends import BACKENDS, auto_choice
    from engine.backends.export import cached_onnx

    if BACKENDS["openvino"].unavailable_reason():
        pytest.skip(BACKENDS["openvino"].unavailable_reason())
    monkeypatch.setenv("STYLECAM_CPU", "avx2")
    assert auto_choice() == "openvino"
    cached_onnx(pack, cpu_layout=True)  # what the first launch left
    frame = frames_320[0]
    h, w = frame.shape[:2]
    source = StillSource(SourceSettings("image", fps=30), frame)
    settings = SessionSettings(backend="auto", size=(w, h), style=StyleSettings(stabilize=False))
    with Session(pack, settings, source=source).open() as session:
        assert session.pipeline.backend.name == "openvino" and session.warmup is None
        assert _wait(lambda: session.pipeline.step().backend.startswith("openvino"))


def test_serve_stays_quiet_when_clients_disconnect(pack, photos, capfd):
    """Clients that hang up mid-stream, mid-request or with a reset are normal: no traceback."""
    source = StillSource(SourceSettings("image", fps=30), photos["coffee"])
    session = Session(pack, SessionSettings(backend="onnxruntime", serve=ServeSettings(port=0)), source=source).open()
    server = session.serve()
    frames = []
    stop, thread = _running(session, frames)
    host, port = server.url.split("//")[1].rstrip("/").split(":")
    try:
        assert _wait(lambda: len(frames) >= 2)
        for i in range(24):
            s = socket.create_connection((host, int(port)), timeout=5)
            if i % 3 == 0:
                s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                s.recv(2000)  # read a bit of the stream, then vanish
            elif i % 3 == 1:
                s.sendall(b"GET /frame.jp")  # half a request
            else:
                s.sendall(f"GET /frame.jpg HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not FIN
            s.close()
        assert _wait(lambda: server.clients == 0)  # every handler has seen its client go
    finally:
        stop.set()
        thread.join(10)
        session.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
