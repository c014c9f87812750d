"""A build that keeps failing: tried at most MAX_ATTEMPTS times in the real build process, with a growing
wait between tries, then one warning; the size stays on the stand-in and ``build_failure(shape)`` says
why. The int8 path's check names a missing C++ compiler or an unwritable cache before it is picked."""
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backends import build_worker
from engine.backends.base import Backend, BackendOptions
from engine.backends.build_worker import MAX_ATTEMPTS, BuildWorker
from engine.backends.networks import NetworkBackends
from engine.backends.registry import BACKENDS, QUICK_STAND_IN
from tests.waiting import wait_until

BACKOFF = 0.4


def failing_build(log_path: str, height: int, width: int, network: str = "stock") -> dict:
    """In the build process: note the try, then fail as a build without a compiler does."""
    with open(log_path, "a") as f:
        f.write(f"{time.monotonic()} {network} {width}x{height}\n")
    raise RuntimeError("C++ compile error: g++: command not found")


def note_try(path: str) -> None:
    """In the build process: a build that does nothing (starts the process)."""
    Path(path).write_text("ran\n")


def tries(path: Path, network: str = "stock") -> list[float]:
    lines = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [float(t) for t, net, _ in lines if net == network]


@pytest.fixture
def fast_backoff(monkeypatch):
    monkeypatch.setattr(build_worker, "BACKOFF_S", BACKOFF)


def test_the_build_process_tries_a_failing_build_a_bounded_number_of_times(tmp_path, fast_backoff):
    runs = tmp_path / "runs.txt"
    worker = BuildWorker()
    try:
        deadline = time.monotonic() + BACKOFF * 2 ** MAX_ATTEMPTS + 20
        while time.monotonic() < deadline:  # asked again and again, as a live session's frames would
            future = worker.submit("stock-64x48", failing_build, str(runs), 48, 64)
            with pytest.raises(RuntimeError, match="g\\+\\+: command not found"):
                future.result(timeout=120)
            failure = worker.failure("stock-64x48")
            if failure.final and time.monotonic() > failure.retry_at + 1.0:
                break
            time.sleep(0.05)
        times = tries(runs)
        assert len(times) == MAX_ATTEMPTS and worker.failures == MAX_ATTEMPTS and worker.builds == MAX_ATTEMPTS
        gaps = np.diff(times)
        assert gaps[0] >= BACKOFF and gaps[1] >= 2 * BACKOFF  # the wait doubles
        failure = worker.failure("stock-64x48")
        assert failure.final and failure.attempts == MAX_ATTEMPTS
        assert failure.error == "RuntimeError: C++ compile error: g++: command not found"
        assert worker.pending() == 0 and not worker.busy()  # a failed build does not keep the governor cautious
    finally:
        worker.close()


class FailingCompiled(Backend):
    """A compiled CPU backend whose every build fails in the real build process (as the int8 path did
    on a machine without a C++ compiler). Its frames would run through the build's model, which never
    comes."""

    name = "failing-compiled"
    compiled = True
    runs_file = ""

    @classmethod
    def prebuild(cls, pack, height, width, builder):
        return builder.submit(f"{pack.network}-{width}x{height}", failing_build, cls.runs_file, height, width,
                              pack.network)

    def warm(self, frame):
        h, w = frame.shape[:2]
        self.prebuild(self.pack, h, w, self.options.builder).result()

    def ready_for(self, height, width):
        return False

    def preprocess(self, frame):
        raise AssertionError("the stand-in runs these frames")

    def infer(self, x, style_weights):
        raise AssertionError

    def postprocess(self, y, height, width):
        raise AssertionError


