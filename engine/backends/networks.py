"""One backend per style network, behind the Backend interface the pipeline already knows.

The stock network is started at once (so a backend that cannot run fails early); the picture
network's backend of the same kind is started the first time a picture style is used, which for
the uncompiled backends takes well under a second. A mix of styles from both networks runs each
network on its own part of the mix and blends the outputs by the parts' shares.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from ..catalog import StyleCatalog
from .base import Backend, BackendOptions

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
        from .base import create_backend

        self.catalog = catalog
        self.options = options
        self._lock = threading.Lock()
        first = create_backend(name, pack=catalog.stock, options=options, oneshot=oneshot)
        self.name = first.name  # what auto picked: the picture network gets the same kind
        self.multiple = first.multiple
        self._backends: dict[str, Backend] = {"stock": first}

    @property
    def pack(self) -> StyleCatalog:
        return self.catalog

    def get(self, family: str) -> Backend:
        with self._lock:
            backend = self._backends.get(family)
            if backend is None:
                from .base import create_backend

                log.info("starting %s for the %s network", self.name, family)
                backend = create_backend(self.name, pack=self.catalog.packs[family], options=self.options)
                self._backends[family] = backend
            return backend

    def adopt(self, catalog: StyleCatalog) -> "NetworkBackends":
        """Serve a new catalog (a style was added or removed) without rebuilding what is unchanged: a
        network whose weights are the same keeps its backend (compiled models included); picture
        styles never change the picture network's weights, so adding one costs nothing here."""
        with self._lock:
            for family, backend in list(self._backends.items()):
                new = catalog.packs.get(family)
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
                self.get(family).run(frame, pack.vector(0))

    @property
    def backends(self) -> dict[str, Backend]:
        return dict(self._backends)

    def parts(self, weights: np.ndarray) -> list[tuple[Backend, np.ndarray, float]]:
        return [(self.get(p.family), p.vector, p.fraction) for p in self.catalog.parts(np.asarray(weights))]

    def run(self, frame: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return blend_outputs([(b.run(frame, v), share) for b, v, share in self.parts(weights)])

    def describe(self) -> str:
        return self._backends["stock"].describe()

    def close(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                backend.close()

    def __enter__(self) -> "NetworkBackends":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
