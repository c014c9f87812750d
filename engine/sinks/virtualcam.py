"""A virtual camera that Zoom, Meet, OBS and browsers see (pyvirtualcam: v4l2loopback on Linux, the
OBS Virtual Camera on Windows and macOS).

The pipeline only drops its newest frame into a slot; a worker thread sends at the camera's own
rate (repeating the last frame when the model is slower, as cameras must keep a steady rate).
Each new frame is converted to the device's native pixel format once, with OpenCV.
"""
from __future__ import annotations

import logging
import platform
import threading
from typing import Callable, Optional

import cv2
import numpy as np

from ..errors import SinkError, install_hint
from .. import defaults
from ..slot import LatestSlot
from .base import Sink

log = logging.getLogger(__name__)


def no_virtual_camera_help(device: Optional[str] = None) -> str:
    """What to run, per OS, when no virtual camera can be opened."""
    system = platform.system()
    if system == "Linux":
        where = f"{device} is not a v4l2loopback device" if device else "no v4l2loopback device found"
        return (f"{where}; load the module with: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
                "card_label=stylecam (Debian/Ubuntu: sudo apt install v4l2loopback-dkms)")
    return ("no virtual camera found; install OBS Studio 28 or newer, click 'Start Virtual Camera' once, "
            "stop it, then run this again")


def _to_native(rgb: np.ndarray, fmt_name: str) -> np.ndarray:
    """RGB → I420 or NV12 with OpenCV (one pass); other formats are left to pyvirtualcam."""
    if fmt_name == "I420":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    if fmt_name == "NV12":
        h, w = rgb.shape[:2]
        i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
        y, u, v = i420[: w * h], i420[w * h: w * h * 5 // 4], i420[w * h * 5 // 4:]
        uv = np.empty(w * h // 2, np.uint8)
        uv[0::2], uv[1::2] = u, v
        return np.concatenate([y, uv])
    return rgb


class VirtualCamSink(Sink):
    name = "virtualcam"

    def __init__(self, width: int, height: int, fps: float = defaults.FPS, device: Optional[str] = None,
                 camera_factory: Optional[Callable[..., object]] = None):
        if width % 2 or height % 2:
            raise SinkError(f"virtual camera size must be even, got {width}x{height}")
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError(f"pyvirtualcam (the virtual camera) is not installed: {install_hint('vcam')}") from None
        self._pv = pyvirtualcam
        factory = camera_factory or pyvirtualcam.Camera
        self.size = (width, height)
        try:
            cam = factory(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device)
            native = getattr(cam, "native_fmt", None)
            if native is not None and native.name in ("I420", "NV12"):
                cam.close()  # reopen taking the device's own format: no second conversion inside
                cam = factory(width=width, height=height, fps=fps, fmt=native, device=device)
        except RuntimeError as exc:
            log.info("pyvirtualcam: %s", exc)
            raise SinkError(no_virtual_camera_help(device)) from None
        self.camera = cam
        self.fmt_name = cam.fmt.name
        self.device = cam.device
        self._slot: LatestSlot[tuple[np.ndarray, float]] = LatestSlot()  # (frame, when grabbed)
        self.frames_sent = 0
        self.frames_converted = 0
        self._thread = threading.Thread(target=self._run, name="virtualcam", daemon=True)
        self._thread.start()
        log.info("virtual camera %s: %dx%d @ %.0f fps, %s", self.device, width, height, fps, self.fmt_name)

    def write(self, frame: np.ndarray, grabbed_at: float = 0.0) -> None:
        self._slot.publish((frame, grabbed_at))

    def _run(self) -> None:
        sent_seq, native, grabbed = 0, None, 0.0
        self._slot.wait_newer(0)  # nothing to send until the first frame exists (or the sink closes)
        while not self._slot.closed:
            seq, (frame, grabbed) = self._slot.latest()
            fresh = seq != sent_seq
            if fresh:
                if (frame.shape[1], frame.shape[0]) != self.size:
                    frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
                native = _to_native(frame, self.fmt_name)
                self.frames_converted += 1
                sent_seq = seq
            try:
                self.camera.send(native)
            except Exception as exc:  # device removed under us: report once, stop sending
                log.error("virtual camera stopped: %s", exc)
                return
            self.frames_sent += 1
            if fresh:
                self.delivered(grabbed)  # a repeat of the same frame is no new delivery
            self.camera.sleep_until_next_frame()

    def close(self) -> None:
        self._slot.close()
        self._thread.join(timeout=2.0)
        self.camera.close()
