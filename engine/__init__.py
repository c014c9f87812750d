"""stylecam's engine: everything that works without a window. The engine never imports Qt."""
from .backends import Backend, BackendOptions, available_backends, create_backend
from .video.capture import Frame, Source, SourceSettings, open_source
from .errors import (BackendUnavailable, InputError, ModelError, SinkError, SourceError, SourceLost,
                     StyleError, StylecamError)
from .live.pipeline import FrameResult, Pipeline, StyleSettings
from .styles.packs import StyleInfo, StylePack
from .version import __version__

__all__ = [
    "__version__",
    "Backend", "BackendOptions", "available_backends", "create_backend", "Frame", "Source", "SourceSettings",
    "open_source", "BackendUnavailable", "InputError", "ModelError", "SinkError", "SourceError", "SourceLost",
    "StyleError", "StylecamError", "FrameResult", "Pipeline", "StyleSettings", "StyleInfo", "StylePack",
]
