"""The compiled-model cache has limits: entries unused for long or beyond its cap go, least recently
used first; each entry's record matches its model even when two processes publish it at once;
`stylecam doctor` shows its size and `stylecam cache clear` empties it."""
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from engine.backends import compiled_cache as cc
from stylecam.cli import main

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A cache of this test's own (the run's shared one holds the exports other tests use)."""
    monkeypatch.setenv("STYLECAM_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "cache"


def key(width: int, digest: str = "d1") -> cc.CompiledKey:
    return cc.CompiledKey("stock", digest, "int8-aoti-1", width, 240, "native:avx2", "torch=x")


def build(k: cc.CompiledKey, size: int, used: float | None = None) -> Path:
    """What a build leaves: a model of ``size`` bytes published with its record; ``used``: its last use."""
    final = k.path()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.stem}.{os.getpid()}.tmp.pt2")
    tmp.write_bytes(os.urandom(size))
    cc.publish(tmp, k)
    if used is not None:
        for p in (final, final.with_suffix(".json")):
            os.utime(p, (used, used))
    return final


def test_the_cache_shrinks_under_its_cap_oldest_first(home, monkeypatch):
    monkeypatch.setenv("STYLECAM_CACHE_MAX_MB", "3.5")
    now = time.time()
    old = [build(key(320 + i), MB, used=now - 3600 * (10 - i)) for i in range(3)]  # used 10, 9, 8 hours ago
    assert cc.usage() == (3, pytest.approx(3 * MB, rel=0.01))
    assert cc.usable(key(320))  # asked for now: the least recently used is now the second
    newest = build(key(400), MB)  # 4 MB > 3.5: one must go, and it is the one used longest ago
    assert newest.exists() and old[0].exists() and old[2].exists()
    assert not old[1].exists() and not old[1].with_suffix(".json").exists()
    n, size = cc.usage()
    assert n == 3 and size <= 3.5 * MB
    big = build(key(500), 3 * MB)  # the entry just built stays even when it alone nearly fills the cap
    assert big.exists() and cc.usage()[1] <= 3.5 * MB and cc.usage()[0] == 1


def test_entries_unused_for_long_are_removed(home, caplog):
    month = 31 * 86400
    stale = build(key(320, digest="before-a-style-was-added"), 1000, used=time.time() - month)
    onnx = home / "onnx" / "stocknet-old-op17.onnx"
    onnx.parent.mkdir(parents=True)
    onnx.write_bytes(b"x" * 1000)
    os.utime(onnx, (time.time() - month, time.time() - month))
    left = home / "compiled" / "stock-int8-aoti-1-320x240-0123.999.tmp.pt2"  # a killed build's
    left.write_bytes(b"x")
    os.utime(left, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    building = home / "compiled" / "stock-int8-aoti-1-640x480-4567.998.tmp.pt2"  # a build under way
    building.write_bytes(b"x")
    with caplog.at_level("INFO", logger="engine.backends.compiled_cache"):
        fresh = build(key(321), 1000)
    assert fresh.exists() and building.exists()
    assert not stale.exists() and not onnx.exists() and not left.exists()
    assert [r.message for r in caplog.records if "removed" in r.message] == [
        "compiled-model cache: removed 3 entries (0.0 MB) unused for 30 days or beyond its 2048 MB; 0.0 MB left"]


_PUBLISHER = """
import os, sys
from engine.backends import compiled_cache as cc
k = cc.CompiledKey("stock", "d1", "int8-aoti-1", 320, 240, "native:avx2", "torch=x")
size = int(sys.argv[1])
final = k.path()
final.parent.mkdir(parents=True, exist_ok=True)
for i in range(150):
    tmp = final.with_name(f"{final.stem}.{os.getpid()}.{i}.tmp.pt2")
    tmp.write_bytes(b"x" * size)
    cc.publish(tmp, k)
"""


def test_two_processes_publishing_one_entry_leave_a_record_that_matches(home):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(size)], env=env, cwd=ROOT)
             for size in (1000, 2000)]
    seen = 0
    while any(p.poll() is None for p in procs):  # a reader meanwhile never finds a damaged entry
        if key(320).path().exists():
            assert cc.usable(key(320))
            seen += 1
    assert [p.wait(60) for p in procs] == [0, 0]
    path = key(320).path()
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["bytes"] == path.stat().st_size and record["digest"] == "d1" and seen > 0
    assert {k: v for k, v in record.items() if k != "bytes"} == asdict(key(320))
    assert not list(path.parent.glob("*.tmp*"))


def test_doctor_shows_the_size_and_cache_clear_empties_it(home, capsys):
    build(key(320), 3 * MB)
    build(key(321), MB)
    (home / "openvino").mkdir()
    (home / "openvino" / "12345.blob").write_bytes(b"x" * MB)
    assert main(["doctor"]) == 0
    assert "compiled models: 3 entries, 5.0 MB (kept under 2048 MB" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == "removed 3 compiled models (5.0 MB); they are rebuilt when needed"
    assert cc.usage() == (0, 0) and not key(320).path().exists()
    assert main(["cache", "clear"]) == 0
    assert "removed 0 compiled models" in capsys.readouterr().out
