"""stylecam's engine: everything that works without a window. The engine never imports Qt.

The names below load their module when first used (PEP 562), so ``stylecam --help`` answers without
importing OpenCV, numba, the backends or importlib.metadata.
"""
import importlib

from .errors import (BackendUnavailable, InputError, ModelError, SinkError, SourceError, SourceLost,
                     StyleError, StylecamError)

_LAZY = {
    "__version__": "version",
    "Backend": "backends", "BackendOptions": "backends", "available_backends": "backends",
    "create_backend": "backends", "Frame": "video.capture", "Source": "video.capture",
    "SourceSettings": "video.capture", "open_source": "video.capture", "FrameResult": "live.pipeline",
    "Pipeline": "live.pipeline", "StyleSettings": "live.pipeline", "StyleInfo": "styles.packs",
    "StylePack": "styles.packs",
}

__all__ = [
    "__version__",
    "Backend", "BackendOptions", "available_backends", "create_backend", "Frame", "Source", "SourceSettings",
    "open_source", "BackendUnavailable", "InputError", "ModelError", "SinkError", "SourceError", "SourceLost",
    "StyleError", "StylecamError", "FrameResult", "Pipeline", "StyleSettings", "StyleInfo", "StylePack",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value
