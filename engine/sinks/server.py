"""The network stream: MJPEG over HTTP with remote style control.

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
Every refusal logs one line (logging, never print).
"""
from __future__ import annotations

import hmac
import html
import ipaddress
import json
import logging
import math
import re
import select
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple, Optional, Protocol
from urllib.parse import parse_qs, urlsplit

from ..errors import InputError, StylecamError
from .. import defaults
from ..styles.pictures import MAX_BYTES as MAX_PICTURE
from ..styles.pictures import PictureTooLarge
from .mjpeg import MjpegHub

log = logging.getLogger(__name__)
BOUNDARY = "stylecamframe"
MAX_BODY = 4096
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::", ""}
UPLOAD_WINDOW = 60.0  # seconds: pictures_per_minute counts uploads in any window this long
# a Host header (or an Origin's authority): a name or IPv4 address, or [IPv6], and an optional port
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::(?P<port>[0-9]{1,5}))?", re.I)


@dataclass(frozen=True)
class ServeSettings:
    host: str = defaults.SERVE_HOST
    port: int = defaults.SERVE_PORT
    token: Optional[str] = None
    client_timeout: float = 5.0  # a client that takes no data for this long is dropped
    send_buffer: int = 256 * 1024  # small socket buffers: a stalled client is noticed quickly
    allow_hosts: tuple[str, ...] = ()  # more names a request's Host may carry (--allow-host), e.g. "mybox.lan"
    pictures_per_minute: int = 6  # picture styles one client address may add per minute; more get 429

    def check(self) -> "ServeSettings":
        if self.host not in LOOPBACK and not self.token:
            raise InputError(f"--host {self.host} exposes the stream to the network: add --token SECRET "
                             "(every request must then carry it)")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be 0 to 65535, got {self.port}")
        for name in self.allow_hosts:
            if not (_is_ip(_bare(name)) or re.fullmatch(r"[a-z0-9_.-]+", _bare(name))):
                raise InputError(f"--allow-host takes a host name or an address, without a port: got {name!r}")
        if self.pictures_per_minute < 1:
            raise InputError(f"pictures_per_minute must be at least 1, got {self.pictures_per_minute}")
        return self


def _bare(host: str) -> str:
    """A host name as compared: lower case, an IPv6 address without its brackets."""
    host = host.strip().lower()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def parse_authority(value: str) -> Optional[tuple[str, int]]:
    """(host, port) of a Host header such as ``localhost:8080`` or ``[::1]:8080`` (port 80 when left
    out), or None when it is not one."""
    m = _AUTHORITY.fullmatch(value.strip())
    if not m:
        return None
    return (m["v6"] or m["name"]).lower(), int(m["port"]) if m["port"] else 80


class HostRule:
    """Which Host and Origin headers name this server.

    A loopback bind answers to localhost, 127.0.0.1 and [::1]; a wildcard bind (0.0.0.0, ::) to
    those and to any IP address (DNS rebinding needs a name: a page cannot make a browser send
    another site's IP address as Host); any bind to its own address and to ``allow_hosts``. The port
    must be the server's.
    """

    def __init__(self, settings: ServeSettings, port: int):
        bound = _bare(settings.host)
        self.any_ip = bound in WILDCARD
        self.names = set(LOOPBACK) if self.any_ip or bound in LOOPBACK else set()
        self.names |= ({bound} - WILDCARD) | {_bare(h) for h in settings.allow_hosts}
        self.port = port

    def accepts(self, host: str) -> bool:
        parsed = parse_authority(host)
        if parsed is None or parsed[1] != self.port:
            return False
        return parsed[0] in self.names or (self.any_ip and _is_ip(parsed[0]))

    @staticmethod
    def same_origin(origin: str, host: Optional[str]) -> bool:
        """The Origin a browser sends from a page this server served: ``http://`` and the same Host."""
        if host is None or not origin.lower().startswith("http://"):
            return False
        theirs, ours = parse_authority(origin[len("http://"):]), parse_authority(host)
        return theirs is not None and theirs == ours


class UploadLimit:
    """At most ``per_minute`` uploads from one client address in any minute (a sliding window).
    ``take`` reserves one before the work; ``refund`` gives it back when the upload added nothing."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, deque] = {}
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0 when this upload may go ahead (it counts), else the seconds until one may."""
        now = self.clock()
        with self._lock:
            for addr in list(self._seen):  # forget the times (and clients) older than the window
                times = self._seen[addr]
                while times and times[0] <= now - UPLOAD_WINDOW:
                    times.popleft()
                if not times:
                    del self._seen[addr]
            times = self._seen.setdefault(address, deque())
            if len(times) >= self.per_minute:
                return times[0] + UPLOAD_WINDOW - now
            times.append(now)
            return 0.0

    def refund(self, address: str) -> None:
        with self._lock:
            times = self._seen.get(address)
            if times:
                times.pop()


