"""The soak table for docs/live.md: one row per `stylecam soak` JSON, and, per style, the share of live
seconds at the level (render scale and network) the bench settled on for that style on the same clip.

    python scripts/soak_table.py docs/soak/native-warm.json ... --bench docs/soak/bench-native.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def bench_levels(paths: list[str]) -> dict[str, tuple[float, str]]:
    """style → (render scale, network) the bench's governor settled on."""
    levels = {}
    for path in paths:
        for run in json.loads(Path(path).read_text())["runs"]:
            levels[str(run["style"])] = (run["render_scale"], run["network"])
    return levels


def share_at_bench(report: dict, levels: dict) -> str:
    """Seconds (after the first 5 of each style) at the bench's level for that style."""
    rows, switches = report["seconds"], report["switches"]
    hit = total = 0
    for k, sw in enumerate(switches):
        level = levels.get(sw["style"])
        if level is None:
            continue
        end = switches[k + 1]["t"] if k + 1 < len(switches) else report["summary"]["seconds"]
        for r in rows:
            if sw["t"] + 5 < r["t"] <= end and not r["idle"] and r["render_scale"] is not None:
                total += 1
                hit += (r["render_scale"], r["network"]) == level
    return f"{hit / total:.0%} of {total} s" if total else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("reports", nargs="+")
    ap.add_argument("--bench", action="append", default=[], help="bench JSONs on the same clip (per style)")
    args = ap.parse_args()
    levels = bench_levels(args.bench)
    print("| run | CPU path | backends | failed builds | keyframe mode | keyframes/s | keyframe age p50 ms | "
          "at the bench's level | scale changes/min | grab → hand-over p50/p95 ms | grab → stream p50/p95 ms | "
          "FPS no client / client | CPU % live / idle | startup s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in args.reports:
        r = json.loads(Path(path).read_text())
        s, m = r["summary"], r["machine"]
        backends = ", ".join(b.split(" (")[0] for b in s["backends"])
        stream = s.get("delivery", {}).get("mjpeg", {})
        print(f"| {Path(path).stem} | {m.get('cpu_profile')} | {backends} | {s['failed_builds']} in "
              f"{s['seconds'] / 60:.0f} min | {s.get('keyframe_share', 0):.0%} | {s.get('keyframe_fps')} | "
              f"{s.get('keyframe_age_p50_ms')} | {share_at_bench(r, levels)} | {s['scale_changes_per_min']} | "
              f"{s['latency_p50_ms']} / {s['latency_p95_ms']} | {stream.get('p50_ms')} / {stream.get('p95_ms')} | "
              f"{s['fps_no_client']} / {s['fps_with_client']} | {s['cpu_percent_live']} / {s['cpu_percent_idle']} | "
              f"{s['startup_s']} |")


if __name__ == "__main__":
    main()
