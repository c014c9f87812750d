"""The network stream: MJPEG over HTTP with remote style control, served by aiohttp (stream_app.py).

GET /stream.mjpg (multipart MJPEG: OBS Media Source, VLC, ffmpeg, browsers, cv2.VideoCapture),
GET /frame.jpg, GET /styles, POST /style {"style": SPEC} (Content-Type: application/json),
POST /style/picture?name=N (a JPEG or PNG body, Content-Type image/jpeg or image/png: makes a picture
style and selects it; ServeSettings.pictures_per_minute per client address, then 429), GET /stats
(pipeline FPS, render scale, clients), GET / (a page with the stream and style buttons).

Loopback by default, without a token; any other address requires a token on every request. Safe next
to a browser (docs/server-security.md), checked on every request before anything else:
- Host must name this server (DNS rebinding gets 403): the loopback names for a loopback bind, the bound
  address and ``allow_hosts`` otherwise, always with the server's port. A missing Host (HTTP/1.0
  clients) is accepted: browsers always send one.
- a request a browser marks ``Sec-Fetch-Site: cross-site``, or whose ``Origin`` is not the server's own
  (``http://`` + its Host), gets 403; a POST without its JSON or image Content-Type gets 415, so an HTML
  form or a no-cors fetch cannot write. No CORS headers are sent, so no other site may read a reply.
Underneath, limits no client can lift (ServeSettings): a whole request head within ``header_timeout``,
a body that never pauses longer than ``client_timeout``, connections capped in all and per address,
stream readers capped, bodies capped by their declared length. Every request gets a status, and every
refusal logs one line (logging, never print).

This module holds the settings, the rules and the bookkeeping; it never imports aiohttp, which is
loaded when a server is made (``stylecam --help`` and ``import engine`` stay quick).
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Optional

from ..errors import InputError
from .mjpeg import MjpegHub
from .rules import (BOUNDARY, LISTEN_BACKLOG, LOOPBACK, MAX_BODY, PAGE, ROUTES, Connections, HostRule, Route,
                    ServeSettings, StyleControl, UploadLimit, client_key, free_picture_name, parse_authority,
                    parse_style_request)

__all__ = ["BOUNDARY", "MAX_BODY", "PAGE", "ROUTES", "Connections", "HostRule", "LOOPBACK", "Route", "ServeSettings",
           "StreamServer", "StyleControl", "UploadLimit", "client_key", "free_picture_name", "parse_authority",
           "parse_style_request"]
log = logging.getLogger(__name__)


class StreamServer:
    """aiohttp on an event loop of its own thread; the socket is bound here, so a taken port fails at once."""

    def __init__(self, hub: MjpegHub, control: StyleControl, settings: ServeSettings = ServeSettings()):
        self.hub, self.control, self.settings = hub, control, settings.check()
        self.clients = 0  # stream readers now
        self.dropped = 0  # stalled stream readers dropped
        self._lock = threading.Lock()
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((settings.host, settings.port))
            self._sock.listen(LISTEN_BACKLOG)
            self._sock.setblocking(False)
        except OSError as exc:
            self._sock.close()
            raise InputError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
        self.port = self._sock.getsockname()[1]
        self.hosts = HostRule(settings, self.port)
        self.uploads = UploadLimit(settings.pictures_per_minute, settings.pictures_per_minute_total)
        self.connections = Connections(settings.max_connections, settings.max_connections_per_address)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._app = self._runner = None
        self._ready = threading.Event()
        self._failed: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "StreamServer":
        self._thread.start()
        if not self._ready.wait(30) or self._failed is not None:
            self.close()
            raise InputError(f"the stream server did not start: {self._failed or 'timed out'}")
        return self

    def close(self) -> None:
        """Stop serving: every connection closed, stream readers ended, the port free again."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=5)
            except Exception as exc:  # the thread is a daemon: report it, do not hang the caller
                log.warning("the stream server did not stop cleanly: %s: %s", type(exc).__name__, exc)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._sock.close()

    def _serve(self) -> None:
        from aiohttp import web

        from .stream_app import StreamApp

        self._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def setup():
            self._app = StreamApp(self, loop)
            self._runner = web.ServerRunner(self._app.make_server(), handle_signals=False, shutdown_timeout=1.0)
            await self._runner.setup()
            await web.SockSite(self._runner, self._sock).start()

        try:
            loop.run_until_complete(setup())
        except Exception as exc:
            self._failed = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:  # what aiohttp left (a lingering read of a refused body): ended, not destroyed pending
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.close()

    async def _stop(self) -> None:
        await self._app.close()
        await self._runner.cleanup()

    def _count(self, delta: int, dropped: bool = False) -> None:
        with self._lock:
            self.clients += delta
            self.dropped += int(dropped)
