"""The soak keeps its picture style in a store of its own: a soak killed with SIGKILL leaves nothing in the
user's store, and the next soak removes what the killed one left in the temp folder."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from engine.live import soak
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_a_killed_soak_leaves_nothing_in_the_users_store(own_style_store, tmp_path, monkeypatch):
    code = np.random.default_rng(0).normal(size=100).astype(np.float32)
    own_style_store.add("mine", {"code": code}, "test", "picture", set())
    before = own_style_store.index.read_bytes()
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "engine", "soak", "--source", "synthetic", "--size", "160x120",
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
