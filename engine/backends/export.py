"""Export StyleNet to ONNX with the style vector as a second input.

γ/β are computed inside the graph from ``style_weights`` (a MatMul with each table) and fed to a
native InstanceNormalization op, which ONNX Runtime and TensorRT (≥ 10) run as one fused kernel.
Exports are cached by weights digest + opset, so a style switch or a restart never re-exports.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

from ..errors import ModelError
from ..paths import cache_dir
from ..styles.packs import StylePack
from .compiled_cache import touch

log = logging.getLogger(__name__)
DEFAULT_OPSET = 17



def export_onnx(pack: StylePack, out: Path, opset: int = DEFAULT_OPSET, check: bool = True,
                cpu_layout: bool = False) -> Path:
    """``cpu_layout``: convs rewritten into equivalents that CPU kernels run faster (the same numbers
    within 1e-6). CPU conv kernels vectorize over output channels, 8 lanes on AVX2:
    - the last conv, where it has under 8 outputs per pixel, as its 4×4-blocked equivalent
      (``conv_rewrites.blocked_weights``: 3 outputs → 48 channels);
    - each upsampling conv as a sub-pixel conv on the small input (``conv_rewrites.subpixel_weights``): no
      upsampled tensor made and padded, 4× the output channels.
    ONNX Runtime on an AMD EPYC Zen 2 at 320×240: the stock network 40.5 → 34.9 ms, the picture one
    38.6 → 29.0 ms (README, "Convs rewritten for CPU kernels")."""
    import torch

    from .conv_rewrites import rewrite_for_cpu  # torch: only where an export runs

    net = pack.build()
    net.set_native_norm(True)
    if cpu_layout:
        rewrite_for_cpu(net)
    image = torch.rand(1, 3, 64, 96)
    rows = pack.config.num_styles
    weights = torch.full((rows,), 1.0 / rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (image, weights), str(tmp), opset_version=opset, dynamo=False,
            input_names=["image", "style_weights"], output_names=["stylized"],
            dynamic_axes={"image": {2: "height", 3: "width"}, "stylized": {2: "height", 3: "width"}},
        )
    if check:
        import onnx

        onnx.checker.check_model(str(tmp))
    os.replace(tmp, out)
    log.info("exported ONNX model to %s", out)
    return out


# torch.onnx.export keeps process-wide state: two exports at once (a stand-in's on the frame thread, an
# OpenVINO build's on its own) failed ("GLOBALS.in_onnx_export must be False") and once hung the frames
# for good (the AVX2 soak). Exports are rare (once per network, then cached): one at a time.
_EXPORTING = threading.Lock()


def onnx_path(pack: StylePack, opset: int = DEFAULT_OPSET, cpu_layout: bool = False) -> Path:
    """Where ``cached_onnx`` keeps this pack's export (it may not be there yet)."""
    variant = "-cpu2" if cpu_layout else ""
    return cache_dir() / "onnx" / f"{pack.family}net-{pack.digest[:16]}-op{opset}{variant}.onnx"


def cached_onnx(pack: StylePack, opset: int = DEFAULT_OPSET, cpu_layout: bool = False) -> Path:
    """The exported model for this pack, exporting once into the cache dir (one export at a time)."""
    path = onnx_path(pack, opset, cpu_layout)
    if path.is_file():
        touch(path)  # used: the cache's limits remove the least recently used first
        return path
    with _EXPORTING:
        if path.is_file():  # exported while this one waited
            return path
        try:
            export_onnx(pack, path, opset, cpu_layout=cpu_layout)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    return path
