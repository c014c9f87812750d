"""One backend per style network, behind the Backend interface the pipeline already knows.

The stock network is started at once (so a backend that cannot run fails early); the picture
network's backend of the same kind is started the first time a picture style is used. For the
uncompiled backends that takes well under a second. A compiled one builds per frame size (int8:
20–70 s on 2 cores), so in live use (``background_warmup``) the network runs on a quick stand-in
(ONNX Runtime on CPUs) while the compiled backend builds and warms on a thread, then takes over
between two frames. A mix of styles from both networks runs each network on its own part of the
mix and blends the outputs by the parts' shares.

A size that fails to build stays on the stand-in; it is tried again after a growing wait, at most
build_worker.MAX_ATTEMPTS times, then given up with one warning in the log. ``build_failure(shape)``
says which network gave up at that size, and why (for the HUD).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import CancelledError
from dataclasses import replace

import numpy as np

from .. import defaults
from ..cpu_tuning import yield_to_display
from ..styles.catalog import StyleCatalog, as_catalog
from .base import Backend, BackendOptions
from .build_worker import MAX_ATTEMPTS, FailureLog
from .registry import BACKENDS, QUICK_STAND_IN, create_single

log = logging.getLogger(__name__)


def blend_outputs(outputs: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Σ share·output over the networks' uint8 frames (the shares sum to 1)."""
    if len(outputs) == 1:
        return outputs[0][0]
    acc = sum(out.astype(np.float32) * share for out, share in outputs)
    return np.clip(acc + 0.5, 0, 255).astype(np.uint8)


