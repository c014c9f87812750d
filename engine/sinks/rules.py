"""The stream server's rules and bookkeeping, apart from any HTTP library: settings, which Host and
Origin name the server, the client a limit counts (``client_key``), the upload and connection limits,
the routes, the page and the parsing of a style request. server.py runs them on aiohttp (stream_app.py).
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import NamedTuple, Optional, Protocol

from .. import defaults
from ..errors import InputError

BOUNDARY = "stylecamframe"
MAX_BODY = 4096
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::", ""}
LISTEN_BACKLOG = 1024  # connections the kernel holds until accepted: a burst is accepted, not retried a second later
UPLOAD_WINDOW = 60.0  # seconds: pictures_per_minute counts uploads in any window this long
# a Host header (or an Origin's authority): a name or IPv4 address, or [IPv6], and an optional port
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::(?P<port>[0-9]{1,5}))?", re.I)


@dataclass(frozen=True)
class ServeSettings:
    host: str = defaults.SERVE_HOST
    port: int = defaults.SERVE_PORT
    token: Optional[str] = None
    client_timeout: float = 5.0  # a stream reader or a request body that takes no data for this long is dropped
    header_timeout: float = 5.0  # from connecting (or the last reply) to a whole request head, else closed
    body_timeout: float = 60.0  # a whole request body (a 32 MiB picture at ~5 Mbit/s), else 408 and closed
    send_buffer: int = 256 * 1024  # small socket buffers: a stalled client is noticed quickly
    allow_hosts: tuple[str, ...] = ()  # more names a request's Host may carry (--allow-host), e.g. "mybox.lan"
    pictures_per_minute: int = 6  # picture styles one client address may add per minute; more get 429
    pictures_per_minute_total: int = 30  # ... and all addresses together (a LAN bind: many hosts)
    max_connections: int = 256  # open connections in all; idle ones make room, busy ones get 503 beyond it
    max_connections_per_address: int = 64  # ... from one address (all loopback addresses are one)
    max_readers: int = 64  # /stream.mjpg readers at once (each costs one JPEG write a frame); more get 503

    def check(self) -> "ServeSettings":
        if self.host not in LOOPBACK and not self.token:
            raise InputError(f"--host {self.host} exposes the stream to the network: add --token SECRET "
                             "(every request must then carry it)")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be 0 to 65535, got {self.port}")
        for name in self.allow_hosts:
            if not (_is_ip(_bare(name)) or re.fullmatch(r"[a-z0-9_.-]+", _bare(name))):
                raise InputError(f"--allow-host takes a host name or an address, without a port: got {name!r}")
        for field in ("pictures_per_minute", "pictures_per_minute_total", "max_connections",
                      "max_connections_per_address", "max_readers"):
            if getattr(self, field) < 1:
                raise InputError(f"{field} must be at least 1, got {getattr(self, field)}")
        for field in ("client_timeout", "header_timeout", "body_timeout"):
            if not getattr(self, field) > 0:
                raise InputError(f"{field} must be more than 0 seconds, got {getattr(self, field)}")
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


def client_key(address: str) -> str:
    """The address a limit counts a client by: every loopback address is one client (127.0.0.2 is
    this machine as much as 127.0.0.1), an IPv4-mapped IPv6 address its IPv4 one, and an IPv6 address
    its /64 (one host's share of a LAN: it can take any address in it)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class UploadLimit:
    """At most ``per_minute`` uploads from one client (``client_key``) and ``total`` from all of them in
    any minute (a sliding window). ``take`` reserves one before the work; ``refund`` gives it back when
    the upload added nothing."""

    def __init__(self, per_minute: int, total: Optional[int] = None, clock=time.monotonic):
        self.per_minute, self.total, self.clock = per_minute, total or per_minute, clock
        self._seen: dict[str, deque] = {}
        self._all: deque = deque()
        self._lock = threading.Lock()

    def describe(self) -> str:
        """What a 429 says the limit is."""
        return f"{self.per_minute} picture styles a minute from one address" + \
            (f", {self.total} from all" if self.total > self.per_minute else "")

    def take(self, address: str) -> float:
        """0 when this upload may go ahead (it counts), else the seconds until one may."""
        now, key = self.clock(), client_key(address)
        with self._lock:
            for addr in list(self._seen):  # forget the times (and clients) older than the window
                times = self._seen[addr]
                while times and times[0] <= now - UPLOAD_WINDOW:
                    times.popleft()
                if not times:
                    del self._seen[addr]
            while self._all and self._all[0] <= now - UPLOAD_WINDOW:
                self._all.popleft()
            times = self._seen.setdefault(key, deque())
            waits = [q[0] + UPLOAD_WINDOW - now for q, cap in ((times, self.per_minute), (self._all, self.total))
                     if len(q) >= cap]
            if waits:
                return max(waits)
            times.append(now)
            self._all.append(now)
            return 0.0

    def refund(self, address: str) -> None:
        with self._lock:
            times = self._seen.get(client_key(address))
            if times:
                self._all.remove(times.pop())


class Connections:
    """Open connections, in all and per client (``client_key``), on the server's event loop only.

    ``admit`` a new one: under both caps it is taken; at a cap, the oldest connection (of that client,
    or of all) that is not busy with a request is the victim to close to make room (a client that
    connected and said nothing, or sent half a header, or sits idle between requests); when every one
    is busy, the new one is refused."""

    def __init__(self, total: int, per_address: int):
        self.total, self.per_address = total, per_address
        self._open: "OrderedDict[object, list]" = OrderedDict()  # conn -> [client, requests in progress]; oldest first
        self._per: dict[str, int] = {}
        self.accepted = 0  # connections seen, taken or not

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn, client: str) -> tuple[bool, Optional[object]]:
        """(taken, the connection to close first or None)."""
        self.accepted += 1
        victim = None
        if self._per.get(client, 0) >= self.per_address:
            victim = next((c for c, (who, busy) in self._open.items() if who == client and not busy), None)
            if victim is None:
                return False, None
        elif len(self._open) >= self.total:
            victim = next((c for c, (_, busy) in self._open.items() if not busy), None)
            if victim is None:
                return False, None
        if victim is not None:
            self.closed(victim)
        self._open[conn] = [client, 0]
        self._per[client] = self._per.get(client, 0) + 1
        return True, victim

    def busy(self, conn, delta: int) -> None:
        entry = self._open.get(conn)
        if entry is not None:
            entry[1] += delta

    def closed(self, conn) -> None:
        entry = self._open.pop(conn, None)
        if entry is not None:
            self._per[entry[0]] -= 1
            if not self._per[entry[0]]:
                del self._per[entry[0]]


