"""Compiled models on disk, keyed by everything that makes one valid, so a relaunch loads instead of
rebuilding (as TensorRT keeps its engines): the network's weights digest, the frame size, the recipe,
the CPU's instruction-set flags and the versions of the libraries that compiled it. A key that
changes in any of these simply misses. The file's size is written beside it, so a damaged entry (a
full disk, a copy cut short) is found before anyone relies on it — a relaunch then starts on the
stand-in and rebuilds aside instead of stalling its first frame on a build — and a file that still
cannot be loaded is removed and rebuilt.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..cpu_tuning import cpu_flags, cpu_profile
from ..paths import cache_dir

log = logging.getLogger(__name__)
LIBRARIES = ("torch", "torchao")
# the ISA flags a compiled CPU kernel may depend on (the rest of /proc/cpuinfo's flags do not matter)
ISA_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile", "avx512_fp16")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "none"
    return versions


@dataclass(frozen=True)
class CompiledKey:
    """What a compiled model was built from."""

    network: str  # stock, slim, picture
    digest: str  # the network's weights
    recipe: str  # e.g. "int8-aoti-1": bump when the build changes what it makes
    width: int
    height: int
    cpu: str  # the ISA flags it may use, and the STYLECAM_CPU profile
    libraries: str

    @classmethod
    def make(cls, pack, recipe: str, height: int, width: int) -> "CompiledKey":
        flags = ",".join(f for f in ISA_FLAGS if f in cpu_flags())
        libs = ",".join(f"{k}={v}" for k, v in library_versions().items())
        return cls(pack.network, pack.digest, recipe, width, height, f"{cpu_profile()}:{flags}", libs)

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def path(self, suffix: str = ".pt2") -> Path:
        return cache_dir() / "compiled" / f"{self.network}-{self.recipe}-{self.width}x{self.height}-{self.hash}{suffix}"


def publish(tmp: Path, key: CompiledKey, suffix: str = ".pt2") -> Path:
    """Move a finished build into place atomically (a reader never sees half a file) with its key
    and its size beside it (what it was built from, for a person looking at the cache)."""
    final = key.path(suffix)
    final.parent.mkdir(parents=True, exist_ok=True)
    record = {**asdict(key), "bytes": tmp.stat().st_size}
    final.with_suffix(".json").write_text(json.dumps(record, indent=1))
    os.replace(tmp, final)
    return final


def usable(key: CompiledKey, suffix: str = ".pt2") -> bool:
    """The entry exists and is as long as the build left it; a damaged one (a full disk, a copy cut
    short) is discarded with one log line, so the next ask rebuilds it aside. An entry from before
    sizes were recorded is trusted (loading it still catches a bad one)."""
    path = key.path(suffix)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    try:
        recorded = json.loads(path.with_suffix(".json").read_text()).get("bytes")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded is not None and recorded != size:
        discard(key, f"{size} bytes where the build left {recorded}", suffix)
        return False
    return True


def discard(key: CompiledKey, why: str, suffix: str = ".pt2") -> None:
    """A cache entry that cannot be used: one log line, and it is gone (the next ask rebuilds it)."""
    path = key.path(suffix)
    log.warning("compiled model %s is unusable (%s): rebuilding it", path.name, why)
    for p in (path, path.with_suffix(".json")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
