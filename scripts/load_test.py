"""Pipeline FPS of `stylecam serve` with 0, 1 and 8 MJPEG clients (+1 stalled), memory of the server.

Loopback only, bounded in time: starts the server as a subprocess on 127.0.0.1, reads its /stats.
Usage: python scripts/load_test.py [--source demo] [--size 640x480] [--seconds 10]
"""
import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def measure(port, seconds):
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(1.0)
        samples.append(get_json(port, "/stats")["fps"])
    return sum(samples[1:]) / max(len(samples) - 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="demo")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    proc = subprocess.Popen([sys.executable, "-m", "stylecam", "serve", "--source", args.source, "--size", args.size,
                             "--style", "7", "--port", str(args.port), "--backend", "onnxruntime",
                             "--duration", str(6 * args.seconds + 30)], stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    readers, received = [], []
    try:
        proc.stdout.readline()  # "serving …"
        time.sleep(4)
        result = {"0 clients": measure(args.port, args.seconds)}
        rss0 = rss_mb(proc.pid)

        def reader():
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
            conn.request("GET", "/stream.mjpg")
            resp = conn.getresponse()
            n = 0
            while not stop.is_set() and (chunk := resp.read(65536)):
                n += len(chunk)
            received.append(n)

        for n_clients in (1, 8):
            while len(readers) < n_clients:
                t = threading.Thread(target=reader, daemon=True)
                t.start()
                readers.append(t)
            if n_clients == 8:
                stalled = socket.create_connection(("127.0.0.1", args.port))
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stalled.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            result[f"{n_clients} clients" + (" + 1 stalled" if n_clients == 8 else "")] = measure(args.port, args.seconds)
        stats = get_json(args.port, "/stats")
        result.update(rss_growth_mb=rss_mb(proc.pid) - rss0, dropped=stats["dropped"], clients=stats["clients"])
        stop.set()
        for k, v in result.items():
            print(f"{k:>24}: {v:.1f}" if isinstance(v, float) else f"{k:>24}: {v}")
        base = result["0 clients"]
        print(f"{'drop with 8 + 1 stalled':>24}: {100 * (1 - result['8 clients + 1 stalled'] / base):.1f}%")
    finally:
        stop.set()
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
