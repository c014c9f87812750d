"""The one owner of every compile: a single child process that builds compiled models to files.

Compiling (torch.export, PT2E quantization, Inductor) on one thread while another thread runs
compiled code corrupts PyTorch's process-wide tracing state (seen live: ``'GraphModule' object has
no attribute '_in_spec'``, ``KeyError: 'custom'`` in fx/traceback, then an abort). So no compile runs
in the live process at all: a spawned child, at low priority and on one thread, builds each model
and writes it to the compiled-model cache (compiled_cache.py); the live process only loads files.
Builds run one at a time, in the order asked; asking again for a build under way returns the same
future.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable

log = logging.getLogger(__name__)
NICE = 10  # a build shares two cores with the live frames: it yields to them


def _exit_with_parent(parent: int) -> None:
    """In the child: a live process that dies (killed, crashed) must not leave a compile running."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _lower_priority(parent: int) -> None:
    """In the child: yield the CPU to the live process, use one core, log like the parent, and end
    with the parent."""
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    logging.basicConfig(level=logging.WARNING, format="stylecam build: %(message)s")
    for noisy in ("torchao", "torch.utils._pytree"):  # import-time noise (unused CUDA kernels, pytree)
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        os.nice(NICE)
    except (AttributeError, OSError):  # Windows has no nice(); the build still runs
        pass
    import torch

    torch.set_num_threads(1)


class BuildWorker:
    """``submit(key, fn, *args)`` runs ``fn(*args)`` in the build process (``fn`` must be a
    module-level function: it is pickled by name). The process starts at the first build."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}
        self._closed = False
        self.builds = 0  # builds asked for (not served by a build already under way)
        self.failures = 0

    def submit(self, key: str, fn: Callable, *args) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("the build worker is closed")
            running = self._futures.get(key)
            if running is not None and not running.done():
                return running
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_lower_priority, initargs=(os.getpid(),))
            future = self._pool.submit(fn, *args)
            self._futures[key] = future
            self.builds += 1
        future.add_done_callback(self._count_failure)
        return future

    def _count_failure(self, future: Future) -> None:
        if not future.cancelled() and future.exception() is not None:
            with self._lock:
                self.failures += 1

    def pending(self) -> int:
        """Builds queued or under way."""
        with self._lock:
            return sum(not f.done() for f in self._futures.values())

    def busy(self) -> bool:
        return self.pending() > 0

    def close(self) -> None:
        """Stop the process: a build under way is abandoned (its file is never half-written)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            futures = list(self._futures.values())
        for future in futures:
            future.cancel()
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):  # a compile can take a minute
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
