"""Which convolutions can be int8? Quantize one layer at a time (all others float) and print the
PSNR against fp32 for the hardest styles; docs/performance.md explains how FLOAT_LAYERS follows.

Usage: python scripts/int8_sensitivity.py [WIDTHxHEIGHT]   (default 640x480, ~2 min on 2 cores)
"""
import sys

import cv2
import torch

from engine.backends.torch_int8 import GUARD_STYLES, quantize
from engine.metrics import psnr
from engine.backends.framed import FramedStyleNet
from engine.styles.packs import StylePack


def main():
    from skimage import data

    w, h = (int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "640x480").split("x"))
    pack = StylePack.load()
    reference = FramedStyleNet(pack.build())
    frame = torch.from_numpy(cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA))
    convs = [name for name, module in reference.net.named_modules() if hasattr(module, "w")]
    with torch.no_grad():
        refs = {s: reference(frame, torch.from_numpy(pack.weights(s))).numpy() for s in GUARD_STYLES}
        for name in convs:
            model = quantize(pack, h, w, tuple(c for c in convs if c != name), float_bf16=False)
            scores = [psnr(model(frame, torch.from_numpy(pack.weights(s))).numpy(), ref) for s, ref in refs.items()]
            print(f"only {name:<11} in int8: " + "  ".join(f"style {s}: {db:5.1f} dB" for s, db in zip(refs, scores)),
                  flush=True)


if __name__ == "__main__":
    main()