def _hung_up(conn: socket.socket) -> bool:
    """The client closed its end (readable, and a peek finds the end of the stream)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class StyleControl(Protocol):
    """What the stream's remote control needs: a live Session (engine/live/session.py) provides it."""

    def styles(self) -> list[dict]: ...
    def set_style(self, spec: str) -> str: ...  # raises StyleError; returns a label
    def current(self) -> str: ...
    def fps(self) -> float: ...
    def render(self) -> dict: ...  # render_scale, target_fps, governor (its choice in words)
    def add_picture(self, data: bytes, name: str) -> str: ...  # InputError/PictureTooLarge; returns the name


class Route(NamedTuple):
    handler: str  # the Handler method that answers
    content_types: tuple[str, ...] = ()  # a POST must carry one of these (else 415): none a form can send


ROUTES = {
    ("GET", "/"): Route("_page"),
    ("GET", "/stream.mjpg"): Route("_stream"),
    ("GET", "/frame.jpg"): Route("_frame"),
    ("GET", "/styles"): Route("_styles"),
    ("GET", "/stats"): Route("_stats"),
    ("POST", "/style"): Route("_set_style", ("application/json",)),
    ("POST", "/style/picture"): Route("_add_picture", ("image/jpeg", "image/png")),
}


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
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        server_cls = type("Server", (_QuietServer,), {"address_family": family})
        try:
            self.httpd = server_cls((settings.host, settings.port), StreamHandler)
        except OSError as exc:
            raise InputError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
        self.httpd.stream = self  # what the handlers serve
        self.port = self.httpd.server_address[1]
        self.hosts = HostRule(settings, self.port)
        self.uploads = UploadLimit(settings.pictures_per_minute)
        # serve_forever notices close() at its next poll: 0.1 s keeps turning the stream off quick
        # (the default 0.5 s held the app's toggle and every test's teardown) for 10 idle wake-ups a second
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="http", daemon=True)

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


