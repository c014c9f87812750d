"""Two processes adding styles to one user-style store at the same moment both keep theirs (a file lock
around the index's read-modify-write)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from engine.styles.user_styles import UserStyleStore

ROOT = Path(__file__).resolve().parent.parent
N = 40

_ADDER = """
import os, sys, time
import numpy as np
from engine.errors import InputError
from engine.styles.user_styles import UserStyleStore
root, prefix, go = sys.argv[1], sys.argv[2], sys.argv[3]
store = UserStyleStore(root)
while not os.path.exists(go):
    time.sleep(0.001)
code = np.random.default_rng(len(prefix)).normal(size=100).astype(np.float32)
for i in range(%d):
    store.add(f"{prefix} {i}", {"code": code}, "test", "picture", set())
try:
    store.add("both want this", {"code": code}, "test", "picture", set())
    print("won")
except InputError as exc:
    print("refused:", exc)
"""


def test_two_processes_adding_styles_at_once_lose_none(tmp_path):
    root, go = tmp_path / "styles", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _ADDER % N, str(root), prefix, str(go)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for prefix in ("left", "right")]
    time.sleep(1.5)  # both past their imports, polling for the start
    go.touch()
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    names = [s.name for s in UserStyleStore(root).list()]
    assert sorted(names) == sorted([f"{p} {i}" for p in ("left", "right") for i in range(N)] + ["both want this"])
    # the same name asked by both: one has it, the other is told, and its file is the winner's
    assert sorted(o.split(":")[0] for o in outs) == ["refused", "won"], outs
    files = sorted(p.name for p in root.glob("*.safetensors"))
    assert len(files) == 2 * N + 1
    index = json.loads((root / "index.json").read_text())["styles"]
    assert {s["file"] for s in index} == set(files)  # every file listed, every listed file there
    assert not list(root.glob("*.tmp"))
