"""Which cameras this machine has, without opening each one (opening can take seconds)."""
from __future__ import annotations

import glob
import platform
import re


def list_cameras() -> list[tuple[str, str]]:
    """(source spec, label) pairs for the cameras found; empty when there are none."""
    if platform.system() == "Linux":
        found = []
        for dev in sorted(glob.glob("/dev/video*"), key=lambda p: int(re.sub(r"\D", "", p) or 0)):
            name = ""
            try:
                with open(f"/sys/class/video4linux/{dev.rsplit('/', 1)[1]}/name") as f:
                    name = f.read().strip()
            except OSError:
                pass
            found.append((dev, f"{name or 'Camera'} ({dev})"))
        return found
    import cv2  # elsewhere: probe the first few indices

    found = []
    for i in range(3):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append((f"camera:{i}", f"Camera {i}"))
        cap.release()
    return found
