"""One lock across processes: a read-modify-write of a shared file (the user-style index, a
compiled-model entry and its record) runs in one process at a time.

An advisory lock on a small lock file beside what it guards: ``fcntl.flock`` on POSIX, ``msvcrt.locking``
on Windows. The OS drops it when its holder dies, so a killed process never leaves it taken. flock
belongs to the open file, so two threads of one process exclude each other too.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def file_lock(path: "str | Path") -> Iterator[None]:
    """Hold the lock named by ``path`` (created if need be) for the ``with`` block; waits for it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        if os.name == "nt":
            import msvcrt

            while True:  # LK_LOCK itself gives up after 10 s: keep waiting, as flock does
                try:
                    f.seek(0)
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
