"""The attacks of issue #37 on `stylecam serve`, each with the answer it got: docs/server-security.md.

Loopback only and bounded: starts the server as a subprocess on 127.0.0.1 (and once on 0.0.0.0 with a
token, every request still sent to 127.0.0.1), with STYLECAM_HOME in a temporary folder; every loop has
a count and a deadline. Runs against whichever `engine` is on PYTHONPATH:

    PYTHONPATH=/tmp/oldtree .venv/bin/python scripts/server_attacks.py   # before
    .venv/bin/python scripts/server_attacks.py                            # after
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra, files: int = 0):
        self.port = free_port()
        self.home = tempfile.mkdtemp(prefix="stylecam-attack-")
        cmd = [sys.executable, "-m", "stylecam", "serve", "--source", "synthetic", "--size", "320x240",
               "--backend", "onnxruntime", "--port", str(self.port), *extra]
        if files:  # the open-files limit of the token bind
            cmd = ["prlimit", f"--nofile={files}:{files}", "--", *cmd]
        self.proc = subprocess.Popen(cmd, env={**os.environ, "STYLECAM_HOME": self.home},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)

    def status(self, key: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def index(self) -> list:
        try:
            with open(os.path.join(self.home, "data", "styles", "index.json")) as f:
                return [s["name"] for s in json.load(f)["styles"]]
        except FileNotFoundError:
            return []

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def exchange(port, data: bytes, wait: float = 10.0, source: str = "127.0.0.1", shut: bool = False) -> str:
    """Send ``data``; the status line that came back within ``wait`` seconds, or what happened."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(wait)
    t = time.time()
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        reply = s.recv(65536)
    except socket.timeout:
        return f"no answer after {wait:.0f} s"
    except ConnectionError as exc:
        return f"{type(exc).__name__} after {time.time() - t:.2f} s"
    finally:
        s.close()
    if not reply:
        return f"empty reply (closed after {time.time() - t:.2f} s)"
    line = reply.split(b"\r\n")[0].decode(errors="replace")
    body = reply.split(b"\r\n\r\n", 1)[-1][:160].decode(errors="replace")
    return f"{line} after {time.time() - t:.2f} s" + (f": {body}" if body.startswith("{") else "")


def post(path: str, body: bytes, ctype: str, host: str = "127.0.0.1") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def jpeg(seed: int) -> bytes:
    import cv2
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (8, 8, 3), np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", img)[1].tobytes()


