"""Launch the app N times and quit each after 1–6 s (seeded), optionally with a busy loop on every other
core, and count the exits: 0 is clean, 134 (abort) or anything else is a failure. Each launch gets a
fresh home holding only the exported models and the demo clip, so every launch compiles OpenVINO again
(the window in which a quit used to abort). Writes a JSON line per launch and a summary.

    python scripts/quit_trials.py --launches 50 --load --json docs/soak/quit-trials.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def seed_home(template: Path) -> None:
    """One launch that makes the exported models and the demo clip the trials copy."""
    env = {**os.environ, "STYLECAM_HOME": str(template), "QT_QPA_PLATFORM": "offscreen"}
    subprocess.run([sys.executable, "-m", "stylecam", "gui", "--source", "demo", "--style", "7", "--quit-after", "8"],
                   cwd=ROOT, env=env, capture_output=True, timeout=300, check=True)
    shutil.rmtree(template / "cache" / "compiled", ignore_errors=True)
    for left in (template / "config", template / "cache" / "openvino"):
        shutil.rmtree(left, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=50)
    parser.add_argument("--load", action="store_true", help="a busy loop on each other core")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="quit-trials.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="quit-trials-"))
    template = work / "template"
    seed_home(template)
    loads = [busy() for _ in range(max(1, (os.cpu_count() or 2) - 1))] if args.load else []
    rows = []
    try:
        for i in range(args.launches):
            home = work / f"home-{i}"
            shutil.copytree(template, home)
            quit_after = round(rng.uniform(1.0, 6.0), 2)
            env = {**os.environ, "STYLECAM_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
            t = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "stylecam", "-v", "gui", "--source", "demo", "--style", "7",
                                   "--quit-after", str(quit_after)], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=300)
            log = done.stderr
            row = {"launch": i, "quit_after_s": quit_after, "exit": done.returncode,
                   "seconds": round(time.monotonic() - t, 2),
                   "build_started": "builds for" in log,  # the quit came after the first compile began
                   "left_while_compiling": "leaving while the fast path is still compiling" in log,
                   "aborted": done.returncode == 134 or "terminate called" in log or "Fatal Python error" in log,
                   "traceback": "Traceback" in log,
                   "leaked": "leaked semaphore" in log}  # a build process stopped untidily (resource tracker)
            if done.returncode != 0 or row["traceback"]:
                row["log_tail"] = log[-1500:]
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(home, ignore_errors=True)
    finally:
        for p in loads:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)
    summary = {"launches": len(rows),
               "clean": sum(r["exit"] == 0 and not r["traceback"] and not r["leaked"] for r in rows),
               "build_started": sum(r["build_started"] for r in rows),
               "left_while_compiling": sum(r["left_while_compiling"] for r in rows),
               "aborts": sum(r["aborted"] for r in rows), "load": args.load,
               "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    Path(args.json).write_text(json.dumps({"summary": summary, "launches": rows}, indent=1) + "\n")
    print(json.dumps(summary))
    return 0 if summary["clean"] == summary["launches"] else 1


if __name__ == "__main__":
    sys.exit(main())
