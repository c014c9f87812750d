"""The one owner of every compile: a single child process that builds compiled models to files.

Compiling (torch.export, PT2E quantization, Inductor) on one thread while another thread runs
compiled code corrupts PyTorch's process-wide tracing state (seen live: ``'GraphModule' object has
no attribute '_in_spec'``, ``KeyError: 'custom'`` in fx/traceback, then an abort). So no compile runs
in the live process at all: a spawned child, at low priority and on one thread, builds each model
and writes it to the compiled-model cache (compiled_cache.py); the live process only loads files.
Builds run one at a time. Of those waiting, the one asked for last goes next, and asking again for a
waiting build moves it to the front: the build the frames need now never waits behind one asked for a
style the user has already left (that one still runs, later). Asking for a build under way returns
its future.

A build that fails is tried again, with a growing wait (BACKOFF_S, doubled after each failure), at most
MAX_ATTEMPTS times per key; until its wait is over, and for good after the last try, asking for it
returns the failed future at once instead of starting it again. ``failure(key)`` says how it failed.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
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


MAX_ATTEMPTS = 3  # tries of one build (a network at a size) before it is given up for this session
BACKOFF_S = 20.0  # the wait after its first failure; doubled after each further one


@dataclass
class BuildFailure:
    """How a build failed: its tries so far, the last error, when it may be tried again."""

    attempts: int
    error: str
    retry_at: float  # time.monotonic()
    exc: BaseException | None = field(default=None, repr=False, compare=False)  # the last one (to count it once)

    @property
    def final(self) -> bool:
        """It failed MAX_ATTEMPTS times: it is not tried again."""
        return self.attempts >= MAX_ATTEMPTS

    def blocks(self, now: float | None = None) -> bool:
        """Not to be started now: given up, or still waiting out its backoff."""
        return self.final or (time.monotonic() if now is None else now) < self.retry_at


def describe_error(exc: BaseException) -> str:
    """One line: the error's type and its message's first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class FailureLog:
    """Failed builds by key, each failure counted once (the same exception seen by several waiters
    is one failure)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._failures: dict = {}

    def record(self, key, exc: BaseException) -> BuildFailure | None:
        """Count this failure; the updated record, or None when ``exc`` was already counted."""
        with self._lock:
            old = self._failures.get(key)
            if old is not None and old.exc is exc:
                return None
            attempts = (old.attempts if old else 0) + 1
            failure = BuildFailure(attempts, describe_error(exc), time.monotonic() + BACKOFF_S * 2 ** (attempts - 1), exc)
            self._failures[key] = failure
            return failure

    def get(self, key) -> BuildFailure | None:
        with self._lock:
            return self._failures.get(key)

    def clear(self, key) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def items(self) -> list:
        with self._lock:
            return list(self._failures.items())


class BuildWorker:
    """``submit(key, fn, *args)`` runs ``fn(*args)`` in the build process (``fn`` must be a
    module-level function: it is pickled by name). The process starts at the first build."""

    def __init__(self):
        self._lock = threading.RLock()  # a build that ends at once completes its future under it
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}  # every build asked for, by key: what the callers hold
        self._waiting: list[tuple[str, Callable, tuple]] = []  # not started yet; the last one goes next
        self._running: str | None = None
        self._closed = False
        self.builds = 0  # builds started or queued (not served by a build already under way, waiting or given up)
        self.failures = 0  # builds that failed (each try counts)
        self._failed = FailureLog()

    def submit(self, key: str, fn: Callable, *args) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("the build worker is closed")
            future = self._futures.get(key)
            if future is not None and not future.done():
                if key != self._running:  # asked again while waiting: it goes next
                    self._waiting = [w for w in self._waiting if w[0] != key] + [(key, fn, args)]
                return future
            failure = self._failed.get(key)
            if future is not None and failure is not None and failure.blocks():
                return future  # failed: not again before its backoff is over, and never after the last try
            future = self._futures[key] = Future()
            future.add_done_callback(lambda done, key=key: self._count_failure(key, done))
            self._waiting.append((key, fn, args))
            self.builds += 1
            self._start_next()
        return future

    def _start_next(self) -> None:
        """Hand the build asked for last to the process, unless one runs there (lock held)."""
        while self._running is None and self._waiting and not self._closed:
            key, fn, args = self._waiting.pop()
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_lower_priority, initargs=(os.getpid(),))
            try:
                started = self._pool.submit(fn, *args)
            except Exception as exc:  # noqa: BLE001 - the process died (killed, out of memory): the next build starts a new one
                log.warning("the build process is gone (%s): starting a new one for the next build", exc)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                self._futures[key].set_exception(exc)
                continue
            self._running = key
            started.add_done_callback(lambda done, key=key: self._finished(key, done))

    def _finished(self, key: str, done: Future) -> None:
        """The process ended a build: start the next, then hand the result to whoever waits."""
        with self._lock:
            self._running = None
            self._start_next()
            future = self._futures[key]
        try:
            if done.cancelled():
                future.cancel()
            elif done.exception() is not None:
                future.set_exception(done.exception())
            else:
                future.set_result(done.result())
        except InvalidStateError:  # close() cancelled it meanwhile
            pass

    def _count_failure(self, key: str, future: Future) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self._failed.clear(key)
            return
        with self._lock:
            self.failures += 1
        failure = self._failed.record(key, exc)
        if failure is not None:
            log.info("build %s failed (try %d of %d): %s%s", key, failure.attempts, MAX_ATTEMPTS, failure.error,
                     "" if failure.final else f"; it may be tried again in {BACKOFF_S * 2 ** (failure.attempts - 1):g} s")

    def failure(self, key: str) -> BuildFailure | None:
        """How the build of ``key`` failed last (None: it has not failed, or it succeeded since)."""
        return self._failed.get(key)

    def pending(self) -> int:
        """Builds waiting or under way."""
        with self._lock:
            return sum(not f.done() for f in self._futures.values())

    def busy(self) -> bool:
        return self.pending() > 0

    def close(self) -> None:
        """Stop the process: a build under way is abandoned (its file is never half-written), those
        waiting never start; whoever waits on one gets CancelledError."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            pool, self._pool = self._pool, None
            futures = list(self._futures.values())
            busy = self._running is not None
        for future in futures:
            future.cancel()
        if pool is not None:
            if busy:  # a compile can take a minute; an idle process ends on its own, its resources released
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
