"""Everything about TensorRT engines that does not need TensorRT: shape profiles, cache keys and
cache paths. Kept apart from the thin TensorRT layer so it is tested on any machine."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputError
from ..paths import cache_dir


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


@dataclass(frozen=True)
class ShapeProfile:
    """min/opt/max of the ``image`` input, each (1, 3, H, W), padded to the network's multiple."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def covers(self, height: int, width: int) -> bool:
        return self.min[2] <= height <= self.max[2] and self.min[3] <= width <= self.max[3]

    def check(self, height: int, width: int) -> None:
        """InputError naming the allowed range when a (padded) frame is outside the profile."""
        if not self.covers(height, width):
            raise InputError(f"a {width}x{height} frame is outside this TensorRT engine's profile "
                             f"({self.min[3]}x{self.min[2]} to {self.max[3]}x{self.max[2]}): pick a size in that "
                             "range, or restart with --size WxH to build an engine for it")


def profile_for(width: int, height: int, multiple: int, max_size: tuple[int, int] | None = None,
                min_side: int = 64) -> ShapeProfile:
    """Tuned for the requested size (opt), accepting anything from ``min_side`` up to ``max_size``
    (default: the requested size), so a smaller camera mode needs no rebuild."""
    opt_h, opt_w = _round_up(height, multiple), _round_up(width, multiple)
    mw, mh = max_size or (width, height)
    max_h, max_w = max(_round_up(mh, multiple), opt_h), max(_round_up(mw, multiple), opt_w)
    low = _round_up(min_side, multiple)
    return ShapeProfile((1, 3, min(low, opt_h), min(low, opt_w)), (1, 3, opt_h, opt_w), (1, 3, max_h, max_w))


@dataclass(frozen=True)
class EngineKey:
    """Everything that makes a built engine invalid when it changes."""

    gpu: str
    trt_version: str
    model_sha256: str
    precision: str
    profile: ShapeProfile

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]

    def filename(self) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in self.gpu.lower()).strip("-")
        p = self.profile.opt
        return f"stylenet-{slug}-trt{self.trt_version}-{self.precision}-{p[3]}x{p[2]}-{self.digest()}.engine"


def engine_path(key: EngineKey, root: Path | None = None) -> Path:
    return (root or cache_dir() / "tensorrt") / key.filename()


def timing_cache_path(gpu: str, trt_version: str, root: Path | None = None) -> Path:
    """One timing cache per GPU and TensorRT version: it speeds up every later build there."""
    slug = "".join(c if c.isalnum() else "-" for c in gpu.lower()).strip("-")
    return (root or cache_dir() / "tensorrt") / f"timing-{slug}-trt{trt_version}.cache"
