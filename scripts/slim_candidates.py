"""Multiply-adds per pixel and fp32 CPU speed of slim-network candidates next to the stock network.

Each candidate is a StyleNetConfig (random weights: speed does not depend on them) run through the
real backends (`torch-cpu-compiled`, `onnxruntime`) at 640×480, one frame repeated, after warm-up.

    OMP_NUM_THREADS=1 python scripts/slim_candidates.py --threads 1 --out docs/slim-candidates.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

CANDIDATES = {
    "stock": {},
    "s2d2-r3": dict(space_to_depth=2, contract=(32, 32), residual_blocks=3, expand=(8,), big_kernel=3),
    "s2d2-r2": dict(space_to_depth=2, contract=(32, 32), residual_blocks=2, expand=(8,), big_kernel=3),
    "s2d2-r4": dict(space_to_depth=2, contract=(32, 32), residual_blocks=4, expand=(8,), big_kernel=3),
    "s2d2-r3-e16": dict(space_to_depth=2, contract=(32, 32), residual_blocks=3, expand=(16,), big_kernel=3),
}


def macs_per_pixel(config, size=(64, 64)) -> float:
    """Conv multiply-adds per output pixel, counted with hooks on a small input."""
    import torch

    from engine.model.stylenet import ConvCIN, StyleNet

    net = StyleNet(config).eval()
    total = [0]

    def hook(mod, inp, out):
        total[0] += out.numel() * mod.w.shape[1] * mod.w.shape[2] * mod.w.shape[3]

    for m in net.modules():
        if isinstance(m, ConvCIN):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.rand(1, 3, *size), torch.eye(config.num_styles)[0])
    return total[0] / (size[0] * size[1])


def random_pack(name: str, config):
    from engine.model.stylenet import StyleNet
    from engine.styles.packs import StyleInfo, StylePack

    import torch

    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in StyleNet(config).state_dict().items()}
    styles = [StyleInfo(i, f"s{i}", "random", "n/a") for i in range(config.num_styles)]
    return StylePack(config, state, styles, digest=hashlib.sha256(f"slim-candidate {config}".encode()).hexdigest())


def time_backend(backend_name: str, pack, threads: int, frames: int, frame: np.ndarray) -> float:
    from engine.backends.base import BackendOptions
    from engine.backends import create_single

    b = create_single(backend_name, pack=pack, options=BackendOptions(threads=threads))
    w = np.eye(pack.config.num_styles, dtype=np.float32)[3]
    for _ in range(3):
        b.run(frame, w)
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        b.run(frame, w)
        times.append(time.perf_counter() - t0)
    b.close()
    return float(np.median(times) * 1000)


def cpu_info() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        text = ""
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("Model name")), platform.processor())
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("Flags")), [])
    return {"model": model, "avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
            "avx512_vnni": "avx512_vnni" in flags, "avx_vnni": "avx_vnni" in flags,
            "amx": "amx_tile" in flags}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=15)
    ap.add_argument("--only", nargs="*", help="candidate names (default: all)")
    ap.add_argument("--backends", nargs="*", default=["torch-cpu-compiled", "onnxruntime"])
    ap.add_argument("--pack", type=Path, action="append", help="time these style packs (manifests) instead")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    from engine.model.config import StyleNetConfig

    torch.set_num_threads(args.threads)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = {"cpu": cpu_info(), "threads": args.threads, "size": "640x480", "torch": torch.__version__,
              "candidates": {}}
    from engine.styles.packs import StylePack

    todo = ([(p.stem, StylePack.load(p)) for p in args.pack] if args.pack else
            [(n, random_pack(n, StyleNetConfig(**kw))) for n, kw in CANDIDATES.items() if not args.only or n in args.only])
    for name, pack in todo:
        config = pack.config
        row = {"config": config.to_dict(), "macs_per_pixel": macs_per_pixel(config)}
        for b in args.backends:
            row[f"{b}_ms"] = time_backend(b, pack, args.threads, args.frames, frame)
        result["candidates"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "config"}), flush=True)
    base = result["candidates"].get("stock") or result["candidates"].get("stock26")
    if base:
        for name, row in result["candidates"].items():
            row["macs_ratio"] = base["macs_per_pixel"] / row["macs_per_pixel"]
            for b in args.backends:
                row[f"{b}_speedup"] = base[f"{b}_ms"] / row[f"{b}_ms"]
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
