"""One backend per style network, behind the Backend interface the pipeline already knows.

The stock network is started at once (so a backend that cannot run fails early); the picture
network's backend of the same kind is started the first time a picture style is used. For the
uncompiled backends that takes well under a second. A compiled one builds per frame size (int8:
20–70 s on 2 cores), so in live use (``background_warmup``) the network runs on a quick stand-in
(ONNX Runtime on CPUs) while the compiled backend builds and warms on a thread, then takes over
between two frames. A mix of styles from both networks runs each network on its own part of the
mix and blends the outputs by the parts' shares.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace

import numpy as np

from ..catalog import StyleCatalog
from .base import Backend, BackendOptions
from .registry import BACKENDS, QUICK_STAND_IN, create_backend

log = logging.getLogger(__name__)


def blend_outputs(outputs: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Σ share·output over the networks' uint8 frames (the shares sum to 1)."""
    if len(outputs) == 1:
        return outputs[0][0]
    acc = sum(out.astype(np.float32) * share for out, share in outputs)
    return np.clip(acc + 0.5, 0, 255).astype(np.uint8)


class NetworkBackends:
    """Duck-types Backend for the pipeline (``parts``, ``run``, ``name``, ``describe``, ``close``)."""

    def __init__(self, name: str, catalog: StyleCatalog, options: BackendOptions = BackendOptions(),
                 oneshot: bool = False):
        self.catalog = catalog
        self.options = options
        self._lock = threading.Lock()
        self._closed = False
        first = create_backend(name, pack=catalog.stock, options=options, oneshot=oneshot)
        self.name = first.name  # what auto picked: the picture network gets the same kind
        self.multiple = first.multiple
        self.on_cpu = first.on_cpu
        self.idles_between_runs = first.idles_between_runs
        self._backends: dict[str, Backend] = {"stock": first}
        self._building: dict[str, threading.Thread] = {}
        self._retired: list[Backend] = []  # stand-ins replaced mid-run, closed on the frame thread
        self._split = None  # (weights and catalog, their parts): the last style's split

    def _start(self, family: str, shape) -> Backend:
        """The backend for a network first needed now (called with the lock held)."""
        pack = self.catalog.network(family)
        quick = QUICK_STAND_IN.get(self.name)
        cached = shape is not None and BACKENDS[self.name].ready(pack, shape[0], shape[1])
        if cached or not (self.options.background_warmup and quick and shape is not None):
            log.info("starting %s for the %s network", self.name, family)
            return create_backend(self.name, pack=pack, options=self.options)
        name, changes = quick
        stand_in = create_backend(name, pack=pack, options=replace(self.options, **changes))
        log.info("the %s network runs on %s while %s builds for %dx%d", family, name, self.name, shape[1], shape[0])
        thread = threading.Thread(target=self._build, args=(family, pack, shape), name=f"warm-{family}", daemon=True)
        self._building[family] = thread
        thread.start()
        return stand_in

    def _build(self, family: str, pack, shape) -> None:
        try:
            backend = create_backend(self.name, pack=pack, options=self.options)
            backend.run(np.zeros(shape, np.uint8), pack.calibration_vectors()[0])  # builds for this size
        except Exception as exc:  # the stand-in keeps running
            log.warning("%s for the %s network failed to start: %s", self.name, family, exc)
            return
        with self._lock:
            if self._closed or self.catalog.network(family) is None:
                backend.close()
                return
            self._retired.append(self._backends[family])
            self._backends[family] = backend
            self._building.pop(family, None)
        log.info("the %s network switched to %s", family, backend.describe())

    @property
    def pack(self) -> StyleCatalog:
        return self.catalog

    @property
    def builder(self):
        """The build process this session's compiled backends share (None: they build in-process)."""
        return self.options.builder

    def prebuild(self, shapes: list[tuple], first: str = "") -> int:
        """Queue the builds of ``shapes`` for every network of the catalog (``first``'s network first,
        then the one in use, then the rest); returns how many were queued."""
        if self.options.builder is None:
            return 0
        cls = BACKENDS[self.name]
        packs = [p for p in (*self.catalog.packs.values(), *self.catalog.lighter.values()) if p.num_styles]
        packs.sort(key=lambda p: (p.network != first, p.network not in self._backends))
        queued = 0
        for pack in packs:
            for shape in shapes:
                queued += cls.prebuild(pack, shape[0], shape[1], self.options.builder) is not None
        return queued

    def get(self, family: str, shape: tuple | None = None) -> Backend:
        """The backend running ``family`` now; ``shape`` (of the frames) lets a compiled one build aside."""
        with self._lock:
            backend = self._backends.get(family)
            if backend is None:
                backend = self._backends[family] = self._start(family, shape)
            return backend

    def adopt(self, catalog: StyleCatalog) -> "NetworkBackends":
        """Serve a new catalog (a style was added or removed) without rebuilding what is unchanged: a
        network whose weights are the same keeps its backend (compiled models included); picture
        styles never change the picture network's weights, so adding one costs nothing here."""
        with self._lock:
            for family, backend in list(self._backends.items()):
                new = catalog.network(family)
                if new is None or new.digest != backend.pack.digest:
                    if family == "stock":
                        raise ValueError("the stock network changed: build new backends")
                    backend.close()
                    del self._backends[family]
                else:
                    backend.pack = new
            self.catalog = catalog
        return self

    def warm(self, frame: np.ndarray) -> None:
        """Run each network that has styles once on ``frame`` (compiles it for this size)."""
        for family, pack in self.catalog.packs.items():
            if pack.num_styles:
                self.get(family).warm(frame)

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
        with self._lock:
            retired, self._retired = self._retired, []
        for old in retired:  # replaced by a warmed-up backend; nothing runs it any more
            old.close()
        parts = self._parts(weights)[1 if light else 0]
        return [(self.get(p.family, shape), p.vector, p.fraction) for p in parts]

    def run(self, frame: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return blend_outputs([(b.run(frame, v), share) for b, v, share in self.parts(weights)])

    def describe(self) -> str:
        return self._backends["stock"].describe()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for backend in [*self._backends.values(), *self._retired]:
                backend.close()

    def __enter__(self) -> "NetworkBackends":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
