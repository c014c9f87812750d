"""Pipeline outputs."""
from .base import NullSink, Sink
from .video import ImageSequenceSink, VideoFileSink, write_image

__all__ = ["ImageSequenceSink", "NullSink", "Sink", "VideoFileSink", "write_image"]
