"""The backend interface (the table of backends and ``auto`` live in registry.py).

A backend turns an RGB uint8 frame and a style weight vector into a stylized frame. The style
vector is an input on every call, so switching or blending styles never rebuilds anything. The
three steps are separate methods so the pipeline can time them; ``run`` chains them.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..styles.packs import StylePack

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
    # The process that owns every compile (build_worker.BuildWorker), shared by the backends of one
    # session; None: a compiled backend starts its own.
    builder: Any = field(default=None, compare=False, repr=False)


class Backend(ABC):
    name: str = "?"
    compiled: bool = False  # builds per frame size (seconds to minutes on its first frame of a size)
    on_cpu: bool = True  # the network runs on the CPU's cores (and its threads keep them busy)
    idles_between_runs: bool = False  # ... but they sleep once a run ends (OpenMP's spin on a while)
    # It has run on real hardware (docs/performance.md, docs/gpu.md). One written against an API but never
    # run (no such hardware or library where stylecam is built) goes after those that have, in ``auto``,
    # and `stylecam doctor` says so.
    ran_on_hardware: bool = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run here (a missing library or hardware), without building
        anything; None when it can. The constructor may still fail (e.g. a CUDA library)."""
        return None

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

    def warm(self, frame: np.ndarray) -> None:
        """Run once on a frame of this size (a compiled backend builds for it)."""
        self.run(frame, self.pack.calibration_vectors()[0])

    @classmethod
    def ready(cls, pack: StylePack, height: int, width: int) -> bool:
        """Runs frames of this size without a build (not compiled, or compiled and cached on disk)."""
        return not cls.compiled

    @classmethod
    def opens_at_once(cls, pack: StylePack, height: int, width: int) -> bool:
        """A live session may start on it (a relaunch): it runs frames of this size within a second, a
        stand-in running meanwhile. Ready, by default."""
        return cls.ready(pack, height, width)

    def ready_for(self, height: int, width: int) -> bool:
        """Runs frames of this size now, without a build (a compiled backend: built, or cached)."""
        return True

    @classmethod
    def prebuild(cls, pack: StylePack, height: int, width: int, builder) -> Any:
        """Hand this size's build to ``builder`` (the build process) if it is neither built nor cached;
        a Future, or None when there is nothing to build (or it builds in-process, cheaply)."""
        return None

    def check_weights(self, style_weights: np.ndarray) -> np.ndarray:
        w = np.asarray(style_weights, dtype=np.float32)
        rows = self.pack.config.num_styles
        if w.shape != (rows,):
            raise InputError(f"style weights need shape ({rows},), got {w.shape}")
        return w

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
