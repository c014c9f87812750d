"""Process-wide CPU tuning for the PyTorch CPU paths.

glibc hands every large buffer out freshly mmapped and unmaps it on free, so each frame pays
~10k page faults; keeping freed memory in the heap (no mmap for big blocks, a high trim threshold)
made the torch CPU paths 20–40% faster on the 2-core machine. Linux/glibc only; a no-op elsewhere.

OpenCV's own worker pool (cvtColor, resize, flow) keeps spinning after each call; on a machine whose
cores all run the network's OpenMP threads, that stalls every parallel region waiting for a
preempted thread (p95 of inference 37 → 28.5 ms at 640×480 on 2 cores). The frame-sized OpenCV work
around the network is small, so it runs single-threaded there.

Background threads that run a network (keyframes, a backend's warm-up) lower their own priority, so the
display loop on the other threads keeps its frames: a shown frame late is seen, a keyframe late is not.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import threading
from functools import lru_cache

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


@lru_cache(maxsize=1)
def tune_malloc() -> bool:
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    log.info("malloc tuned for large per-frame buffers: %s", ok)
    return ok


def tune_process() -> None:
    """Everything the CPU inference paths (compiled torch, ONNX Runtime) want from the process
    (idempotent). On a few cores OpenCV's own worker threads fight the inference threads, which keep
    spinning after each run: single-threaded OpenCV made the fp32-only 2-core bench 12.8 → 17.9 FPS
    (inference 44 → 31 ms, upscale 20 → 16 ms, stabilizer 10.5 → 6.4 ms)."""
    import cv2

    tune_malloc()
    if (os.cpu_count() or 1) <= 4:
        cv2.setNumThreads(1)


CPU_ENV = "STYLECAM_CPU"  # "avx2": behave as on a CPU without AVX-512, VNNI, BF16 or AMX (most AMD Zen 2/3,
# Intel before Ice Lake), so the fp32-only paths can be chosen and measured on any machine
CPU_PROFILES = {"native", "avx2"}


@lru_cache(maxsize=1)
def cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ("model name", "cpu family", "flags", …); {} elsewhere."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not key.strip():  # the blank line after the first processor
                    break
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


@lru_cache(maxsize=1)
def native_flags() -> frozenset[str]:
    return frozenset(cpuinfo().get("flags", "").split())


def cpu_profile() -> str:
    """"native", or "avx2" when STYLECAM_CPU hides the int8/bf16 units (an unknown value counts as native)."""
    value = os.environ.get(CPU_ENV, "native").strip().lower() or "native"
    if value not in CPU_PROFILES:
        log.warning("%s=%s is not one of %s; using the CPU as it is", CPU_ENV, value, ", ".join(sorted(CPU_PROFILES)))
        return "native"
    return value


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags, as STYLECAM_CPU lets the backends see them."""
    flags = native_flags()
    if cpu_profile() == "avx2":
        flags = frozenset(f for f in flags if not f.startswith(("avx512", "amx")) and "vnni" not in f and "bf16" not in f)
    return flags


def apply_cpu_profile() -> None:
    """Under STYLECAM_CPU=avx2, also keep PyTorch's own kernels to AVX2 (oneDNN's convolutions, ATen's
    vector code), so fp32 speed is measured as such a CPU has it. Must run before torch is imported;
    ONNX Runtime's kernels cannot be limited (so the peer, which uses them, keeps AVX-512: conservative)."""
    if cpu_profile() == "avx2":
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")


def sleep_when_waiting() -> None:
    """OpenMP threads (PyTorch's, oneDNN's) sleep at once when they wait, instead of spinning first.
    On 2 cores the spinning thread takes the core the frame, the view or a build needs: the int8
    network at 320×240 (AMD EPYC Zen 5, 2 cores) ran 80–296 ms a frame spinning and 13.5–14 ms
    sleeping, and 100–340 ms against 14–26 ms while a build ran beside it (a live soak saw 2–4 FPS).
    Must run before torch is imported; a user's own OMP_WAIT_POLICY wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def hidden_note() -> str:
    """Appended to 'this CPU has no …' reasons when the units are there but hidden."""
    return f" ({CPU_ENV}=avx2 hides them)" if cpu_profile() == "avx2" else ""


def has_fast_bf16() -> bool:
    """bf16 that runs faster than fp32: AVX-512 BF16 or AMX (x86)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


BACKGROUND_NICE = 5  # a network's background threads, below the display loop's


def yield_to_display(nice: int = BACKGROUND_NICE) -> None:
    """Lower this thread's priority. On Linux nice is per thread, and the inference threads a library starts
    from this one inherit it; elsewhere, or where it is not allowed, nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError) as exc:
        log.debug("thread keeps its priority: %s", exc)
