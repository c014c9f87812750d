"""The `stylecam` command line: every subcommand, and one-line errors with exit code 2."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from stylecam.cli import main
from engine.styles.packs import STOCK_MANIFEST
from tests.conftest import run_stock


def _save(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_styles_lists_ids_names_sources(capsys):
    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    assert "19  Starry Swirl" in out and "Apache-2.0" in out and len(out.strip().splitlines()) == 27
    assert main(["styles", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 26
    # the slim network's manifest decides which styles the governor may run on it
    from engine.styles.packs import SLIM_MANIFEST

    within = json.loads(SLIM_MANIFEST.read_text())["within_floor"]
    assert [s["id"] for s in listed if s["lighter"] == "slim"] == within and len(within) < 26


@pytest.mark.parametrize("spec", ["7", "starry swirl", "3:0.5,12:0.5"])
def test_stylize_image_matches_original_model(tmp_path, photos, pack, stock_session, spec):
    src = _save(tmp_path / "in.png", photos["astronaut"])
    assert main(["stylize", str(src), str(tmp_path / "out.png"), "--style", spec]) == 0
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "out.png")), cv2.COLOR_BGR2RGB)
    assert out.shape == photos["astronaut"].shape
    ref = run_stock(stock_session, photos["astronaut"], pack.weights(spec))
    assert np.abs(out.astype(int) - ref).max() <= 2


def test_stylize_strength_preserve_colors_and_backend(tmp_path, photos):
    src = _save(tmp_path / "in.png", photos["coffee"])
    assert main(["stylize", str(src), str(tmp_path / "a.png"), "--style", "7", "--backend", "torch-cpu",
                 "--strength", "0.5", "--preserve-colors"]) == 0
    assert main(["stylize", str(src), str(tmp_path / "b.png"), "--style", "7"]) == 0
    a, b = cv2.imread(str(tmp_path / "a.png")), cv2.imread(str(tmp_path / "b.png"))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() > 5


def test_stylize_video_keeps_size_and_frames(tmp_path, clip, capsys):
    """A 20-frame clip is too short to repay a compiled build: auto runs it on ONNX Runtime."""
    assert main(["stylize", str(clip), str(tmp_path / "o.mp4"), "--style", "2", "-q"]) == 0
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 160
    assert capsys.readouterr().out.rstrip().endswith("onnxruntime)")


def test_stylize_a_short_video_uses_a_compiled_model_already_built(tmp_path, frames_320, int8_stock, capsys):
    """However short the clip, a compiled model cached for its frame size is used (the suite's shared
    int8 build: conftest.int8_stock)."""
    from engine.video.demo import write_clip

    if int8_stock is None:
        pytest.skip("the int8 path does not run here")
    h, w = int8_stock["size"]
    clip = write_clip(tmp_path / "c.mp4", frames_320 * 3, 20.0, (w, h))
    assert main(["stylize", str(clip), str(tmp_path / "o.mp4"), "--style", "2", "-q"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("torch-cpu-int8)")
    assert int(cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 6


def test_bench_writes_the_json_schema(tmp_path, clip, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--source", str(clip), "--size", "64x48", "--size", "96x64", "--backend", "onnxruntime",
                 "--frames", "4", "--warmup", "1", "--json", str(out), "-q"]) == 0
    assert "onnxruntime" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert {"cpu", "cores", "python"} <= set(result["machine"])
    assert [(r["width"], r["height"]) for r in result["runs"]] == [(64, 48), (96, 64)]
    for run in result["runs"]:
        assert run["backend"] == "onnxruntime" and run["frames"] == 4 and run["fps"] > 0
        assert set(run["stages"]) == {"capture", "preprocess", "infer", "postprocess", "stabilize", "carry", "mask", "output",
                                      "total", "latency"}
        assert run["network"] == "stock" and run["render_scale"] == 1.0
        assert run["latency_p95_ms"] >= run["latency_p50_ms"] > 0
        assert all({"p50_ms", "p95_ms"} == set(v) for v in run["stages"].values())


def test_export_doctor_import_stock(tmp_path, capsys):
    assert main(["export", "onnx", str(tmp_path / "m.onnx"), "--opset", "17"]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 100_000
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime        ok" in text
    # `auto` = the first backend in AUTO_ORDER that doctor found usable
    picked = text.split("auto picks: ")[1].split()[0]
    assert picked in {"torch-cpu-int8", "torch-cpu-bf16", "openvino", "onnxruntime"} and f"{picked:<18} ok" in text
    assert main(["import-stock", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["sha256"] == json.loads(STOCK_MANIFEST.read_text())["sha256"]


def _corrupt_pack(tmp_path):
    shutil.copy(STOCK_MANIFEST, tmp_path / "p.json")
    (tmp_path / "stock26.safetensors").write_bytes(b"\x00" * 1000)
    return tmp_path / "p.json"


BAD = {
    "missing file": lambda t: ["stylize", str(t / "nope.png"), str(t / "o.png")],
    "unreadable image": lambda t: ["stylize", str(_junk(t / "x.jpg")), str(t / "o.png")],
    "unreadable video": lambda t: ["stylize", str(_junk(t / "x.mp4")), str(t / "o.mp4")],
    "bad style name": lambda t: ["stylize", "demo", str(t / "o.mp4"), "--style", "picasso"],
    "bad style id": lambda t: ["stylize", "demo", str(t / "o.mp4"), "--style", "40"],
    "bad blend": lambda t: ["stylize", "demo", str(t / "o.mp4"), "--style", "3:a,4:1"],
    "bad strength": lambda t: ["stylize", "demo", str(t / "o.mp4"), "--strength", "2"],
    "wrong output kind": lambda t: ["stylize", "demo", str(t / "o.png")],
    "bad size": lambda t: ["bench", "--size", "640by480"],
    "tiny size": lambda t: ["bench", "--size", "8x8"],
    "bad backend": lambda t: ["bench", "--backend", "quantum", "--frames", "1"],
    "missing camera": lambda t: ["bench", "--source", "camera:97", "--frames", "1"],
    "missing source": lambda t: ["bench", "--source", str(t / "none.mp4"), "--frames", "1"],
    "corrupt model": lambda t: ["--pack", str(_corrupt_pack(t)), "styles"],
    "bad option": lambda t: ["bench", "--frames", "many"],
}


def _junk(path):
    path.write_bytes(b"this is not media" * 10)
    return path


# What each case's one line must name: the bad value (or the file) and what was wrong.
SAYS = {
    "missing file": ("nope.png", "not found"), "unreadable image": ("x.jpg", "cannot read"),
    "unreadable video": ("x.mp4", "cannot"), "bad style name": ("picasso", "unknown style"),
    "bad style id": ("40", "out of range"), "bad blend": ("'a'", "bad weight"), "bad strength": ("2", "strength"),
    "wrong output kind": ("o.png", "video"), "bad size": ("640by480", "size"), "tiny size": ("8x8", "out of range"),
    "bad backend": ("quantum", "unknown backend"), "missing camera": ("97", "camera"),
    "missing source": ("none.mp4", ""), "corrupt model": ("stock26.safetensors", "corrupt"),
    "bad option": ("many", "invalid int"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    try:
        code = main(BAD[case](tmp_path))
    except SystemExit as exc:  # argparse's own errors exit directly, still with one line and 2
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("stylecam")
    value, what = SAYS[case]
    assert value in err and what in err, err


def test_console_script_reports_without_traceback(tmp_path):
    """The installed entry point, in a real subprocess."""
    proc = subprocess.run([sys.executable, "-m", "stylecam", "stylize", str(tmp_path / "missing.jpg"),
                           str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"stylecam: error: file not found: {tmp_path / 'missing.jpg'}"


@pytest.mark.parametrize("how", ["same path", "another path", "symlink", "hard link"])
def test_stylize_refuses_to_write_over_its_input(tmp_path, clip, how):
    """`stylecam stylize a.avi a.avi` (by any path to the same file): one line, exit 2, the clip untouched."""
    src = tmp_path / "a.mp4"
    shutil.copy(clip, src)
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    out = {"same path": src, "another path": tmp_path / "sub" / ".." / "a.mp4", "symlink": tmp_path / "link.mp4",
           "hard link": tmp_path / "hard.mp4"}[how]
    if how == "symlink":
        out.symlink_to(src)
    elif how == "hard link":
        os.link(src, out)
    proc = subprocess.run([sys.executable, "-m", "stylecam", "stylize", str(src), str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("stylecam: error:") and "is the input" in err, err
    assert src.read_bytes() == before


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`stylecam styles | head -0`: the pipe closes before the table is written."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        proc = subprocess.run([sys.executable, "-m", "stylecam", "styles"], stdout=writer, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(writer)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr


def test_import_engine_and_help_leave_torch_unimported():
    """`stylecam --help` answers without loading PyTorch (a fresh interpreter, as a user runs it)."""
    code = ("import sys, contextlib, io\n"
            "import engine, stylecam.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            "        stylecam.cli.main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'torchao', 'PySide6', 'aiohttp') if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
