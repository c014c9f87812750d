"""Pipeline outputs: files, the virtual camera, the MJPEG hub and the HTTP server that serves it
(with its remote control, which a live Session provides): rules.py (settings, limits, routes) under
stream_app.py (on aiohttp, loaded only when a server starts) under server.py (StreamServer). Styles
for the picture uploads; never backends or live.

May import: engine.styles, engine.frame, engine.defaults, engine.errors, engine.metrics, engine.slot"""
from .base import NullSink, Sink
from .video import ImageSequenceSink, VideoFileSink, write_image

__all__ = ["ImageSequenceSink", "NullSink", "Sink", "VideoFileSink", "write_image"]
