"""The backend interface and registry.

A backend turns an RGB uint8 frame and a style weight vector into a stylized frame. The style
vector is an input on every call, so switching or blending styles never rebuilds anything. The
three steps are separate methods so the pipeline can time them; ``run`` chains them.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import BackendUnavailable, InputError
from ..styles import StylePack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendOptions:
    """What every backend may be asked for; each uses what applies to it."""

    threads: int = 0  # 0 = library default
    precision: str = "auto"  # auto | fp32 | fp16 (GPUs default to fp16)
    channels_last: bool = True  # torch-cuda
    cuda_graphs: bool = True  # torch-cuda: one graph per resolution
    compile: bool | None = None  # torch.compile; None = on for CUDA when Triton is there (4x faster, ~15 s first frame)
    max_size: tuple[int, int] | None = None  # tensorrt: largest frame the engine must take
    # Live use: a network first needed mid-stream runs on a backend that starts at once while the
    # compiled one builds in the background (NetworkBackends); off for benchmarks and files.
    background_warmup: bool = False


class Backend(ABC):
    name: str = "?"

    def __init__(self, *, pack: StylePack, options: BackendOptions = BackendOptions()):
        self.pack = pack
        self.options = options
        self.multiple = pack.config.downsample
        self._closed = False

    @abstractmethod
    def preprocess(self, frame: np.ndarray) -> Any:
        """Host frame → whatever ``infer`` takes (may upload to a device)."""

    @abstractmethod
    def infer(self, x: Any, style_weights: np.ndarray) -> Any:
        """Run the network; returns when the result is ready (device synchronised)."""

    @abstractmethod
    def postprocess(self, y: Any, height: int, width: int) -> np.ndarray:
        """Network output → uint8 H×W×3 RGB at the frame's size."""

    def run(self, frame: np.ndarray, style_weights: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        return self.postprocess(self.infer(self.preprocess(frame), style_weights), h, w)

    def check_weights(self, style_weights: np.ndarray) -> np.ndarray:
        w = np.asarray(style_weights, dtype=np.float32)
        rows = self.pack.config.num_styles
        if w.shape != (rows,):
            raise InputError(f"style weights need shape ({rows},), got {w.shape}")
        return w

    def parts(self, style_weights: np.ndarray, shape: tuple | None = None) -> list[tuple["Backend", np.ndarray, float]]:
        """(backend, network input, share of the output) per network a style mix needs: one here;
        NetworkBackends splits a mix of stock and picture styles into two."""
        return [(self, self.check_weights(style_weights), 1.0)]

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Release resources; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._release()

    def _release(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# name → factory; factories raise BackendUnavailable when they cannot run here.
_REGISTRY: dict[str, Callable[..., Backend]] = {}
# `auto` tries these in order: fastest first whose fidelity is ≥ 35 dB on every stock style
# (measured; see docs/performance.md; int8 checks itself per size, see torch_int8.py). Compiled
# paths pay 10–50 s on their first frame of each size.
AUTO_ORDER = ["tensorrt", "torch-cuda", "onnxruntime-cuda", "torch-cpu-int8", "torch-cpu-bf16", "onnxruntime",
              "torch-cpu"]
COMPILED_CPU = {"torch-cpu-bf16", "torch-cpu-compiled", "torch-cpu-int8"}
# One-shot work (a single image) is not worth a compile: skip the compiled CPU paths.
AUTO_ORDER_ONESHOT = [n for n in AUTO_ORDER if n not in COMPILED_CPU]
# What runs a network at once while the backend that needs a build per size prepares it.
QUICK_STAND_IN = {**{n: ("onnxruntime", {}) for n in COMPILED_CPU},
                  "tensorrt": ("torch-cuda", {"compile": False}), "torch-cuda": ("torch-cuda", {"compile": False})}


def register(name: str):
    def deco(factory):
        _REGISTRY[name] = factory
        return factory
    return deco


def known_backends() -> list[str]:
    _load_all()
    return list(_REGISTRY)


def _load_all() -> None:
    # Importing registers; heavy libraries are imported inside each backend's constructor.
    from . import ort, tensorrt, torch_eager, torch_int8  # noqa: F401


def create_backend(name: str, *, pack: StylePack, options: BackendOptions = BackendOptions(),
                   oneshot: bool = False) -> Backend:
    """Backend by name, or the first in AUTO_ORDER that starts for ``auto``. Given a StyleCatalog
    (both style networks), one backend of that kind per network (NetworkBackends)."""
    _load_all()
    if not isinstance(pack, StylePack):
        from .networks import NetworkBackends

        return NetworkBackends(name, pack, options, oneshot)
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER_ONESHOT if oneshot else AUTO_ORDER:
            try:
                backend = _REGISTRY[candidate](pack=pack, options=options)
                log.info("auto picked backend %s", candidate)
                return backend
            except BackendUnavailable as exc:
                reasons.append(f"{candidate}: {exc}")
        raise BackendUnavailable("no backend can run here — " + "; ".join(reasons))
    if name not in _REGISTRY:
        raise InputError(f"unknown backend {name!r}: choose from auto, {', '.join(_REGISTRY)}")
    return _REGISTRY[name](pack=pack, options=options)


def available_backends(pack: StylePack) -> dict[str, str]:
    """name → 'ok' or the reason it cannot run; each backend is started and closed once."""
    _load_all()
    pack = getattr(pack, "stock", pack)  # a StyleCatalog: ask with its stock network
    result = {}
    for name, factory in _REGISTRY.items():
        try:
            factory(pack=pack).close()
            result[name] = "ok"
        except BackendUnavailable as exc:
            result[name] = str(exc)
    return result
