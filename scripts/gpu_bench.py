"""Model-only GPU benchmark and fp16 fidelity, for scripts/gpu_check.sh.

Times each variant's `infer` (input already on the GPU, synchronised per call) at several sizes,
and the PSNR of every fp16 variant against the fp32 output (minimum over all stock styles).
Each variant is independent: a failure is recorded and the rest go on.
"""
import argparse
import json
import logging
import sys
import time
import traceback

import cv2
import numpy as np
import torch

from engine.backends import BackendOptions, create_single
from engine.metrics import psnr
from engine.styles.packs import StylePack

VARIANTS = {
    "torch fp32 eager": ("torch-cuda", dict(precision="fp32", channels_last=False, cuda_graphs=False, compile=False)),
    "torch fp16 eager": ("torch-cuda", dict(channels_last=False, cuda_graphs=False, compile=False)),
    "torch fp16 channels_last": ("torch-cuda", dict(cuda_graphs=False, compile=False)),
    "torch fp16 + CUDA graphs": ("torch-cuda", dict(cuda_graphs=True, compile=False)),
    "torch fp16 + compile + CUDA graphs": ("torch-cuda", dict(cuda_graphs=True, compile=True)),
    "onnxruntime-cuda": ("onnxruntime-cuda", {}),
    "tensorrt fp16": ("tensorrt", {}),
}


def photo(w, h):
    from skimage import data

    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_LINEAR)


def time_infer(backend, frame, weights, iters, warmup=10):
    x = backend.preprocess(frame)
    for _ in range(warmup):
        backend.infer(x, weights)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        backend.infer(x, weights)  # every backend synchronises before returning
        times.append((time.perf_counter() - t) * 1000)
    e2e = []
    for _ in range(max(iters // 4, 5)):
        t = time.perf_counter()
        backend.run(frame, weights)
        e2e.append((time.perf_counter() - t) * 1000)
    return {"model_p50_ms": float(np.percentile(times, 50)), "model_p95_ms": float(np.percentile(times, 95)),
            "model_fps": 1000.0 / float(np.mean(times)), "e2e_p50_ms": float(np.percentile(e2e, 50))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1280x720,1920x1080,3840x2160")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--json", required=True)
    ap.add_argument("--budget-s", type=float, default=300, help="skip slow variants past this")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    start = time.time()
    pack = StylePack.load()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
              "runs": [], "psnr": {}, "errors": {}}
    w7 = pack.weights("7")
    reference = {}  # fp32 outputs per (size, style) for PSNR
    for name, (backend_name, opts) in VARIANTS.items():
        for w, h in sizes:
            if time.time() - start > args.budget_s and "fp32" not in name:
                result["errors"][f"{name} {w}x{h}"] = "skipped: time budget"
                continue
            try:
                t0 = time.time()
                backend = create_single(backend_name, pack=pack, options=BackendOptions(max_size=(w, h), **opts))
                frame = photo(w, h)
                run = {"variant": name, "backend": backend.describe(), "width": w, "height": h,
                       **time_infer(backend, frame, w7, args.iters), "setup_s": None}
                run["setup_s"] = round(time.time() - t0, 1)
                # fidelity: every stock style at 720p-ish size, min over styles
                if (w, h) == sizes[0]:
                    small = photo(w, h)
                    scores = []
                    for s in range(pack.num_styles):
                        out = backend.run(small, pack.weights(s))
                        if name == "torch fp32 eager":
                            reference[s] = out
                        elif s in reference:
                            scores.append(psnr(out, reference[s]))
                    if scores:
                        result["psnr"][name] = {"min_db": min(scores), "mean_db": float(np.mean(scores)),
                                                "worst_style": int(np.argmin(scores))}
                backend.close()
                result["runs"].append(run)
                logging.info("%-36s %4dx%-4d model p50 %7.3f ms p95 %7.3f ms = %8.1f FPS  e2e p50 %7.2f ms",
                             name, w, h, run["model_p50_ms"], run["model_p95_ms"], run["model_fps"], run["e2e_p50_ms"])
            except Exception as exc:
                result["errors"][f"{name} {w}x{h}"] = f"{type(exc).__name__}: {exc}"
                logging.info("%s %dx%d failed: %s", name, w, h, exc)
                traceback.print_exc(limit=3)
                if "unavailable" in type(exc).__name__.lower() or "Unavailable" in type(exc).__name__:
                    break
            torch.cuda.empty_cache()
    for name, p in result["psnr"].items():
        logging.info("PSNR vs fp32, min over 26 styles: %-36s %.1f dB (worst style %d)", name, p["min_db"],
                     p["worst_style"])
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
