"""N MJPEG readers of `stylecam serve` at once: the frames each gets a second against the pipeline's FPS.

Loopback only, bounded: a server subprocess on 127.0.0.1, N reader threads for --seconds, then stop.
Usage: python scripts/stream_readers.py [--readers 50] [--seconds 10] [--source synthetic] [--size 320x240]
"""
import argparse
import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--source", default="synthetic")
    ap.add_argument("--size", default="320x240")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()
    frames = [0] * args.readers
    with contextlib.ExitStack() as done:
        proc = done.enter_context(subprocess.Popen(
            [sys.executable, "-m", "stylecam", "serve", "--source", args.source, "--size", args.size, "--port", str(port),
             "--backend", "onnxruntime", "--duration", str(args.seconds + 60)], stdout=subprocess.PIPE, text=True))
        done.callback(proc.terminate)  # (runs first: then Popen's exit waits for it)
        done.callback(stop.set)
        proc.stdout.readline()  # "serving …"
        time.sleep(3)

        def reader(i):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/stream.mjpg")
            resp = conn.getresponse()
            while not stop.is_set() and (line := resp.readline()):
                if line.startswith(b"--stylecamframe"):
                    frames[i] += 1
            conn.close()

        threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(args.readers)]
        for t in threads:
            t.start()
        time.sleep(2)
        start, fps = list(frames), []
        t0 = time.time()
        while time.time() - t0 < args.seconds:
            time.sleep(1)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
                stats = json.loads(r.read())
            fps.append(stats["fps"])
        took = time.time() - t0
        rates = sorted((f - s) / took for f, s in zip(frames, start))
        print(f"{args.readers} readers for {took:.1f} s: pipeline {sum(fps) / len(fps):.1f} FPS; per reader "
              f"min {rates[0]:.1f}, median {rates[len(rates) // 2]:.1f}, max {rates[-1]:.1f} frames/s; "
              f"server says {stats['clients']} clients, {stats['dropped']} dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
