"""Recordings survive a crash or a kill: a real `stylecam stylize` process killed with SIGKILL mid-way
leaves a file that plays; every container the sink writes reads back whole."""
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sinks.video import CONTAINERS, VideoFileSink
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def decoded(path: Path) -> int:
    """Frames FFmpeg (through OpenCV) decodes from the file, reading it to its end."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.slow
def test_stylize_killed_mid_recording_leaves_a_file_that_plays(tmp_path):
    from engine.video.demo import demo_frames, write_clip

    frames = 900
    clip = write_clip(tmp_path / "long.avi", itertools.islice(itertools.cycle(demo_frames((320, 240))), frames),
                      30.0, (320, 240), fourcc="MJPG", quality=80)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "stylecam", "stylize", str(clip), str(out), "--style", "2",
                             "--backend", "onnxruntime", "-q"], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        # two whole seconds (fragments) on disk, while it is still writing
        assert wait_until(lambda: out.exists() and decoded(out) >= 60 or proc.poll() is not None, timeout=120,
                          step=0.2)
        assert proc.poll() is None, f"stylize ended before the kill: {proc.stderr.read().decode()[-500:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    n = decoded(out)
    assert 60 <= n < frames  # it plays, up to its last whole second, and it was cut short
    cap = cv2.VideoCapture(str(out))
    ok, first = cap.read()
    assert ok and first.shape == (240, 320, 3) and first.std() > 10  # a picture, not a blank frame


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_every_container_reads_back_whole_at_an_odd_size(tmp_path, ext):
    """H.264 needs even sides: 161x121 frames go out as 162x122 with the edge repeated."""
    path = tmp_path / f"o{ext}"
    sink = VideoFileSink(path, fps=25)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (121, 161, 3), np.uint8)
    for i in range(12):
        sink.write(np.roll(base, i, axis=1))
    sink.close()
    assert sink.frames == 12 and decoded(path) == 12
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    assert ok and first.shape == (122, 162, 3)
    assert abs(cap.get(cv2.CAP_PROP_FPS) - 25) < 0.5


def test_a_name_it_cannot_write_is_refused_before_the_first_frame(tmp_path):
    from engine.errors import SinkError

    with pytest.raises(SinkError, match="use one of"):
        VideoFileSink(tmp_path / "o.gif")
    with pytest.raises(SinkError, match="does not exist"):
        VideoFileSink(tmp_path / "missing" / "o.mp4")


def test_killed_writer_process_at_any_container(tmp_path):
    """The sink alone in a process that is killed: each container still decodes what reached the disk."""
    script = (
        "import sys, numpy as np\n"
        "from engine.sinks.video import VideoFileSink\n"
        "sink = VideoFileSink(sys.argv[1], fps=30)\n"
        "frame = np.random.default_rng(1).integers(0, 255, (96, 128, 3), np.uint8)\n"
        "i = 0\n"
        "while True:\n"
        "    sink.write(np.roll(frame, i, axis=0)); i += 1\n"
        "    if i == 90: print('written', flush=True)\n"
    )
    procs = {}
    for ext in sorted(CONTAINERS):
        procs[ext] = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"k{ext}")], cwd=ROOT,
                                      stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for ext, proc in procs.items():
            assert proc.stdout.readline().strip() == b"written", ext
        for proc in procs.values():
            proc.send_signal(signal.SIGKILL)
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(30)
    counts = {ext: decoded(tmp_path / f"k{ext}") for ext in procs}
    assert all(n >= 30 for n in counts.values()), counts  # at least the first whole second of each
