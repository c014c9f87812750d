"""docs/keyframes.md's table rows from a campaign (scripts/keyframe_campaign.sh): per row, keyframes on
against the governor (--keyframes off), and what auto showed.

    python scripts/keyframe_table.py ROOT TAG [TAG ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

NAMES = {"7": "style 7", "1": "style 1", "3": "style 3", "wave": "picture style (Hokusai's Great Wave)",
         "blend": "blend 1:0.5,7:0.5"}


def label(tag: str) -> str:
    clip, _, style = tag.rpartition("-")
    clip = {"p61": "person61", "car": "carphone (real)", "p63-720": "person63 720p"}.get(clip, clip)
    return f"{clip}, {NAMES.get(style, style)}"


def shown(row: dict) -> str:
    """The commonest way frames were shown: 'keyframes stock 1.0' → 'keyframes', 'direct slim 0.75' → 'slim 0.75×'."""
    ways = {k: v for k, v in row["shown_as"].items() if not k.startswith("None")}
    mode, network, scale = max(ways, key=ways.get).split()
    return "keyframes" if mode == "keyframes" else f"{network} {float(scale):g}×"


def main() -> None:
    root = Path(sys.argv[1])
    print("| clip, style | PSNR dB, keyframes / governor | σ2-blurred L1, keyframes / governor | worst 5% of 32×32 "
          "tiles | warp error, keyframes / governor (the ideal's own) | repeated frames, keyframes / governor | "
          "keyframe age p50 ms | grab → hand-over p95 ms, keyframes / governor | the governor ran | auto ran |")
    print("|---" * 10 + "|")
    for tag in sys.argv[2:]:
        on, off, auto = json.loads((root / tag / "compare.json").read_text())
        n = on["frames"]  # the frames scored (after the skipped start)
        print(f"| {label(tag)} | {on['psnr_db']} / {off['psnr_db']} (**{on['psnr_db'] - off['psnr_db']:+.1f} dB**) | "
              f"{on['blurred_l1']} / {off['blurred_l1']} (**{on['blurred_l1'] / off['blurred_l1']:.2f}×**) | "
              f"{on['worst5_tiles_l1']} / {off['worst5_tiles_l1']} | {on['warp_error']} / {off['warp_error']} "
              f"({on['ideal_warp_error']}) | {on['repeats']} / {off['repeats']} of {n} | {on['keyframe_age_ms_median']} | "
              f"{on['handover_latency_ms_p95']} / {off['handover_latency_ms_p95']} | {shown(off)} | {shown(auto)} |")


if __name__ == "__main__":
    main()
