"""stylecam's engine: everything that works without a window. The engine never imports Qt.

The names below load their module when first used (PEP 562), so ``stylecam --help`` answers without
importing OpenCV, numba, the backends or importlib.metadata.

The engine is the library at the bottom: the command line (stylecam/), the app (app/) and the lab tools
(lab/) import it, never the other way round.

May import: nothing
"""
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


def _module(path: str):
    """The module of ``_LAZY`` at ``path``, imported by a plain import statement (tests/test_layout.py reads
    imports from the code, so nothing is loaded from a computed name)."""
    if path == "version":
        from . import version as module
    elif path == "backends":
        from . import backends as module
    elif path == "video.capture":
        from .video import capture as module
    elif path == "live.pipeline":
        from .live import pipeline as module
    elif path == "styles.packs":
        from .styles import packs as module
    else:
        raise KeyError(f"no import for engine.{path}: add it to _module")
    return module


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_module(_LAZY[name]), name)
    globals()[name] = value  # looked up once
    return value