def test_a_size_that_never_builds_stays_on_the_stand_in_with_one_warning(tmp_path, pack, photos, fast_backoff,
                                                                         monkeypatch, caplog):
    from engine.styles.user_styles import load_catalog

    runs = tmp_path / "runs.txt"
    monkeypatch.setattr(FailingCompiled, "runs_file", str(runs))
    monkeypatch.setitem(BACKENDS, FailingCompiled.name, FailingCompiled)
    monkeypatch.setitem(QUICK_STAND_IN, FailingCompiled.name, ("onnxruntime", {}))
    frame = photos["coffee"]
    shape = frame.shape
    worker = BuildWorker()
    backends = NetworkBackends(FailingCompiled.name, load_catalog(),
                               BackendOptions(background_warmup=True, builder=worker))
    weights = backends.catalog.weights("7")
    try:
        with caplog.at_level(logging.INFO, logger="engine.backends"):
            deadline = time.monotonic() + BACKOFF * 2 ** MAX_ATTEMPTS + 60
            while time.monotonic() < deadline and (backends.build_failure(shape) or "").count(";") < 1:
                [(backend, vector, _)] = backends.parts(weights, shape)  # a frame, as the pipeline runs it:
                assert backend.run(frame, vector).shape == shape  # on the stand-in, starting a build aside
                backends.prebuild([shape], first=("stock",))  # and the steady session's ladder
                time.sleep(0.02)
            for _ in range(20):  # more frames after it gave up: no further try, no further line
                [(backend, vector, _)] = backends.parts(weights, shape)
                backend.run(frame, vector)
                backends.prebuild([shape], first=("stock",))
            assert wait_until(lambda: backends.building() == 0, timeout=30)
        # every network of the catalog the ladder builds (stock, and the slim one that stands in for it)
        networks = ["slim", "stock"]
        assert [len(tries(runs, n)) for n in networks] == [MAX_ATTEMPTS, MAX_ATTEMPTS]
        why = "RuntimeError: C++ compile error: g++: command not found"
        size = f"{shape[1]}x{shape[0]}"
        warnings = sorted(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        assert warnings == [f"failing-compiled could not build the {n} network at {size} ({MAX_ATTEMPTS} tries, "
                            f"last: {why}): that size runs on onnxruntime from now on" for n in networks]
        said = backends.build_failure(shape)
        assert said.endswith(": it runs on onnxruntime")
        assert sorted(said.removesuffix(": it runs on onnxruntime").split("; ")) == [
            f"failing-compiled could not build the {n} network at {size} ({MAX_ATTEMPTS} tries, last: {why})"
            for n in networks]
        assert backends.given_up() == [f"{n} {size}" for n in networks]
        assert backends.build_failure((240, 320, 3)) is None
        assert backends.get("stock", shape).name == "onnxruntime"
        assert worker.failures == 2 * MAX_ATTEMPTS
    finally:
        backends.close()
        worker.close()


def test_a_soak_on_a_failing_build_counts_it_reports_it_and_exits_short(tmp_path, fast_backoff, monkeypatch):
    """The live session, its frames on the stand-in, each frame's result saying why (the HUD's and
    /stats' line), the soak's count from the build results and one warning per size given up."""
    from lab.soak import Soak, SoakSettings

    runs = tmp_path / "runs.txt"
    monkeypatch.setattr(FailingCompiled, "runs_file", str(runs))
    monkeypatch.setitem(BACKENDS, FailingCompiled.name, FailingCompiled)
    monkeypatch.setitem(QUICK_STAND_IN, FailingCompiled.name, ("onnxruntime", {}))
    seen = []

    def start_the_build_process(session) -> None:  # before the timeline: its spawn is not what is tested
        seen.append(session)
        session.builder.submit("warm-up", note_try, str(tmp_path / "warm.txt")).result(timeout=240)
    # full quality (no governor): the frames stay at 160x120, so that size is the one given up
    soak = Soak(SoakSettings(source="synthetic", size=(160, 120), backend=FailingCompiled.name, duration_s=15,
                             switch_every_s=60, schedule=("7",), client="none", vcam=False, keyframes="off",
                             target_fps=0),
                view=start_the_build_process)
    report = soak.run()
    summary = report["summary"]
    given_up = summary["builds_given_up"]
    assert given_up == ["stock 160x120"]
    from collections import Counter

    per_size = Counter(f"{net} {size}" for _, net, size in (line.split() for line in runs.read_text().splitlines()))
    assert summary["builds_failed_in_process"] == sum(per_size.values()) == MAX_ATTEMPTS  # every try counted, from the results
    assert max(per_size.values()) == MAX_ATTEMPTS  # the ladder's sizes too, each tried at most MAX_ATTEMPTS times
    assert all(per_size[key] == MAX_ATTEMPTS for key in given_up)
    warnings = [line["message"] for line in report["log"] if line["level"] == "WARNING"]
    assert len([w for w in warnings if "could not build" in w]) == len(given_up)  # one line per size given up
    assert summary["short"][0] == (f"failed builds: {sum(per_size.values())} builds failed in the build process "
                                   f"(want 0), given up for {', '.join(given_up)}")
    assert seen[0].stats()["build_failure"].startswith("failing-compiled could not build the stock network at "
                                                        "160x120 (3 tries, last: RuntimeError: C++ compile error")
    assert summary["backends"] and all("onnxruntime" in b for b in summary["backends"])
    assert summary["fps_mean"] > 0  # the stand-in kept the frames coming


def test_int8_check_names_a_missing_compiler(monkeypatch):
    from engine.backends.torch_int8 import build_tools_missing

    monkeypatch.setenv("CXX", "g++-that-is-not-installed")
    assert build_tools_missing() == ("int8 compiles C++ (AOTInductor) and there is no C++ compiler here "
                                     "(g++-that-is-not-installed not found; install g++, or set CXX)")


def test_int8_check_names_an_unwritable_cache(tmp_path, monkeypatch):
    from engine.backends.torch_int8 import build_tools_missing

    monkeypatch.setenv("STYLECAM_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "cache").write_text("a file where the cache folder should be")
    why = build_tools_missing()
    assert why is not None and why.startswith(f"the compiled-model cache {tmp_path / 'home' / 'cache' / 'compiled'} "
                                              "is not writable")
    monkeypatch.setenv("STYLECAM_HOME", str(tmp_path / "fine"))
    assert build_tools_missing() is None  # g++ is on this machine (the suite builds int8 where it runs)
