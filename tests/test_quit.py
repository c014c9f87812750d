"""Quitting never aborts: `serve`, `soak` and the app stopped by Ctrl-C (SIGINT) or a service manager
(SIGTERM) in their first seconds, on a fresh home, while the fast path still compiles on its threads.
They wait for the compile and exit with their own code, never 134 ("terminate called without an active
exception") and never a traceback. `vcam` needs a v4l2loopback device, which cannot exist here: it runs
the same `_run_until_stopped` as `serve`, which these tests cover."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def stop_after(args: list[str], home: Path, signum: int, wait_for: str, then_s: float) -> subprocess.CompletedProcess:
    """Start ``stylecam ARGS``, wait until ``wait_for`` shows on its output, then ``then_s`` more, send
    ``signum``; what it printed and how it ended."""
    env = {**os.environ, "STYLECAM_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
    out = home / "out.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "stylecam", *args], cwd=ROOT, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while wait_for not in out.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, out.read_text()[-2000:]
            time.sleep(then_s)
            proc.send_signal(signum)
            signalled = time.monotonic()
            proc.wait(120)
            stop_s = time.monotonic() - signalled
        finally:
            proc.kill()
    done = subprocess.CompletedProcess(args, proc.returncode, out.read_text(), "")
    done.stop_s = stop_s  # from the signal to the exit
    return done


def assert_clean(done: subprocess.CompletedProcess, codes: tuple[int, ...]) -> None:
    text = done.stdout
    assert done.returncode in codes, text[-2000:]
    for sign in ("Traceback", "Fatal Python error", "terminate called"):
        assert sign not in text, text[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_during_its_first_build(tmp_path, signum):
    done = stop_after(["-v", "serve", "--source", "demo", "--port", "0", "--style", "7"], tmp_path, signum,
                      " builds for ", 0.3)
    assert_clean(done, (0,))
    import re

    shown = re.search(r"stopped after (\d+) frames", done.stdout)
    assert shown and int(shown.group(1)) > 0 and "failed" not in done.stdout  # it had frames out, and says so


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_soak_stops_cleanly_during_its_first_build(tmp_path, signum):
    done = stop_after(["-v", "soak", "--source", "demo", "--size", "320x240", "--no-vcam", "--client", "none",
                       "--duration", "60", "--json", str(tmp_path / "soak.json")], tmp_path, signum,
                      " builds for ", 0.3)
    assert_clean(done, (130,))
    assert "failed" not in done.stdout


def test_a_quit_during_an_int8_build_does_not_wait_for_it(tmp_path):
    """The int8 build runs in the build process, which can stop at once: a quit once waited for the build to
    end (the warm-up thread waited on it before the build process was closed), up to a minute."""
    from engine.backends.torch_int8 import TorchInt8Backend

    why = TorchInt8Backend.unavailable_reason()
    if why:
        pytest.skip(f"int8: {why}")
    done = stop_after(["-v", "soak", "--source", "demo", "--size", "640x480", "--no-vcam", "--client", "none",
                       "--duration", "120", "--json", str(tmp_path / "soak.json")], tmp_path, signal.SIGINT,
                      "torch-cpu-int8 builds for", 0.5)
    assert_clean(done, (130,))
    assert "failed" not in done.stdout
    assert done.stop_s < 20, f"the quit took {done.stop_s:.0f} s (an int8 build at 640x480 takes about 40 s here)"


def test_the_app_quits_cleanly_on_sigterm(tmp_path):
    pytest.importorskip("PySide6", reason="PySide6 is not installed (pip install '.[gui]')")
    done = stop_after(["-v", "gui", "--source", "demo", "--style", "7"], tmp_path, signal.SIGTERM,
                      "the stock network runs on", 0.3)
    assert_clean(done, (0,))
    assert "failed" not in done.stdout  # a quit during the build is not a failed build