class StyleControl(Protocol):
    """What the stream's remote control needs: a live Session (engine/live/session.py) provides it."""

    def styles(self) -> list[dict]: ...
    def set_style(self, spec: str) -> str: ...  # raises StyleError; returns a label
    def current(self) -> str: ...
    def fps(self) -> float: ...
    def render(self) -> dict: ...  # render_scale, target_fps, governor (its choice in words)
    def add_picture(self, data: bytes, name: str) -> str: ...  # InputError/PictureTooLarge; returns the name


class Route(NamedTuple):
    handler: str  # the StreamApp method that answers (stream_app.py)
    content_types: tuple[str, ...] = ()  # a POST must carry one of these (else 415): none a form can send


ROUTES = {
    ("GET", "/"): Route("page"),
    ("GET", "/stream.mjpg"): Route("stream"),
    ("GET", "/frame.jpg"): Route("frame"),
    ("GET", "/styles"): Route("styles"),
    ("GET", "/stats"): Route("stats"),
    ("POST", "/style"): Route("set_style", ("application/json",)),
    ("POST", "/style/picture"): Route("add_picture", ("image/jpeg", "image/png")),
}
STYLE_REQUEST = 'expected JSON like {"style": "7"} or {"style": "3:0.5,12:0.5"}'


def parse_style_request(body: bytes) -> str:
    """The spec of a POST /style body; ValueError (one line) for anything else, hostile input included:
    a number too big for a float (1e400) or not one (NaN), nesting too deep for the parser."""
    def no_constant(name):
        raise ValueError(f"{name} is not a style")

    try:
        spec = json.loads(body or b"null", parse_constant=no_constant)["style"]
    except RecursionError:
        raise ValueError(f"{STYLE_REQUEST}: nested too deep") from None
    except (ValueError, KeyError, TypeError, IndexError):
        raise ValueError(STYLE_REQUEST) from None
    if isinstance(spec, float) and not math.isfinite(spec):
        raise ValueError(f"{STYLE_REQUEST}: {spec} is not a style id")
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = str(int(spec))
    if not isinstance(spec, str):
        raise ValueError(STYLE_REQUEST)
    return spec


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


