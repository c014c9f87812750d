"""The stream server's HTTP side on aiohttp: its connection limits, request handlers and frame fan-out.

Imported only when a StreamServer is made (server.py), so that `import engine` and `stylecam --help`
never load aiohttp. Everything here runs on the server's one event-loop thread, except the session's
remote-control calls (a thread pool: they may take a second) and the frame pump (a thread that waits on
the MJPEG hub and hands each new JPEG to the loop).
"""
from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import math
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from aiohttp import web

from ..errors import StyleError, StylecamError
from ..styles.mix import StyleMix
from ..styles.pictures import MAX_BYTES as MAX_PICTURE
from ..styles.pictures import PictureTooLarge
from ..styles.user_styles import StyleSaveError, check_name
from .rules import BOUNDARY, MAX_BODY, PAGE, ROUTES, client_key, parse_style_request

log = logging.getLogger("engine.sinks.server")  # one logger for the stream server's refusals
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Server": "stylecam"}


class Refused(Exception):
    """A request answered with an error status: (code, message, log level, extra headers)."""

    def __init__(self, code: int, message: str, level: int = logging.WARNING, extra: Optional[dict] = None,
                 close: bool = False):
        super().__init__(message)
        self.code, self.message, self.level, self.extra, self.close = code, message, level, extra or {}, close


def _connection_refusal(code: int, message: str) -> bytes:
    body = json.dumps({"error": message, "message": message}).encode()
    return (f"HTTP/1.1 {code} {'Service Unavailable' if code == 503 else 'Error'}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n").encode() + body


class _ParserLog(logging.LoggerAdapter):
    """aiohttp's own refusals (a malformed request line or header, a bad Content-Length: 400 before any
    handler runs) as one line like ours, not an ERROR with a traceback per hostile client."""

    def exception(self, msg, *args, exc_info=True, **kwargs):
        exc = exc_info if isinstance(exc_info, BaseException) else None
        status = getattr(exc, "status", None) or getattr(exc, "code", None)
        if isinstance(status, int) and 400 <= status < 500:
            reason = " ".join(str(getattr(exc, "message", exc)).split())[:200]
            self.logger.info("refused a malformed request from %s: %d %s", args[0] if args else "?", status, reason)
        else:
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)


class LimitedServer(web.Server):
    """aiohttp's low-level server, counting connections in total and per client address (server.py's
    Connections): when a cap is reached the oldest connection that has not sent a whole request is
    closed to make room; when every one is busy with a request, the new one gets 503 at once."""

    def __init__(self, handler, connections, **kwargs):
        """``connections``: the server's rules.Connections."""
        super().__init__(handler, **kwargs)
        self.limits = connections
        self._quiet_until = 0.0
        self._shed = 0

    def connection_made(self, handler, transport) -> None:
        super().connection_made(handler, transport)
        peer = transport.get_extra_info("peername")
        admitted, victim = self.limits.admit(transport, client_key(peer[0] if peer else ""))
        if victim is not None:
            victim.abort()
        if not admitted:
            transport.write(_connection_refusal(503, "too many connections: try again in a moment"))
            transport.close()
        if victim is not None or not admitted:
            self._shed += 1
            if time.monotonic() >= self._quiet_until:  # one line per 10 s under a flood, not one per connection
                log.warning("connection limit (%d in all, %d per address) reached: %d connections closed or refused "
                            "(latest from %s)", self.limits.total, self.limits.per_address, self._shed,
                            peer[0] if peer else "?")
                self._quiet_until, self._shed = time.monotonic() + 10.0, 0

    def connection_lost(self, handler, exc=None) -> None:
        super().connection_lost(handler, exc)
        if handler.transport is not None:
            self.limits.closed(handler.transport)


class Frames:
    """The newest frame on the loop, as its ready multipart part (made once, on the pump's thread, for
    every reader): each reader awaits one newer than the one it sent last, so a slow reader skips frames
    instead of queueing them. ``tick`` wakes the readers without a frame (a reader then checks whether
    its client left or the server closes)."""

    def __init__(self):
        self.seq, self.part = 0, None
        self._new = asyncio.Event()

    def publish(self, seq: int, part: Optional[bytes]) -> None:
        self.seq, self.part = seq, part
        self.tick()

    def tick(self) -> None:
        new, self._new = self._new, asyncio.Event()
        new.set()

    async def newer(self, seq: int) -> tuple[int, Optional[bytes]]:
        """(seq, part) of a newer frame, or (seq, None) at the next tick without one."""
        if self.seq <= seq:
            await self._new.wait()
        return (self.seq, self.part) if self.seq > seq else (seq, None)


