"""Compiled models on disk, keyed by everything that makes one valid, so a relaunch loads instead of
rebuilding (as TensorRT keeps its engines): the network's weights digest, the frame size, the recipe,
the CPU's instruction-set flags and the versions of the libraries that compiled it. A key that
changes in any of these simply misses. The file's size is written beside it, so a damaged entry (a
full disk, a copy cut short) is found before anyone relies on it — a relaunch then starts on the
stand-in and rebuilds aside instead of stalling its first frame on a build — and a file that still
cannot be loaded is removed and rebuilt.

The cache has limits (``prune``, after every build): entries unused for MAX_AGE_DAYS go, then the least
recently used until it holds at most MAX_MB, over every folder of rebuildable models (int8 packages,
OpenVINO's compiled blobs, ONNX exports, TensorRT engines). A use is a load or a readiness check
(``touch``: the file's modification time); OpenVINO reads its blobs itself, so theirs is when they were
written (rebuilding one takes under a second). ``stylecam doctor`` shows the size, ``stylecam cache
clear`` empties it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..cpu_tuning import cpu_flags, cpu_profile
from ..locking import file_lock
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


def _lock():
    """Every write or removal of an entry holds this (across processes): a record always matches its model."""
    return file_lock(cache_dir() / "compiled" / ".lock")


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish(tmp: Path, key: CompiledKey, suffix: str = ".pt2") -> Path:
    """Move a finished build into place atomically (a reader never sees half a file) with its key
    and its size beside it (what it was built from, for a person looking at the cache), then trim the
    cache to its limits. Two processes publishing the same entry take turns: the record and the model
    are replaced together, under the cache's lock."""
    final = key.path(suffix)
    final.parent.mkdir(parents=True, exist_ok=True)
    record = {**asdict(key), "bytes": tmp.stat().st_size}
    with _lock():
        _write_atomically(final.with_suffix(".json"), json.dumps(record, indent=1))
        os.replace(tmp, final)
    prune(keep={final})
    return final


def usable(key: CompiledKey, suffix: str = ".pt2") -> bool:
    """The entry exists and is as long as the build left it; a damaged one (a full disk, a copy cut
    short) is discarded with one log line, so the next ask rebuilds it aside. An entry from before
    sizes were recorded is trusted (loading it still catches a bad one). Asking counts as a use (for
    ``prune``)."""
    path = key.path(suffix)
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if _recorded(path) not in (None, st.st_size):
        with _lock():  # another process may be between replacing the record and the model: look again
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return False
            recorded = _recorded(path)
            if recorded not in (None, size):
                _remove(key, f"{size} bytes where the build left {recorded}", suffix)
                return False
    touch(path, st)
    return True


def _recorded(path: Path) -> int | None:
    try:
        return json.loads(path.with_suffix(".json").read_text()).get("bytes")
    except (OSError, ValueError, AttributeError):
        return None


def discard(key: CompiledKey, why: str, suffix: str = ".pt2") -> None:
    """A cache entry that cannot be used: one log line, and it is gone (the next ask rebuilds it)."""
    with _lock():
        _remove(key, why, suffix)


def _remove(key: CompiledKey, why: str, suffix: str) -> None:
    path = key.path(suffix)
    log.warning("compiled model %s is unusable (%s): rebuilding it", path.name, why)
    for p in (path, path.with_suffix(".json")):
        p.unlink(missing_ok=True)


# -- limits: what the cache may keep ---------------------------------------------------------------
# Every change of a network's weights (a fitted style added or removed), of torch or of the CPU makes
# new entries and leaves the old ones unused: those unused for MAX_AGE_DAYS go, and past MAX_MB the
# least recently used go first. STYLECAM_CACHE_MAX_MB overrides the cap.
FOLDERS = ("compiled", "openvino", "onnx", "tensorrt")  # each file in them can be rebuilt from the networks
MAX_MB = 2048.0  # an int8 model is 5-15 MB a size; OpenVINO's and the ONNX exports are smaller
MAX_AGE_DAYS = 30.0
TOUCH_EVERY_S = 3600.0  # a use is written to the entry's time at most once an hour
TMP_AGE_S = 86400.0  # a temporary file older than this was left by a killed build


def touch(path: Path, st: "os.stat_result | None" = None) -> None:
    """Mark an entry used now (its modification time is its last use)."""
    try:
        st = st or path.stat()
        if time.time() - st.st_mtime > TOUCH_EVERY_S:
            os.utime(path)
    except OSError:  # a read-only cache still serves
        pass


@dataclass(frozen=True)
class Entry:
    """One cached model: its files (a model and its record share a name), their bytes, its last use."""

    folder: str
    name: str
    files: tuple[Path, ...]
    bytes: int
    used: float


def entries() -> list[Entry]:
    """Every entry of FOLDERS, least recently used first."""
    groups: dict[tuple[str, str], list[tuple[Path, os.stat_result]]] = {}
    for folder in FOLDERS:
        root = cache_dir() / folder
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            try:
                st = path.stat()
            except OSError:
                continue
            if not path.is_file() or path.name == ".lock":
                continue
            relative = str(path.relative_to(root))
            # a model and its record share the name before the first dot; a temporary file is its own entry
            temporary = ".tmp" in path.name or path.name.startswith(".")
            name = relative if temporary else relative.split(".")[0]
            groups.setdefault((folder, name), []).append((path, st))
    found = [Entry(folder, name, tuple(p for p, _ in files), sum(st.st_size for _, st in files),
                   max(st.st_mtime for _, st in files)) for (folder, name), files in groups.items()]
    return sorted(found, key=lambda e: e.used)


def max_bytes() -> int:
    raw = os.environ.get("STYLECAM_CACHE_MAX_MB")
    try:
        mb = float(raw) if raw else MAX_MB
    except ValueError:
        log.warning("STYLECAM_CACHE_MAX_MB=%r is not a number: using %g", raw, MAX_MB)
        mb = MAX_MB
    return int(mb * 1024 * 1024)


def prune(limit: int | None = None, max_age_s: float = MAX_AGE_DAYS * 86400, keep=frozenset()) -> list[Entry]:
    """Remove the entries unused for ``max_age_s``, then the least recently used until the cache
    holds at most ``limit`` bytes (default ``max_bytes()``); an entry holding a file of ``keep`` (the
    one just built) stays. One log line when something went; returns what went."""
    limit = max_bytes() if limit is None else limit
    now = time.time()
    removed = []
    with _lock():
        found = entries()
        total = sum(e.bytes for e in found)
        for entry in found:
            if keep & set(entry.files):
                continue
            temporary = ".tmp" in entry.name or entry.name.startswith(".")
            old = now - entry.used > (TMP_AGE_S if temporary else max_age_s)
            if not old and (temporary or total <= limit):
                continue
            for path in entry.files:
                path.unlink(missing_ok=True)
            total -= entry.bytes
            removed.append(entry)
    if removed:
        log.info("compiled-model cache: removed %d entries (%.1f MB) unused for %g days or beyond its %.0f MB; "
                 "%.1f MB left", len(removed), sum(e.bytes for e in removed) / 2**20, max_age_s / 86400,
                 limit / 2**20, total / 2**20)
    return removed


def usage() -> tuple[int, int]:
    """(entries, bytes) in the cache now."""
    found = entries()
    return len(found), sum(e.bytes for e in found)


def clear() -> tuple[int, int]:
    """Empty the cache; (entries, bytes) removed. A running app rebuilds what it needs."""
    with _lock():
        found = entries()
        for entry in found:
            for path in entry.files:
                path.unlink(missing_ok=True)
    return len(found), sum(e.bytes for e in found)
