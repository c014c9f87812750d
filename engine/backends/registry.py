"""The table of backends, in one place (as pyvirtualcam keeps its backends), and ``auto``.

Each class says whether it can run here (``unavailable_reason()``, no build) and whether it compiles
per frame size. Importing this module imports no heavy library: each backend imports torch,
ONNX Runtime or TensorRT in its constructor, so a missing one disables that backend only.
"""
from __future__ import annotations

import logging

from ..errors import BackendUnavailable, InputError
from ..styles.packs import StylePack
from .base import Backend, BackendOptions
from .openvino import OpenVinoCpuBackend
from .ort import OrtCpuBackend, OrtCudaBackend
from .tensorrt import TensorRTBackend
from .torch_eager import TorchCpuBackend, TorchCpuBf16Backend, TorchCpuCompiledBackend, TorchCudaBackend
from .torch_int8 import TorchInt8Backend

log = logging.getLogger(__name__)

BACKENDS: dict[str, type[Backend]] = {cls.name: cls for cls in (
    TensorRTBackend, TorchCudaBackend, OrtCudaBackend, TorchInt8Backend, TorchCpuBf16Backend, OpenVinoCpuBackend,
    OrtCpuBackend, TorchCpuBackend, TorchCpuCompiledBackend)}
# `auto` tries these in order: fastest first whose fidelity is ≥ 35 dB on every stock style, measured
# (docs/performance.md, docs/gpu.md: torch-cuda on an H200; int8 checks itself per size, see
# torch_int8.py). The GPU backends that have never run (ran_on_hardware False: tensorrt, onnxruntime-cuda)
# come after the measured GPU one and before the CPU paths: on a GPU they are still likely faster than
# a CPU, but no figure says so, and `doctor` marks them.
AUTO_ORDER = ["torch-cuda", "tensorrt", "onnxruntime-cuda", "torch-cpu-int8", "torch-cpu-bf16", "openvino",
              "onnxruntime", "torch-cpu"]
NEVER_RAN = [n for n, cls in BACKENDS.items() if not cls.ran_on_hardware]
COMPILED_CPU = {n for n, cls in BACKENDS.items() if cls.compiled and not n.endswith(("cuda", "tensorrt"))}
# One-shot work (a single image) is not worth a compile: skip the compiled CPU paths.
AUTO_ORDER_ONESHOT = [n for n in AUTO_ORDER if n not in COMPILED_CPU]
# What runs a network at once while a backend that builds per size prepares it.
QUICK_STAND_IN = {**{n: ("onnxruntime", {}) for n in COMPILED_CPU},
                  "tensorrt": ("torch-cuda", {"compile": False}), "torch-cuda": ("torch-cuda", {"compile": False})}
_unknown = [n for n in (*AUTO_ORDER, *(q for q, _ in QUICK_STAND_IN.values())) if n not in BACKENDS]
if _unknown:  # a renamed backend must not silently drop out of auto
    raise ImportError(f"auto names backends that are not in BACKENDS: {_unknown}")


def known_backends() -> list[str]:
    return list(BACKENDS)


def create_single(name: str, *, pack: StylePack, options: BackendOptions = BackendOptions(),
                  oneshot: bool = False) -> Backend:
    """A backend by name for one network, or the first in AUTO_ORDER that starts for ``auto``."""
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER_ONESHOT if oneshot else AUTO_ORDER:
            cls = BACKENDS[candidate]
            why = cls.unavailable_reason()
            if why is None:
                try:
                    backend = cls(pack=pack, options=options)
                    log.info("auto picked backend %s", candidate)
                    return backend
                except BackendUnavailable as exc:
                    why = str(exc)
                    log.info("auto: %s cannot run here (%s); trying the next", candidate, why)
                except Exception as exc:  # noqa: BLE001 - any backend that fails to start: the next one
                    # (a ModelError, an API mismatch in a backend that never ran, a driver's error)
                    why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
                    log.warning("auto: %s failed to start (%s); trying the next backend", candidate, why)
            reasons.append(f"{candidate}: {why}")
        raise BackendUnavailable("no backend can run here — " + "; ".join(reasons))
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}: choose from auto, {', '.join(BACKENDS)}")
    cls = BACKENDS[name]
    why = cls.unavailable_reason()
    if why is not None:
        raise BackendUnavailable(why)
    return cls(pack=pack, options=options)


def available_backends() -> dict[str, str]:
    """name → 'ok' or the reason it cannot run here, asking each class (nothing is built)."""
    return {name: cls.unavailable_reason() or "ok" for name, cls in BACKENDS.items()}


def auto_choice(oneshot: bool = False) -> str:
    """What ``auto`` would start here, by the table alone."""
    statuses = available_backends()
    return next((n for n in (AUTO_ORDER_ONESHOT if oneshot else AUTO_ORDER) if statuses[n] == "ok"), "none")