class StreamApp:
    """The routes (server.ROUTES) and the rules checked before them, for one StreamServer."""

    def __init__(self, server, loop: asyncio.AbstractEventLoop):
        """``server``: the server.StreamServer this serves (its settings, hub, control and limits)."""
        self.server, self.settings, self.loop = server, server.settings, loop
        self.frames = Frames()
        self.closing = asyncio.Event()
        self.control_pool = ThreadPoolExecutor(4, thread_name_prefix="http-control")
        self.upload_pool = ThreadPoolExecutor(1, thread_name_prefix="http-upload")  # uploads one at a time
        self._pump = threading.Thread(target=self._pump_frames, name="mjpeg-pump", daemon=True)
        self._pump.start()

    def make_server(self) -> LimitedServer:
        s = self.settings
        return LimitedServer(self.handle, self.server.connections, loop=self.loop,
                             keepalive_timeout=s.header_timeout,  # from connect (and after each reply) to a whole request head
                             lingering_time=s.client_timeout,  # an unread body is read and dropped this long at most
                             max_line_size=8190, max_field_size=8190, access_log=None,
                             logger=_ParserLog(log, {}))

    async def close(self) -> None:
        self.closing.set()
        self.frames.tick()  # wake every reader: it sees ``closing``
        self._pump.join(timeout=1.0)
        self.control_pool.shutdown(wait=False, cancel_futures=True)
        self.upload_pool.shutdown(wait=False, cancel_futures=True)

    def _pump_frames(self) -> None:
        """The hub's JPEGs to the loop, each made into its multipart part once; a tick every 0.5 s without
        one. Not a reader of its own: the hub encodes only while a stream runs."""
        watcher = self.server.hub.watch()
        while not self.closing.is_set() and not self.server.hub.closed:
            jpeg = watcher.next(timeout=0.5)
            if self.closing.is_set():
                return
            try:
                if jpeg is None:
                    self.loop.call_soon_threadsafe(self.frames.tick)
                else:
                    part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                            .encode() + jpeg + b"\r\n")
                    self.loop.call_soon_threadsafe(self.frames.publish, watcher.seq, part)
            except RuntimeError:  # the loop closed under us
                return

    # -- every request -------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        limits = self.server.connections
        limits.busy(request.transport, +1)
        try:
            refusal = self._refusal(request)
            if refusal is not None:
                raise refusal
            return await getattr(self, ROUTES[(request.method, request.rel_url.raw_path)].handler)(request)
        except Refused as exc:
            return self._refuse(request, exc)
        except Exception as exc:  # a bug or an unforeseen failure: still a status, and one line for the client
            log.error("%s %r from %s failed", request.method, request.rel_url.raw_path[:200], request.remote,
                      exc_info=True)
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            return self._error(500, f"internal error: {type(exc).__name__}{': ' + first if first else ''}")
        finally:
            limits.busy(request.transport, -1)

    def _refuse(self, request: web.BaseRequest, exc: Refused) -> web.Response:
        log.log(exc.level, "refused %s %r from %s: %d %s", request.method, request.rel_url.raw_path[:200],
                request.remote, exc.code, exc.message)
        resp = self._error(exc.code, exc.message, exc.extra)
        if exc.close or (request.content_length or 0) > MAX_PICTURE:
            resp.force_close()  # a body too slow, or too much to read and drop: close instead
        return resp

    @staticmethod
    def _reply(code: int, body: bytes, ctype: str, extra: Optional[dict] = None) -> web.Response:
        return web.Response(status=code, body=body, headers={"Content-Type": ctype, **HEADERS, **(extra or {})})

    def _json(self, code: int, obj) -> web.Response:
        return self._reply(code, json.dumps(obj).encode(), "application/json")

    def _error(self, code: int, message: str, extra: Optional[dict] = None) -> web.Response:
        return self._json(code, {"error": message, "message": message}) if not extra else \
            self._reply(code, json.dumps({"error": message, "message": message}).encode(), "application/json", extra)

    def _authorized(self, request: web.BaseRequest) -> bool:
        token = self.settings.token
        if not token:
            return True
        given = request.rel_url.query.get("token", "")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        given = request.headers.get("X-Stylecam-Token", given)
        return hmac.compare_digest(given.encode(), token.encode())

    def _refusal(self, request: web.BaseRequest) -> Optional[Refused]:
        """A Refused when this request is not to be answered, checked in this order: Host (DNS
        rebinding), token, cross-site (Sec-Fetch-Site, Origin), path, Content-Type."""
        method, path, headers = request.method, request.rel_url.raw_path, request.headers
        hosts = headers.getall("Host", [])
        if len(hosts) > 1:
            return Refused(400, "more than one Host header")
        host = hosts[0] if hosts else None  # no Host: an HTTP/1.0 client, never a browser
        if host is not None and not self.server.hosts.accepts(host):
            return Refused(403, f"this server does not answer to Host {host[:100]!r} (see --allow-host)")
        if not self._authorized(request):
            return Refused(401, "missing or wrong token")
        if headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
            return Refused(403, "cross-site requests are refused")
        origin = headers.get("Origin")
        if origin is not None and not self.server.hosts.same_origin(origin, host):
            return Refused(403, f"cross-origin requests are refused (Origin {origin[:100]!r})")
        route = ROUTES.get((method, path))
        if route is None:
            if any(p == path for (_, p) in ROUTES):
                return Refused(405, f"{method} is not allowed on {path}", logging.INFO)
            return Refused(404, f"no such path: {path[:100]!r} (try /, /stream.mjpg, /frame.jpg, /styles, /style)",
                           logging.INFO)
        ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if route.content_types and ctype not in route.content_types:
            return Refused(415, f"{method} {path} needs Content-Type {' or '.join(route.content_types)}")
        return None

    async def _call(self, fn, *args, pool=None):
        """A session call, off the loop (it may wait on the session's locks or run the predictor)."""
        return await self.loop.run_in_executor(pool or self.control_pool, fn, *args)

    @staticmethod
    def _body_length(request: web.BaseRequest, limit: int, what: str) -> int:
        """The declared Content-Length (aiohttp's parser answers 400 to a negative or malformed one)."""
        length = request.content_length
        if length is None:
            raise Refused(411, "Content-Length required", logging.INFO)
        if length > limit:
            raise Refused(413, f"{what} too large ({length} bytes; the limit is {limit})")
        return length

    async def _read_body(self, request: web.BaseRequest, length: int) -> bytes:
        """The whole body, or Refused(408) when the client pauses longer than client_timeout or takes
        longer than body_timeout in all (the connection is then closed)."""
        if request.headers.get("Expect", "").lower() == "100-continue":  # curl, for big uploads
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks, got = [], 0
        deadline = self.loop.time() + self.settings.body_timeout
        while got < length:
            wait = min(self.settings.client_timeout, deadline - self.loop.time())
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                chunk = await asyncio.wait_for(request.content.readany(), wait)
            except ConnectionError:  # the client went away: nobody reads the answer
                raise Refused(400, f"the client left after {got} of {length} bytes", logging.DEBUG) from None
            except asyncio.TimeoutError:
                raise Refused(408, f"the body did not arrive in time ({got} of {length} bytes)", logging.INFO,
                              close=True) from None
            if not chunk:
                raise Refused(400, f"the body ended early ({got} of {length} bytes)", logging.INFO)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    # -- endpoints ----------------------------------------------------------------------------
    async def page(self, request) -> web.Response:
        styles = await self._call(self.server.control.styles)
        buttons = "".join(f'<button onclick="pick(\'{s["id"]}\')">{html.escape(s["name"])}</button>' for s in styles)
        query = f"?token={self.settings.token}" if self.settings.token else ""
        body = PAGE.format(q=html.escape(query), buttons=buttons).encode()
        return self._reply(200, body, "text/html; charset=utf-8",  # no other site may frame it (clickjacking)
                           {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"})

    async def styles(self, request) -> web.Response:
        control = self.server.control
        styles, current = await self._call(lambda: (control.styles(), control.current()))
        return self._json(200, {"styles": styles, "current": current})

    async def stats(self, request) -> web.Response:
        control = self.server.control
        fps, stats = await self._call(lambda: (control.fps(), control.stats()))
        return self._json(200, {"fps": fps, **stats, "clients": self.server.clients, "dropped": self.server.dropped,
                                "encoded": self.server.hub.encoded, "readers_max": self.settings.max_readers})

    async def frame(self, request) -> web.Response:
        jpeg = await self._call(self.server.hub.latest_jpeg)
        if jpeg is None:
            raise Refused(503, "no frame yet", logging.INFO)
        return self._reply(200, jpeg, "image/jpeg")

    async def set_style(self, request) -> web.Response:
        length = self._body_length(request, MAX_BODY, "style request")
        try:
            spec = parse_style_request(await self._read_body(request, length))
            mix = StyleMix.parse(spec)  # the HTTP edge: the spec's one parse; the mix travels from here
        except (ValueError, StyleError) as exc:
            raise Refused(400, str(exc), logging.INFO) from None
        try:
            label = await self._call(self.server.control.set_remote_style, mix)
        except StylecamError as exc:
            raise Refused(400, str(exc), logging.INFO) from None
        return self._json(200, {"style": spec, "name": label, "message": f"style: {label}"})

    async def add_picture(self, request) -> web.Response:
        length = self._body_length(request, MAX_PICTURE, "style picture")
        if length <= 0:
            raise Refused(400, "the body must be the picture (JPEG or PNG)")
        name = request.rel_url.query.get("name", "")
        if name.strip():
            try:
                check_name(name)  # before the body is read, a slot taken or anything written
            except StylecamError as exc:
                raise Refused(400, str(exc)) from None
        uploads, who = self.server.uploads, request.remote or ""
        wait = uploads.take(who)
        if wait > 0:
            raise Refused(429, f"at most {uploads.describe()}: try again in {math.ceil(wait)} s",
                          extra={"Retry-After": str(math.ceil(wait))})
        try:
            data = await self._read_body(request, length)
            added = await self._call(self.server.control.add_picture, data, name, pool=self.upload_pool)
        except Refused:
            uploads.refund(who)
            raise
        except StylecamError as exc:
            if not await self._added(name):  # only styles added count: one that was written does
                uploads.refund(who)
            code = 413 if isinstance(exc, PictureTooLarge) else 500 if isinstance(exc, StyleSaveError) else 400
            raise Refused(code, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        return self._json(200, {"style": added, "name": added, "message": f"new picture style: {added}"})

    async def _added(self, name: str) -> bool:
        from ..styles.packs import slugify

        try:
            styles = await self._call(self.server.control.styles)
        except Exception:  # cannot tell: count it
            return True
        return bool(name.strip()) and slugify(name) in {s.get("slug", slugify(s["name"])) for s in styles}

    async def stream(self, request) -> web.StreamResponse:
        server = self.server
        if server.clients >= self.settings.max_readers:
            raise Refused(503, f"the stream has its {self.settings.max_readers} readers: try again later",
                          extra={"Retry-After": "5"})
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport else None
        if sock is not None:  # small buffers: a stalled client is noticed quickly
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.settings.send_buffer)
            transport.set_write_buffer_limits(high=self.settings.send_buffer)
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", **HEADERS})
        resp.force_close()
        await resp.prepare(request)
        server._count(+1)
        stalled = []

        def drop() -> None:  # a write still waiting for the client after client_timeout
            stalled.append(True)
            transport.abort()

        try:
            with server.hub.watch():  # counted by the hub: it encodes while someone watches
                seq = 0
                while not self.closing.is_set():
                    seq, part = await self.frames.newer(seq)
                    if part is None:
                        if server.hub.closed or transport is None or transport.is_closing():
                            break  # a client that left while no frames came must not count as a reader
                        continue  # no new frame yet (paused source, an idle app): keep waiting
                    watchdog = self.loop.call_later(self.settings.client_timeout, drop)  # cheaper than wait_for
                    try:
                        await resp.write(part)
                    finally:
                        watchdog.cancel()
        except (ConnectionError, RuntimeError) as exc:  # the client went away (or was dropped): normal for a stream
            if stalled:
                log.info("dropped stalled client %s", request.remote)
            else:
                log.debug("client %s left: %s", request.remote, exc)
        finally:
            server._count(-1, bool(stalled))
        return resp
