"""A contact sheet from a soak's saved frames: input | the live output (stabilized, at the scale and on
the network the governor chose) | the same frame rendered offline as the bench renders it (same scale,
same network, ONNX Runtime fp32, no steadying). Stock styles only (a soak's picture style is removed
when it ends). Prints PSNR live vs offline per sample.

    python scripts/soak_sheet.py docs/soak/native-warm.json docs/soak/native-warm-sheet.jpg
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from engine.backends.networks import NetworkBackends, blend_outputs
from engine.metrics import psnr
from engine.live.pipeline import StyleSettings, finish, scaled_input
from engine.styles.user_styles import load_catalog


def offline(nets: NetworkBackends, image: np.ndarray, spec: str, scale: float, light: bool) -> np.ndarray:
    weights = nets.catalog.weights(spec)
    small = scaled_input(image, scale)
    outputs = [(b.run(small, v), share) for b, v, share in nets.parts(weights, small.shape, light=light)]
    return finish(blend_outputs(outputs), image, StyleSettings(style=spec, render_scale=scale), small)


def main(report_path: str, out_path: str, width: int = 320) -> None:
    report = json.loads(Path(report_path).read_text())
    catalog = load_catalog()
    rows = []
    with NetworkBackends("onnxruntime", catalog) as nets:
        for s in report.get("samples", []):
            try:
                catalog.weights(s["style"])
            except Exception:  # noqa: BLE001 - the soak's picture style is gone
                continue
            image = cv2.cvtColor(cv2.imread(s["input"]), cv2.COLOR_BGR2RGB)
            live = cv2.cvtColor(cv2.imread(s["output"]), cv2.COLOR_BGR2RGB)
            ref = offline(nets, image, s["style"], s["render_scale"], light="slim" in s["network"])
            db = psnr(live, ref)
            print(f"style {s['style']:>12}  scale {s['render_scale']:.3f}  {s['network']:<14} live vs offline "
                  f"{db:.1f} dB")
            h = round(image.shape[0] * width / image.shape[1])
            tiles = [cv2.resize(x, (width, h), interpolation=cv2.INTER_AREA) for x in (image, live, ref)]
            row = np.concatenate(tiles, axis=1)
            label = f"{s['style']} | live {s['render_scale']:.2f}x {s['network']} | offline same scale  {db:.1f} dB"
            cv2.putText(row, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            rows.append(row)
    if rows:
        sheet = np.concatenate(rows, axis=0)
        cv2.imwrite(out_path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"wrote {out_path} ({len(rows)} rows)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