class StreamHandler(BaseHTTPRequestHandler):
    """One request; the stream server it belongs to is ``self.stream`` (routes: ROUTES)."""

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
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj) -> None:
        self._reply(code, json.dumps(obj).encode(), "application/json")

    def _error(self, code: int, message: str, extra: Optional[dict] = None) -> None:
        self._reply(code, json.dumps({"error": message, "message": message}).encode(), "application/json", extra)

    def _refuse(self, code: int, message: str, level: int = logging.WARNING, extra: Optional[dict] = None) -> None:
        """Answer a refused request with one log line; a small unread body is read first, so that the
        client gets the answer rather than a connection reset."""
        log.log(level, "refused %s %r from %s: %d %s", self.command, urlsplit(self.path).path[:200],
                self.client_address[0], code, message)
        if not self._body_read:
            self._discard_body()
        self._error(code, message, extra)

    def _discard_body(self) -> None:
        try:
            left = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if not 0 < left <= MAX_PICTURE:
            return
        self.connection.settimeout(self.stream.settings.client_timeout)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:  # a client that sends less than it said: answer anyway
            return
        self._body_read = True

    def _read_body(self, length: int) -> bytes:
        self._body_read = True
        return self.rfile.read(length)

    def _authorized(self) -> bool:
        if not self.stream.settings.token:
            return True
        query = parse_qs(urlsplit(self.path).query)
        given = (query.get("token") or [""])[0]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        given = self.headers.get("X-Stylecam-Token", given)
        return hmac.compare_digest(given.encode(), self.stream.settings.token.encode())

    def _route(self, method: str) -> None:
        self._body_read = method == "GET"
        path = urlsplit(self.path).path
        refusal = self._refusal(method, path)
        if refusal is not None:
            self._refuse(*refusal)
            return
        getattr(self, ROUTES[(method, path)].handler)()

    def _refusal(self, method: str, path: str) -> Optional[tuple]:
        """(code, message[, log level]) when this request is not to be answered, checked in this
        order: Host (DNS rebinding), token, cross-site (Sec-Fetch-Site, Origin), path, Content-Type."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            return 400, "more than one Host header"
        host = hosts[0] if hosts else None  # no Host: an HTTP/1.0 client, never a browser
        if host is not None and not self.stream.hosts.accepts(host):
            return 403, f"this server does not answer to Host {host[:100]!r} (see --allow-host)"
        if not self._authorized():
            return 401, "missing or wrong token"
        if self.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
            return 403, "cross-site requests are refused"
        origin = self.headers.get("Origin")
        if origin is not None and not self.stream.hosts.same_origin(origin, host):
            return 403, f"cross-origin requests are refused (Origin {origin[:100]!r})"
        route = ROUTES.get((method, path))
        if route is None:
            if any(p == path for (_, p) in ROUTES):
                return 405, f"{method} is not allowed on {path}", logging.INFO
            return 404, f"no such path: {path[:100]!r} (try /, /stream.mjpg, /frame.jpg, /styles, /style)", \
                logging.INFO
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if route.content_types and ctype not in route.content_types:
            return 415, f"{method} {path} needs Content-Type {' or '.join(route.content_types)}"
        return None

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def do_DELETE(self):
        self._route("DELETE")

    def do_OPTIONS(self):  # a CORS preflight: refused like any other method (no CORS headers, ever)
        self._route("OPTIONS")

    # -- endpoints ----------------------------------------------------------------------
    def _query_token(self) -> str:
        return f"?token={self.stream.settings.token}" if self.stream.settings.token else ""

    def _page(self) -> None:
        buttons = "".join(
            f'<button onclick="pick(\'{s["id"]}\')">{html.escape(s["name"])}</button>'
            for s in self.stream.control.styles())
        body = PAGE.format(q=html.escape(self._query_token()), buttons=buttons).encode()
        self._reply(200, body, "text/html; charset=utf-8",  # no other site may frame it (clickjacking)
                    {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"})

    def _styles(self) -> None:
        self._json(200, {"styles": self.stream.control.styles(), "current": self.stream.control.current()})

    def _stats(self) -> None:
        self._json(200, {"fps": self.stream.control.fps(), **self.stream.control.render(), "clients": self.stream.clients,
                         "dropped": self.stream.dropped, "encoded": self.stream.hub.encoded})

    def _frame(self) -> None:
        jpeg = self.stream.hub.latest_jpeg()
        if jpeg is None:
            self._error(503, "no frame yet")
            return
        self._reply(200, jpeg, "image/jpeg")

    def _body_length(self, limit: int, what: str) -> Optional[int]:
        """The request's Content-Length, or None after answering 411/413."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._refuse(411, "Content-Length required", logging.INFO)
            return None
        if length > limit:
            self._refuse(413, f"{what} too large ({length} bytes; the limit is {limit})")
            return None
        return length

    def _set_style(self) -> None:
        length = self._body_length(MAX_BODY, "style request")
        if length is None:
            return
        try:
            spec = json.loads(self._read_body(length) or b"null")["style"]
            if isinstance(spec, (int, float)) and not isinstance(spec, bool):
                spec = str(int(spec))
            if not isinstance(spec, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._refuse(400, 'expected JSON like {"style": "7"} or {"style": "3:0.5,12:0.5"}', logging.INFO)
            return
        try:
            label = self.stream.control.set_style(spec)
        except StylecamError as exc:
            self._refuse(400, str(exc), logging.INFO)
            return
        self._json(200, {"style": spec, "name": label, "message": f"style: {label}"})

    def _add_picture(self) -> None:
        length = self._body_length(MAX_PICTURE, "style picture")
        if length is None:
            return
        if length <= 0:
            self._refuse(400, "the body must be the picture (JPEG or PNG)")
            return
        wait = self.stream.uploads.take(self.client_address[0])
        if wait > 0:
            self._refuse(429, f"at most {self.stream.settings.pictures_per_minute} picture styles a minute: try again in "
                              f"{math.ceil(wait)} s", extra={"Retry-After": str(math.ceil(wait))})
            return
        data = self._read_body(length)
        name = (parse_qs(urlsplit(self.path).query).get("name") or [""])[0]
        try:
            added = self.stream.control.add_picture(data, name)
        except PictureTooLarge as exc:
            self.stream.uploads.refund(self.client_address[0])  # only styles added count
            self._refuse(413, str(exc))
            return
        except StylecamError as exc:
            self.stream.uploads.refund(self.client_address[0])
            self._refuse(400, str(exc))
            return
        self._json(200, {"style": added, "name": added, "message": f"new picture style: {added}"})

    def _stream(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.stream.settings.send_buffer)
        self.connection.settimeout(self.stream.settings.client_timeout)
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.stream._count(+1)
        dropped = False
        try:
            with self.stream.hub.watch() as watcher:
                while True:
                    jpeg = watcher.next(timeout=0.5)
                    if jpeg is None:
                        if self.stream.hub.closed or _hung_up(self.connection):
                            break  # a client that left while no frames came must not count as a reader
                        continue  # no new frame yet (paused source, an idle app): keep waiting
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
        except socket.timeout:
            dropped = True
            log.info("dropped stalled client %s", self.client_address[0])
        except OSError as exc:  # the client went away (broken pipe, reset): normal for a stream
            log.debug("client %s left: %s", self.client_address[0], exc)
        finally:
            self.stream._count(-1, dropped)
            self.close_connection = True

    @property
    def stream(self) -> "StreamServer":
        return self.server.stream
