"""Pipeline outputs: files, the virtual camera, the MJPEG hub and the HTTP server that serves it
(with its remote control, which a live Session provides): rules.py (settings, limits, routes) under
stream_app.py (on aiohttp, loaded only when a server starts) under server.py (StreamServer).

May import: styles (picture uploads), frame and the helpers; never backends or live."""
from .base import NullSink, Sink
from .video import ImageSequenceSink, VideoFileSink, write_image

__all__ = ["ImageSequenceSink", "NullSink", "Sink", "VideoFileSink", "write_image"]
