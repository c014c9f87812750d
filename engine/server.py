"""The network stream: MJPEG over HTTP with remote style control.

GET /stream.mjpg (multipart MJPEG: OBS Media Source, VLC, ffmpeg, browsers, cv2.VideoCapture),
GET /frame.jpg, GET /styles, POST /style {"style": SPEC}, POST /style/picture?name=N (an image body:
makes a picture style and selects it), GET /stats (pipeline FPS, render scale, clients), GET /
(a page with the stream and style buttons). Loopback by default; any other address requires a token on every request.
"""
from __future__ import annotations

import hmac
import html
import json
import logging
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Protocol
from urllib.parse import parse_qs, urlsplit

from .errors import InputError, StylecamError
from . import defaults
from .pictures import MAX_BYTES as MAX_PICTURE
from .pictures import PictureTooLarge
from .sinks.mjpeg import MjpegHub

log = logging.getLogger(__name__)
BOUNDARY = "stylecamframe"
MAX_BODY = 4096
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class ServeSettings:
    host: str = defaults.SERVE_HOST
    port: int = defaults.SERVE_PORT
    token: Optional[str] = None
    client_timeout: float = 5.0  # a client that takes no data for this long is dropped
    send_buffer: int = 256 * 1024  # small socket buffers: a stalled client is noticed quickly

    def check(self) -> "ServeSettings":
        if self.host not in LOOPBACK and not self.token:
            raise InputError(f"--host {self.host} exposes the stream to the network: add --token SECRET "
                             "(every request must then carry it)")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be 0 to 65535, got {self.port}")
        return self


class StyleControl(Protocol):
    """What the stream's remote control needs: a live Session (engine/session.py) provides it."""

    def styles(self) -> list[dict]: ...
    def set_style(self, spec: str) -> str: ...  # raises StyleError; returns a label
    def current(self) -> str: ...
    def fps(self) -> float: ...
    def render(self) -> dict: ...  # render_scale, target_fps, governor (its choice in words)
    def add_picture(self, data: bytes, name: str) -> str: ...  # InputError/PictureTooLarge; returns the name


def free_picture_name(catalog, wanted: str = "") -> str:
    """The name asked for, or the first free 'Picture N'."""
    if wanted.strip():
        return wanted.strip()
    taken = {s.slug for s in catalog.styles}
    return next(f"Picture {k}" for k in range(1, 10_000) if f"picture-{k}" not in taken)


PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>stylecam</title><style>body{{font-family:sans-serif;background:#16161a;color:#eee;margin:1em}}
img{{max-width:100%;border-radius:6px}}button{{margin:3px;padding:8px 10px;border-radius:6px;border:0;
background:#2d2d35;color:#eee}}button:active{{background:#556}}</style></head><body>
<img src="/stream.mjpg{q}" alt="stylecam stream"><div id="styles">{buttons}</div><p id="msg"></p>
<script>
async function pick(spec) {{
  const r = await fetch("/style{q}", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                       body: JSON.stringify({{style: spec}})}});
  document.getElementById("msg").textContent = (await r.json()).message || "";
}}
</script></body></html>"""


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away is normal for a stream: one debug line, never a traceback on stderr."""

    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            log.debug("client %s went away: %s", client_address[0], exc)
        else:
            log.warning("request from %s failed: %s: %s", client_address[0], type(exc).__name__, exc)


class StreamServer:
    """ThreadingHTTPServer in a background thread; one handler thread per client."""

    def __init__(self, hub: MjpegHub, control: StyleControl, settings: ServeSettings = ServeSettings()):
        self.hub, self.control, self.settings = hub, control, settings.check()
        self.clients = 0
        self.dropped = 0
        self._lock = threading.Lock()
        handler = _make_handler(self)
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        server_cls = type("Server", (_QuietServer,), {"address_family": family})
        try:
            self.httpd = server_cls((settings.host, settings.port), handler)
        except OSError as exc:
            raise InputError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "StreamServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=2.0)

    def _count(self, delta: int, dropped: bool = False) -> None:
        with self._lock:
            self.clients += delta
            self.dropped += int(dropped)


def _make_handler(server: StreamServer):
    settings = server.settings

    class Handler(BaseHTTPRequestHandler):
        server_version = "stylecam"
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):  # route to logging, not stderr
            log.debug("%s " + fmt, self.client_address[0], *args)

        # -- helpers ------------------------------------------------------------------------
        def _reply(self, code: int, body: bytes, ctype: str, extra: Optional[dict] = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj) -> None:
            self._reply(code, json.dumps(obj).encode(), "application/json")

        def _error(self, code: int, message: str) -> None:
            self._json(code, {"error": message, "message": message})

        def _authorized(self) -> bool:
            if not settings.token:
                return True
            query = parse_qs(urlsplit(self.path).query)
            given = (query.get("token") or [""])[0]
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[7:]
            given = self.headers.get("X-Stylecam-Token", given)
            return hmac.compare_digest(given.encode(), settings.token.encode())

        def _route(self, method: str) -> None:
            path = urlsplit(self.path).path
            routes = {("GET", "/"): self._page, ("GET", "/stream.mjpg"): self._stream,
                      ("GET", "/frame.jpg"): self._frame, ("GET", "/styles"): self._styles,
                      ("POST", "/style"): self._set_style, ("GET", "/stats"): self._stats,
                      ("POST", "/style/picture"): self._add_picture}
            if not self._authorized():
                self._error(401 if settings.token else 403, "missing or wrong token")
                return
            handler = routes.get((method, path))
            if handler is None:
                known = {p for (_, p) in routes}
                if path in known:
                    self._error(405, f"{method} is not allowed on {path}")
                else:
                    self._error(404, f"no such path: {path} (try /, /stream.mjpg, /frame.jpg, /styles, /style)")
                return
            handler()

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_DELETE(self):
            self._route("DELETE")

        # -- endpoints ----------------------------------------------------------------------
        def _query_token(self) -> str:
            return f"?token={settings.token}" if settings.token else ""

        def _page(self) -> None:
            buttons = "".join(
                f'<button onclick="pick(\'{s["id"]}\')">{html.escape(s["name"])}</button>'
                for s in server.control.styles())
            body = PAGE.format(q=html.escape(self._query_token()), buttons=buttons).encode()
            self._reply(200, body, "text/html; charset=utf-8")

        def _styles(self) -> None:
            self._json(200, {"styles": server.control.styles(), "current": server.control.current()})

        def _stats(self) -> None:
            self._json(200, {"fps": server.control.fps(), **server.control.render(), "clients": server.clients,
                             "dropped": server.dropped, "encoded": server.hub.encoded})

        def _frame(self) -> None:
            jpeg = server.hub.latest_jpeg()
            if jpeg is None:
                self._error(503, "no frame yet")
                return
            self._reply(200, jpeg, "image/jpeg")

        def _body_length(self, limit: int, what: str) -> Optional[int]:
            """The request's Content-Length, or None after answering 411/413."""
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._error(411, "Content-Length required")
                return None
            if length > limit:
                log.warning("refused a %d-byte %s from %s (limit %d)", length, what, self.client_address[0], limit)
                self._error(413, f"{what} too large ({length} bytes; the limit is {limit})")
                return None
            return length

        def _set_style(self) -> None:
            length = self._body_length(MAX_BODY, "style request")
            if length is None:
                return
            try:
                spec = json.loads(self.rfile.read(length) or b"null")["style"]
                if isinstance(spec, (int, float)) and not isinstance(spec, bool):
                    spec = str(int(spec))
                if not isinstance(spec, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                self._error(400, 'expected JSON like {"style": "7"} or {"style": "3:0.5,12:0.5"}')
                return
            try:
                label = server.control.set_style(spec)
            except StylecamError as exc:
                self._error(400, str(exc))
                return
            self._json(200, {"style": spec, "name": label, "message": f"style: {label}"})

        def _add_picture(self) -> None:
            length = self._body_length(MAX_PICTURE, "style picture")
            if length is None:
                return
            if length <= 0:
                log.warning("refused an empty style picture from %s", self.client_address[0])
                self._error(400, "the body must be the picture (JPEG or PNG)")
                return
            data = self.rfile.read(length)
            name = (parse_qs(urlsplit(self.path).query).get("name") or [""])[0]
            try:
                added = server.control.add_picture(data, name)
            except PictureTooLarge as exc:
                log.warning("refused a style picture from %s: %s", self.client_address[0], exc)
                self._error(413, str(exc))
                return
            except StylecamError as exc:
                log.warning("refused a style picture from %s: %s", self.client_address[0], exc)
                self._error(400, str(exc))
                return
            self._json(200, {"style": added, "name": added, "message": f"new picture style: {added}"})

        def _stream(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.send_buffer)
            self.connection.settimeout(settings.client_timeout)
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            server._count(+1)
            dropped = False
            try:
                with server.hub.watch() as watcher:
                    while True:
                        jpeg = watcher.next(timeout=settings.client_timeout)
                        if jpeg is None:
                            if server.hub.closed:
                                break
                            continue  # no new frame yet (paused source): keep waiting
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
            except socket.timeout:
                dropped = True
                log.info("dropped stalled client %s", self.client_address[0])
            except OSError as exc:  # the client went away (broken pipe, reset): normal for a stream
                log.debug("client %s left: %s", self.client_address[0], exc)
            finally:
                server._count(-1, dropped)
                self.close_connection = True

    return Handler
