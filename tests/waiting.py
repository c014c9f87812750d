"""The one way tests wait for another thread: a condition and a deadline, never a bare sleep."""
import time


def wait_until(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    """True as soon as ``predicate()`` is; False if it is still not after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