class NetworkBackends:
    """The one backend type the live path knows (``create_backend`` always makes one): a backend per
    network of a catalog, the mix split across them, and the sizes built aside. What the pipeline uses:
    ``parts``, ``lighter``, ``level_ready``, ``prepare``, ``prebuild``, ``builder``, ``build_failure``,
    ``adopt``, ``on_cpu``, ``idles_between_runs``, ``describe``, ``close``."""

    def __init__(self, name: str, catalog: StyleCatalog, options: BackendOptions = BackendOptions(),
                 oneshot: bool = False, first: Backend | None = None):
        """``first``: the first network's backend, already made (``around``); else made here."""
        self.catalog = catalog
        self.options = options
        self._lock = threading.Lock()
        self._closed = False
        self._first = next(iter(catalog.packs))  # the network started at once: "stock" in a full catalog
        if first is None:
            first = create_single(name, pack=catalog.packs[self._first], options=options, oneshot=oneshot)
        self.name = first.name  # what auto picked: the picture network gets the same kind
        self.multiple = first.multiple
        self.on_cpu = first.on_cpu
        self.idles_between_runs = first.idles_between_runs
        self._backends: dict[str, Backend] = {self._first: first}
        self._stand_ins: dict[str, Backend] = {}  # per network: runs frames of a size still building
        self._building: dict[tuple, threading.Thread] = {}  # (network, shape) → its build thread
        self._failed = FailureLog()  # (network, shape) whose build failed: the stand-in runs it meanwhile
        self._split = None  # (weights and catalog, their parts): the last style's split

    def _create(self, family: str) -> Backend:
        log.info("starting %s for the %s network", self.name, family)
        return create_single(self.name, pack=self.catalog.network(family), options=self.options)

    def _stand_in(self, family: str) -> Backend:
        """The quick backend for ``family`` (lock held): ONNX Runtime beside a compiled CPU path."""
        stand_in = self._stand_ins.get(family)
        if stand_in is None:
            name, changes = QUICK_STAND_IN[self.name]
            stand_in = create_single(name, pack=self.catalog.network(family), options=replace(self.options, **changes))
            self._stand_ins[family] = stand_in
        return stand_in

    def _build_aside(self, family: str, shape: tuple) -> None:
        """Start building ``family`` for ``shape`` on a thread (lock held); one build per size."""
        key = (family, tuple(shape))
        failure = self._failed.get(key)
        if key in self._building or (failure is not None and failure.blocks()):
            return
        log.info("the %s network runs on %s while %s builds for %dx%d", family, QUICK_STAND_IN[self.name][0],
                 self.name, shape[1], shape[0])
        thread = threading.Thread(target=self._build, args=(family, key), name=f"build-{family}", daemon=True)
        self._building[key] = thread
        thread.start()

    def _build(self, family: str, key: tuple) -> None:
        """On its thread: create the backend if need be and build (load) this size; for a compiled CPU
        backend the compile itself runs in the build process, this thread only waits and loads."""
        shape = key[1]
        yield_to_display()  # as the session's warm-up thread: the inference threads a first run starts inherit it
        try:
            with self._lock:
                backend = self._backends.get(family)
            if backend is None:
                made = self._create(family)
                with self._lock:
                    backend = self._backends.setdefault(family, made)
                if backend is not made:
                    made.close()
            backend.warm(np.zeros(shape, np.uint8))
            self._failed.clear(key)
            log.info("the %s network switched to %s at %dx%d", family, backend.describe(), shape[1], shape[0])
        except CancelledError:  # quitting: the build process was stopped, nothing failed
            log.debug("the %s network's build for %dx%d was stopped", family, shape[1], shape[0])
        except Exception as exc:  # noqa: BLE001 - the stand-in keeps running
            self._build_failed(key, exc)
        finally:
            with self._lock:
                self._building.pop(key, None)

    def _build_failed(self, key: tuple, exc: BaseException) -> None:
        """Count a failed build of (network, shape) once; its last try says so in one warning."""
        failure = self._failed.record(key, exc)
        if failure is None:
            return
        (family, shape), stand_in = key, QUICK_STAND_IN.get(self.name, (self.name,))[0]
        if failure.final:
            log.warning("%s could not build the %s network at %dx%d (%d tries, last: %s): that size runs on %s "
                        "from now on", self.name, family, shape[1], shape[0], failure.attempts, failure.error, stand_in)
        else:
            log.info("%s could not build the %s network at %dx%d (try %d of %d: %s): %s runs it meanwhile", self.name,
                     family, shape[1], shape[0], failure.attempts, MAX_ATTEMPTS, failure.error, stand_in)

    def given_up(self) -> list[str]:
        """Every (network, size) whose build was given up, as "stock 640x480": what the soak reports."""
        return sorted(f"{family} {shape[1]}x{shape[0]}" for (family, shape), failure in self._failed.items()
                      if failure.final)

    def build_failure(self, shape: tuple) -> str | None:
        """Why frames of ``shape`` run on the stand-in for good: the networks whose build there was
        given up, each with its last error; None when none was."""
        said = []
        for (family, failed_shape), failure in self._failed.items():
            if failure.final and tuple(failed_shape) == tuple(shape[:2]) + tuple(failed_shape[2:]):
                said.append(f"{self.name} could not build the {family} network at {shape[1]}x{shape[0]} "
                            f"({failure.attempts} tries, last: {failure.error})")
        if not said:
            return None
        return "; ".join(said) + f": it runs on {QUICK_STAND_IN.get(self.name, (self.name,))[0]}"

    @property
    def builder(self):
        """The build process this session's compiled backends share (None: they build in-process)."""
        return self.options.builder

    def prebuild(self, shapes: list[tuple], first: tuple[str, ...] = ()) -> bool:
        """Hand the next size that is neither built nor cached to the build process: ``shapes`` in
        order, on the networks in ``first``, then on every other network of the catalog. One at a
        time, so a build the frames need now never waits behind a queue of them. False when every
        size is ready."""
        if self.options.builder is None:
            return False
        cls = BACKENDS[self.name]
        packs = [p for p in (*self.catalog.packs.values(), *self.catalog.lighter.values()) if p.num_styles]
        packs.sort(key=lambda p: p.network not in first)
        for pack in packs:
            for shape in shapes:
                future = cls.prebuild(pack, shape[0], shape[1], self.options.builder)
                if future is None:
                    continue
                key = (pack.network, tuple(shape))
                if future.done() and not future.cancelled() and future.exception() is not None:
                    self._build_failed(key, future.exception())  # counted once, however often asked
                    continue  # failed: the build process starts it again only after its backoff
                future.add_done_callback(lambda done, key=key: done.cancelled() or done.exception() is None
                                         or self._build_failed(key, done.exception()))
                return True
        return False

    def get(self, family: str, shape: tuple | None = None) -> Backend:
        """The backend that runs ``family`` for frames of ``shape`` now. In live use a compiled backend
        that has not built that size (nor has it cached) builds it aside while its stand-in runs the
        frames: a frame never waits for a build."""
        with self._lock:
            if not (self._aside() and shape is not None) or self._ready(family, shape):
                backend = self._backends.get(family)
                if backend is None:  # not built yet, or cached (it then loads in milliseconds)
                    backend = self._backends[family] = self._create(family)
                return backend
            self._build_aside(family, shape)
            return self._stand_in(family)

    def _aside(self) -> bool:
        """Live use with a compiled backend: sizes build aside on a thread while a stand-in runs."""
        return self.options.background_warmup and self.name in QUICK_STAND_IN

    def _ready(self, family: str, shape: tuple) -> bool:
        """``family`` runs frames of ``shape`` without a build (lock held)."""
        backend = self._backends.get(family)
        if backend is not None:
            return backend.ready_for(shape[0], shape[1])
        return BACKENDS[self.name].ready(self.catalog.network(family), shape[0], shape[1])

    def level_ready(self, weights: np.ndarray, shape: tuple, light: bool = False) -> bool:
        """Every network this style needs (on the lighter ones with ``light``) runs ``shape`` without a build."""
        parts = self._parts(weights)[1 if light else 0]
        with self._lock:
            return not self._aside() or all(self._ready(p.family, shape) for p in parts)

    def prepare(self, weights: np.ndarray, shape: tuple, light: bool = False) -> list[threading.Thread]:
        """Start building aside what this style needs for ``shape``; the build threads to wait for
        (none when it is ready, or when its build already failed)."""
        parts = self._parts(weights)[1 if light else 0]
        threads = []
        with self._lock:
            for part in parts:
                if self._aside() and not self._ready(part.family, shape):
                    self._build_aside(part.family, shape)
                    thread = self._building.get((part.family, tuple(shape)))
                    if thread is not None:
                        threads.append(thread)
        return threads

    def adopt(self, catalog: StyleCatalog) -> "NetworkBackends":
        """Serve a new catalog (a style was added or removed) without rebuilding what is unchanged: a
        network whose weights are the same keeps its backend (compiled models included); picture
        styles never change the picture network's weights, so adding one costs nothing here."""
        with self._lock:
            for table in (self._backends, self._stand_ins):
                for family, backend in list(table.items()):
                    new = catalog.network(family)
                    if new is None or new.digest != backend.pack.digest:
                        if family == self._first and table is self._backends:
                            raise ValueError(f"the {family} network changed: build new backends")
                        backend.close()
                        del table[family]
                    else:
                        backend.pack = new
            self.catalog = catalog
        return self

    def warm(self, frame: np.ndarray) -> None:
        """Build the stock network for ``frame``'s size and run it once (blocks: a warm-up thread's
        work). The other networks build aside, on their stand-in, when a style first needs them."""
        self.get(self._first).warm(frame)

    @property
    def backends(self) -> dict[str, Backend]:
        return dict(self._backends)

    def _parts(self, weights: np.ndarray) -> tuple[list, list]:
        """(parts, the same on the lighter networks) for a style: split once per style and catalog."""
        key = (np.asarray(weights, np.float32).tobytes(), id(self.catalog))
        if self._split is None or self._split[0] != key:
            parts = self.catalog.parts(np.asarray(weights))
            self._split = (key, (parts, self.catalog.lighten(parts)))
        return self._split[1]

    def lighter(self, weights: np.ndarray) -> str:
        """The lighter network that renders (part of) this style within the quality floor, or ""."""
        full, light = self._parts(weights)
        return next((b.family for a, b in zip(full, light) if a.family != b.family), "")

    def parts(self, weights: np.ndarray, shape: tuple | None = None,
              light: bool = False) -> list[tuple[Backend, np.ndarray, float]]:
        parts = self._parts(weights)[1 if light else 0]
        return [(self.get(p.family, shape), p.vector, p.fraction) for p in parts]

    def run(self, frame: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return blend_outputs([(b.run(frame, v), share) for b, v, share in self.parts(weights)])

    def describe(self) -> str:
        return self._backends[self._first].describe()

    def building(self) -> int:
        """Sizes building aside now."""
        with self._lock:
            return len(self._building)

    def close(self) -> None:
        """Close every backend, after the builds under way on this process's threads have ended: a
        compiler's thread still running when the interpreter exits aborts the process (OpenVINO:
        "terminate called without an active exception", seen quitting the app in its first seconds)."""
        with self._lock:
            self._closed = True
            building = list(self._building.values())
        for thread in building:
            thread.join(defaults.QUIT_WAIT_S)
        with self._lock:
            for backend in [*self._backends.values(), *self._stand_ins.values()]:
                backend.close()

    def __enter__(self) -> "NetworkBackends":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def create_backend(name: str, *, pack, options: BackendOptions = BackendOptions(),
                   oneshot: bool = False) -> NetworkBackends:
    """Backend by name (or ``auto``) for a StyleCatalog (every network of it) or one network's StylePack:
    always NetworkBackends, one backend of that kind per network (``create_single`` makes one network's)."""
    return NetworkBackends(name, as_catalog(pack), options, oneshot)


def around(backend, catalog=None) -> NetworkBackends:
    """``backend`` as the composite: a NetworkBackends made with it (the composite as it is). For callers
    that made one network's backend themselves (tests, tools) and hand it to the pipeline."""
    if isinstance(backend, NetworkBackends):
        return backend
    return NetworkBackends(backend.name, as_catalog(catalog or backend.pack), backend.options, first=backend)
