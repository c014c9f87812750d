"""The int8 backend runs its AOTInductor packages through their C interface (engine/backends/aoti_runner.py) so
that the display loop's Python runs while a keyframe renders. A small package is compiled here (any CPU with
a C++ compiler), in its own process as the build process does."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from engine.backends.aoti_runner import AotiRunner
from engine.backends.torch_int8 import build_tools_missing

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(build_tools_missing() is not None, reason=f"AOTInductor: {build_tools_missing()}")


def compile_package(path: str) -> None:
    """A small AOTInductor package at ``path`` (in a process of its own: compiling beside compiled inference
    corrupts PyTorch's tracing state)."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList(torch.nn.Conv2d(16, 16, 3, padding=1) for _ in range(8))

        def forward(self, x, w):
            for conv in self.convs:
                x = torch.relu(conv(x)) * w
            return x

    torch.manual_seed(0)
    example = (torch.rand(1, 16, 384, 384), torch.tensor(1.0))
    with torch.no_grad():
        program = torch.export.export(Net().eval(), example)
        torch._inductor.aoti_compile_and_package(program, package_path=path)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path = tmp_path_factory.mktemp("aoti") / "net.pt2"
    subprocess.run([sys.executable, "-c", "import sys; from tests.test_aoti_runner import compile_package; "
                    "compile_package(sys.argv[1])", str(path)], check=True, capture_output=True, timeout=600, cwd=ROOT)
    return path


def inputs():
    torch.manual_seed(1)
    return [torch.rand(1, 16, 384, 384), torch.tensor(0.9)]


def test_the_runner_matches_pytorchs_loader(package):
    loader = torch._C._aoti.AOTIModelPackageLoader(str(package), "model", False, 1, -1)
    runner = AotiRunner(package, torch)
    want = loader.run(inputs())[0]
    got = runner(inputs())
    assert len(got) == 1 and got[0].shape == want.shape == (1, 16, 384, 384)
    assert torch.equal(got[0], want)
    assert torch.equal(runner(inputs())[0], want)  # the inputs' handles were taken, nothing left behind
    runner.close()


def test_python_runs_on_another_thread_while_the_model_runs(package):
    """With PyTorch's loader the GIL is held for the whole forward: another thread's Python gets about one
    turn per run. Through the runner it keeps going."""
    runner = AotiRunner(package, torch)
    frame = inputs()
    runner(frame)
    renders = 6
    done = threading.Event()

    def render():
        for _ in range(renders):
            runner(frame)  # the same tensors again: the runner takes only their handles
        done.set()

    thread = threading.Thread(target=render)
    turns = 0
    start = time.perf_counter()
    thread.start()
    while not done.is_set():
        time.sleep(0.001)
        turns += 1
    thread.join()
    elapsed_ms = (time.perf_counter() - start) * 1e3
    # held GIL: turns <= renders + 1, however long a render takes
    assert turns > 10 * renders, f"{turns} turns of a 1 ms loop in {elapsed_ms:.0f} ms of {renders} renders"


def test_anything_but_a_package_is_refused(tmp_path):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.pt2"):
        AotiRunner(bad, torch)