def png_1bit(side: int) -> bytes:
    """A 1-bit grey PNG of side×side, all black: a few kB that decode to ``side``² pixels."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    row = b"\x00" + bytes((side + 7) // 8)
    raw = zlib.compress(row * side, 9)
    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def idle_connections(port, count, source="127.0.0.1"):
    socks = []
    for _ in range(count):
        s = socket.socket()
        try:
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(f"GET /frame.jpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())  # never ends
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def still_open(socks) -> int:
    """How many of ``socks`` the server has not closed (read without waiting: EOF or a reset is closed)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            while s.recv(65536):  # an answer (408, 400) may come before the end
                pass
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=300, help="idle connections for the timeout attack")
    args = ap.parse_args()
    import engine
    print("engine from", os.path.dirname(engine.__file__), file=sys.stderr)
    rows = []

    def row(what, answer):
        rows.append((what, answer))
        print(f"| {what} | {answer} |", flush=True)

    srv = Server()
    port, host = srv.port, f"127.0.0.1:{srv.port}"
    try:
        # Content-Length: -1 with 64 MiB behind it
        rss0 = srv.status("VmHWM")
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        s.sendall(f"POST /style HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  "Content-Length: -1\r\n\r\n".encode())
        sent, t = 0, time.time()
        try:
            block = b"[" * (1 << 20)
            while sent < 64 << 20 and time.time() - t < 30:
                s.sendall(block)
                sent += len(block)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(4096).split(b"\r\n")[0].decode()
        except OSError as exc:
            reply = f"{type(exc).__name__}"
        s.close()
        row("`POST /style`, `Content-Length: -1`, then 64 MiB",
            f"{reply or 'closed'} after {sent >> 20} MiB sent, {time.time() - t:.1f} s; peak RSS "
            f"{rss0 >> 10} → {srv.status('VmHWM') >> 10} MB")
        # idle connections
        socks = idle_connections(port, args.idle)
        time.sleep(8)
        row(f"{args.idle} connections sending an unfinished `GET /frame.jpg` header, then nothing",
            f"{len(socks)} opened, {still_open(socks)} still open after 8 s; server threads "
            f"{srv.status('Threads')}")
        for s in socks:
            s.close()
        row("`POST /style` saying `Content-Length: 100`, sending 10 bytes",
            exchange(port, post("/style", b"x" * 100, "application/json", host)[:-90], wait=20))
        for what, body in [('`{"style": 1e400}`', b'{"style": 1e400}'),
                           ("3000 nested `[`", b"[" * 3000)]:
            row(f"`POST /style` {what}", exchange(port, post("/style", body, "application/json", host)))
        row("`POST /style/picture?name=` + 300 × `a`",
            exchange(port, post("/style/picture?name=" + "a" * 300, jpeg(1), "image/jpeg", host), wait=30))
        answers = [exchange(port, post("/style/picture?name=k:1", jpeg(2), "image/jpeg", host), wait=30)
                   .split(" after")[0] for _ in range(8)]
        row("8 × `POST /style/picture?name=k:1`",
            f"{', '.join(sorted(set(answers)))} (×8); index.json: {srv.index().count('k:1')} × \"k:1\"")
        srv.close()
        srv = Server()
        port, host = srv.port, f"127.0.0.1:{srv.port}"
        answers = [exchange(port, post(f"/style/picture?name=Flood{k}", jpeg(10 + k), "image/jpeg", host),
                            wait=30).split(" ")[1] for k in range(7)]
        other = exchange(port, post("/style/picture?name=Other", jpeg(30), "image/jpeg", host), wait=30,
                         source="127.0.0.2")
        row("7 uploads from 127.0.0.1, then one from 127.0.0.2",
            f"{', '.join(answers)}; then from 127.0.0.2: {other.split(' after')[0]}")
        srv.close()
        srv = Server()  # a fresh upload budget
        port, host = srv.port, f"127.0.0.1:{srv.port}"
        big = png_1bit(6300)
        hwm, cpu = srv.status("VmHWM"), srv.cpu_s()
        got = exchange(port, post("/style/picture?name=Bits", big, "image/png", host), wait=60, source="127.0.0.3")
        row(f"a 1-bit 6300×6300 PNG of {len(big) / 1000:.1f} kB (from 127.0.0.3)",
            f"{got.split(' after')[0]}; peak RSS +{(srv.status('VmHWM') - hwm) >> 10} MB, "
            f"{srv.cpu_s() - cpu:.1f} s CPU")
    finally:
        srv.close()
    # the token bind with 1024 files: idle connections without the token, then a client with it
    srv = Server("--host", "0.0.0.0", "--token", "T", files=1024)
    port = srv.port
    try:
        socks = idle_connections(port, 1021)
        time.sleep(3)  # all of them reach the server (a connect past the listen queue is retried after 1 s)
        got = exchange(port, f"GET /frame.jpg?token=T HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                             "Connection: close\r\n\r\n".encode(), wait=10, source="127.0.0.5")
        row(f"token bind, 1024 files: {len(socks)} idle connections without the token, then "
            "`GET /frame.jpg?token=T` from 127.0.0.5", got.split(": {")[0])
        for s in socks:
            s.close()
    finally:
        srv.close()
    print("\n| attack | answer |\n|---|---|")
    for what, answer in rows:
        print(f"| {what} | {answer} |")


if __name__ == "__main__":
    main()
