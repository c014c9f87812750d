"""The virtual-camera sink. A v4l2loopback device cannot be created on these machines (no kernel
modules), so the sink runs against a recording stand-in that implements pyvirtualcam.Camera's
interface; the real pyvirtualcam is used for the "no device" path, which is real here."""
import time

import cv2
import numpy as np
import pyvirtualcam
import pytest

from stylecam.cli import main
from engine.errors import SinkError
from engine.sinks.virtualcam import VirtualCamSink
from tests.waiting import wait_until


class RecordingCamera:
    """Stand-in for pyvirtualcam.Camera (same constructor, properties and methods); records frames."""

    opened: list["RecordingCamera"] = []

    def __init__(self, width, height, fps, *, fmt=pyvirtualcam.PixelFormat.RGB, device=None, native="I420"):
        self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
        self.device = device or "/dev/video42"
        self.native_fmt = getattr(pyvirtualcam.PixelFormat, native)
        self.sent, self.closed = [], False
        RecordingCamera.opened.append(self)

    def send(self, frame):
        expected = self.width * self.height * 3 // 2 if self.fmt.name in ("I420", "NV12") else None
        assert frame.size == (expected or self.width * self.height * 3)
        self.sent.append(np.array(frame, copy=True))

    def sleep_until_next_frame(self):
        time.sleep(1.0 / self.fps)

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def _reset():
    RecordingCamera.opened.clear()


def test_frames_reach_the_camera_in_its_native_format(photos):
    img = np.ascontiguousarray(photos["coffee"][:120, :160])
    sink = VirtualCamSink(160, 120, 60, camera_factory=RecordingCamera)
    assert sink.fmt_name == "I420" and len(RecordingCamera.opened) == 2  # reopened in the native format
    sink.write(img)
    assert wait_until(lambda: len(RecordingCamera.opened[-1].sent) >= 5)
    sink.close()
    cam = RecordingCamera.opened[-1]
    assert cam.closed and len(cam.sent) >= 5
    back = cv2.cvtColor(cam.sent[-1].reshape(180, 160), cv2.COLOR_YUV2RGB_I420)
    assert np.abs(back.astype(int) - img).mean() < 5  # 4:2:0 chroma subsampling


def test_camera_rate_is_kept_when_the_model_is_slower(photos):
    sink = VirtualCamSink(160, 120, 50, camera_factory=RecordingCamera)
    sink.write(np.ascontiguousarray(photos["coffee"][:120, :160]))
    assert wait_until(lambda: sink.frames_sent >= 10)
    sink.close()
    assert sink.frames_sent >= 10  # the last frame is repeated at the camera's rate…
    assert sink.frames_converted == 1  # …and converted only once


def test_nv12_and_resize(photos):
    factory = lambda **kw: RecordingCamera(**kw, native="NV12")
    sink = VirtualCamSink(64, 48, 60, camera_factory=factory)
    sink.write(photos["chelsea"])  # 150×117: resized to the camera's size
    assert wait_until(lambda: RecordingCamera.opened[-1].sent)
    sink.close()
    sent = RecordingCamera.opened[-1].sent[-1]
    assert sink.fmt_name == "NV12" and sent.size == 64 * 48 * 3 // 2
    back = cv2.cvtColor(sent.reshape(72, 64), cv2.COLOR_YUV2RGB_NV12)
    ref = cv2.resize(photos["chelsea"], (64, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - ref).mean() < 4


def test_no_virtual_camera_says_what_to_run():
    def missing(**kw):
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found")

    with pytest.raises(SinkError, match="modprobe v4l2loopback|OBS"):
        VirtualCamSink(640, 480, camera_factory=missing)
    with pytest.raises(SinkError, match="even"):
        VirtualCamSink(641, 480, camera_factory=RecordingCamera)


def test_vcam_command_without_a_device_is_one_line_exit_2(capsys):
    """Real pyvirtualcam, real (absent) v4l2loopback: the user gets the command to run."""
    assert main(["vcam", "--source", "synthetic", "--size", "320x240", "--fps", "15", "--style", "3",
                 "--duration", "1", "--device", "/dev/video9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "modprobe v4l2loopback" in err and "/dev/video9" in err
