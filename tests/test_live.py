"""The live path as a user runs it: compiles never run in the live process and persist across launches,
the stream's encoder sleeps with nobody watching, a hidden app makes no frames, and the soak (the test
of record for the live path, `stylecam soak`) reports every second."""
import json
import logging
import os
import threading
import time

import cv2
import pytest

from engine.backends.base import BackendOptions
from engine.backends.build_worker import BuildWorker
from engine.video.capture import SourceSettings, StillSource
from stylecam.cli import main
from engine.metrics import psnr
from engine.live.session import Session, SessionSettings
from engine.sinks.mjpeg import MjpegHub
from tests.waiting import wait_until


def _thread_cpu_s(thread: threading.Thread) -> float:
    """User + system seconds of one thread (Linux /proc)."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="thread CPU times need Linux /proc")
def test_the_stream_encoder_sleeps_with_no_watcher(photos):
    """Frames flow in at 100 fps for a second with no client: the encoder thread must not spin (before
    the fix it woke on every wait and burned a core: 'wait_newer' returned at once for ever)."""
    hub = MjpegHub()
    frame = photos["coffee"]
    cpu0 = _thread_cpu_s(hub._thread)
    for _ in range(100):  # pacing the fake source is the point here
        hub.write(frame)
        time.sleep(0.01)
    assert hub.wakeups == 0 and hub.encoded == 0
    assert _thread_cpu_s(hub._thread) - cpu0 < 0.05
    assert not hub.wants_frames()
    with hub.watch() as watcher:  # a client: it encodes again
        assert hub.wants_frames()
        hub.write(frame)
        assert watcher.next(timeout=5)[:2] == b"\xff\xd8"
    hub.close()


def test_the_frame_loop_makes_no_frame_while_idle(pack, photos):
    """While ``idle()`` holds, the loop reads no frame and runs no network: the source's frame count
    stands still however often the loop turns."""
    from engine.backends import create_backend
    from engine.live.pipeline import Pipeline

    source = StillSource(SourceSettings("image", paced=False), photos["coffee"])
    pipe = Pipeline(source, create_backend("onnxruntime", pack=pack), pack)
    turns = []

    def idle() -> bool:
        turns.append(source._index)  # frames read so far, at each turn
        return len(turns) <= 20
    assert pipe.run(1, idle=idle) == 1
    assert turns[:20] == [0] * 20 and source._index == 1
    pipe.close()


def test_a_hidden_app_idles_until_an_output_reads(pack, photos):
    source = StillSource(SourceSettings("image", fps=60), photos["coffee"])
    settings = SessionSettings(backend="onnxruntime", idle_unwatched=True)
    session = Session(pack, settings, source=source).open()
    stop = threading.Event()
    thread = threading.Thread(target=session.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: session.latest.latest()[0] >= 3)
        assert not session.idle()
        session.set_viewing(False)  # minimized, and nothing reads: idle
        assert session.idle() and session.stats()["idle"] is True
        hub = session.serve().hub
        with hub.watch():  # a stream client reads: frames flow again
            assert not session.idle()
            seq = session.latest.latest()[0]
            assert wait_until(lambda: session.latest.latest()[0] > seq + 2)
        assert session.idle()
        session.set_viewing(True)
        seq = session.latest.latest()[0]
        assert wait_until(lambda: session.latest.latest()[0] > seq + 2)
        stats = session.stats()
        assert stats["backend"].startswith("onnxruntime") and stats["network"] == "stock"
        assert stats["latency_p95_ms"] >= stats["latency_p50_ms"] > 0 and stats["render_scale"] == 1.0
    finally:
        stop.set()
        thread.join(10)
        session.close()


def test_the_build_worker_runs_in_another_process_and_closes():
    worker = BuildWorker()
    try:
        assert worker.submit("pid", os.getpid).result(timeout=120) != os.getpid()
        assert worker.builds == 1 and not worker.busy()
        assert worker.submit("pid", os.getpid).result(timeout=60) != os.getpid()
    finally:
        worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit("again", os.getpid)


def test_the_build_asked_for_last_goes_next():
    """While one build runs, the one asked for last starts next, and asking again for a waiting one
    moves it to the front: the build the frames need now never waits behind one for a style the user
    has left. Closing cancels what waits."""
    worker = BuildWorker()
    try:
        worker.submit("first", time.sleep, 1.0)  # holds the process (after its start-up)
        left, now = worker.submit("left", time.monotonic), worker.submit("now", time.monotonic)
        assert now.result(timeout=120) < left.result(timeout=60)
        worker.submit("hold", time.sleep, 1.0)
        a, b = worker.submit("a", time.monotonic), worker.submit("b", time.monotonic)
        assert worker.submit("a", time.monotonic) is a  # the same build, now at the front
        assert a.result(timeout=60) < b.result(timeout=60)
        assert worker.builds == 6 and worker.failures == 0
        worker.submit("long", time.sleep, 60)
        waiting = worker.submit("waiting", os.getpid)
    finally:
        worker.close()
    assert waiting.cancelled() and not worker.busy()


def test_int8_builds_aside_persists_and_a_damaged_entry_is_dropped(pack, frames_320, int8_stock, caplog):
    """The int8 model is compiled in the build process, never here (the suite's shared build,
    conftest.int8_stock); a second backend (a relaunch) loads it from the cache without a build; a
    damaged cache file — cut short, or the right length but not a model — is dropped with one log line
    (the rebuild a relaunch then makes aside: test_session's auto test)."""
    from engine.backends import create_backend
    from engine.backends.torch_int8 import TorchInt8Backend
    from engine.styles.user_styles import load_catalog

    if int8_stock is None:
        pytest.skip(f"int8 path not runnable here: {TorchInt8Backend.unavailable_reason()}")
    h, w = int8_stock["size"]
    frame, weights = frames_320[1], pack.weights("7")
    if int8_stock["build_pid"] is not None:
        assert int8_stock["build_pid"] != os.getpid()  # built in the build process
    with create_backend("onnxruntime", pack=pack) as ort:
        reference = ort.run(frame, weights)
    worker = BuildWorker()
    try:
        assert TorchInt8Backend.ready(pack, h, w)
        assert TorchInt8Backend.prebuild(pack, h, w, worker) is None  # cached: nothing to build
        with TorchInt8Backend(pack=pack, options=BackendOptions(builder=worker)) as relaunch:
            assert psnr(relaunch.run(frame, weights), reference) > 30.0
            key = relaunch.key(h, w)
        assert worker.builds == 0  # loaded, not built
    finally:
        worker.close()
    model, record = key.path(), key.path(".json")
    good = model.read_bytes(), record.read_text()
    try:
        with caplog.at_level(logging.WARNING, logger="engine.backends.compiled_cache"):
            model.write_bytes(good[0][: len(good[0]) // 2])  # a copy cut short: found without loading it
            assert not TorchInt8Backend.ready(pack, h, w) and not model.exists() and not record.exists()
            model.write_bytes(b"\0" * len(good[0]))  # the right length, not a model: found by loading it
            record.write_text(good[1])
            with TorchInt8Backend(pack=pack) as damaged:
                assert damaged.ready_for(h, w) and damaged._load(key) is None
            assert not model.exists()
        assert len([r for r in caplog.records if "unusable" in r.getMessage()]) == 2
    finally:
        model.write_bytes(good[0])  # the shared build, as it was
        record.write_text(good[1])
    # a relaunch at that size starts on the compiled backend at once: no stand-in, nothing built
    source = StillSource(SourceSettings("image", fps=30), frame)
    with Session(load_catalog(), SessionSettings(backend="auto", size=(w, h)), source=source).open() as session:
        assert session.pipeline.backend.name == "torch-cpu-int8" and session.warmup is None
        assert session.pipeline.step().backend.startswith("torch-cpu-int8")
        assert session.builder.builds == 0


def test_soak_reports_every_second_with_json_and_plot(clip, tmp_path, capsys):
    """A short soak on a real clip through the real session, stream server (a real client half the
    time) and virtual-camera sink (a stand-in device: no v4l2loopback here); then idle."""
    out = tmp_path / "soak.json"
    assert main(["soak", "--source", str(clip), "--size", "160x120", "--backend", "onnxruntime",
                 "--duration", "6", "--switch-every", "2", "--style", "3", "--style", "12", "--style",
                 "3:0.5,12:0.5", "--idle", "4", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["seconds"]
    assert len(rows) == 10 and [r["t"] for r in rows] == list(range(1, 11))
    live = [r for r in rows if not r["idle"]]
    assert all(r["fps"] > 0 and r["render_scale"] and r["backend"].startswith("onnxruntime") for r in live)
    assert all(r["latency_p95_ms"] >= r["latency_p50_ms"] > 0 for r in live)
    assert [s["style"] for s in report["switches"]] == ["3", "12", "3:0.5,12:0.5"]
    assert any(r["client"] for r in live) and any(not r["client"] for r in live)
    assert rows[-1]["client_frames"] > 0  # the real HTTP client got JPEGs
    assert report["summary"]["failures"] == 0 and report["summary"]["failed_builds"] == 0
    assert report["summary"]["fps_idle"] == 0  # nobody watching: no frames
    plot = cv2.imread(str(out.with_suffix(".png")))
    assert plot is not None and plot.shape[1] == 1200
    assert '"scale_share"' in capsys.readouterr().out


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process states need Linux /proc")
def test_a_build_process_ends_with_the_live_process(tmp_path):
    """An app that is killed mid-compile must not leave the build process running."""
    import subprocess
    import sys

    script = tmp_path / "dies.py"
    script.write_text(
        "import os, time\n"
        "from engine.backends.build_worker import BuildWorker\n"
        "if __name__ == '__main__':\n"
        "    w = BuildWorker()\n"
        "    print(w.submit('pid', os.getpid).result(), flush=True)\n"
        "    w.submit('long', time.sleep, 120)\n"
        "    os._exit(9)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    child = int(out.stdout.split()[0])

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{child}/stat") as f:  # a zombie (exited, not yet reaped by init) is gone too
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    assert wait_until(gone, timeout=15)


def test_a_live_loop_survives_a_library_error_in_a_frame(pack, photos):
    """Live, an unexpected error inside one frame (here OpenVINO's own RuntimeError, as a busy infer
    request raised in the AVX2 soak) is an event, and the next frames come; a file run still raises."""
    from engine.backends.networks import NetworkBackends, as_catalog
    from engine.live.events import Failed
    from engine.live.pipeline import Pipeline

    class Flaky(NetworkBackends):
        calls = 0

        def parts(self, *a, **k):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("Infer Request is busy")
            return super().parts(*a, **k)

    source = StillSource(SourceSettings("image", paced=False), photos["coffee"])
    pipe = Pipeline(source, Flaky("onnxruntime", as_catalog(pack)), pack)
    events = []
    assert pipe.run(3, on_event=events.append, keep_alive=True) == 3
    assert [e.message for e in events if isinstance(e, Failed)] == ["RuntimeError: Infer Request is busy"]
    pipe.backend.calls = 0
    with pytest.raises(RuntimeError):
        pipe.run(3)
    pipe.close()
