"""The soak keeps its picture style in a store of its own: a soak killed with SIGKILL leaves nothing in the
user's store, and the next soak removes what the killed one left in the temp folder."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from lab import soak
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_a_killed_soak_leaves_nothing_in_the_users_store(own_style_store, tmp_path, monkeypatch):
    code = np.random.default_rng(0).normal(size=100).astype(np.float32)
    own_style_store.add("mine", {"code": code}, "test", "picture", set())
    before = own_style_store.index.read_bytes()
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "stylecam", "soak", "--source", "synthetic", "--size", "160x120",
                             "--backend", "onnxruntime", "--no-vcam", "--client", "none", "--duration", "60",
                             "--idle", "0", "--json", str(tmp_path / "soak.json")], cwd=ROOT,
                            env={**os.environ, "TMPDIR": str(temp)}, stderr=subprocess.PIPE)

    def picture_added() -> bool:
        return any("soak picture" in p.read_text() for p in temp.glob("stylecam-soak-*/styles/index.json"))
    try:
        assert wait_until(lambda: picture_added() or proc.poll() is not None, timeout=240, step=0.1)
        assert proc.poll() is None, proc.stderr.read().decode()[-800:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert own_style_store.index.read_bytes() == before  # the user's store as it was: no "soak picture"
    assert [s.name for s in own_style_store.list()] == ["mine"]
    assert sorted(p.name for p in own_style_store.root.iterdir()) == [".index.lock", "index.json", "mine.safetensors"]
    left = list(temp.glob("stylecam-soak-*"))
    assert len(left) == 1 and left[0].name.startswith(f"stylecam-soak-{proc.pid}-")
    alive = temp / f"stylecam-soak-{os.getpid()}-x"  # a soak still running (this process) keeps its store
    alive.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    soak._remove_stores_of_killed_soaks()
    assert list(temp.glob("stylecam-soak-*")) == [alive]


def test_a_soak_that_falls_short_exits_1_naming_the_check(tmp_path):
    """Full quality (no governor) at 1280x720 on ONNX Runtime: a few FPS where the source gives 30."""
    import json

    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, "-m", "stylecam", "soak", "--source", "synthetic", "--size", "1280x720",
                           "--backend", "onnxruntime", "--target-fps", "0", "--no-stabilize", "--no-vcam",
                           "--client", "none", "--duration", "3", "--idle", "0", "--style", "3", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    summary = json.loads(out.read_text())["summary"]
    assert summary["fps_goal"] > 0 and summary["fps_mean"] < 0.8 * summary["fps_goal"]
    assert [s.split(":")[0] for s in summary["short"]] == ["fps"]
    assert last == f"stylecam: soak fell short: {summary['short'][0]}"
    assert "below 80% of the goal" in last
