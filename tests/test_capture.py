"""Sources on real files: video, image, synthetic pattern, and a camera that goes away and comes back."""
import shutil
import time

import cv2
import numpy as np
import pytest

from engine.frame.frames import fit_cover
from engine.video.capture import CameraSource, SourceSettings, open_source, parse_camera
from engine.errors import InputError, SourceError, SourceLost


def test_synthetic_pattern_moves_and_has_requested_size():
    with open_source(SourceSettings("synthetic", size=(320, 200), paced=False)) as src:
        a, b = src.read().image, src.read().image
    assert a.shape == (200, 320, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).mean() > 0.5


def test_video_file_loops_or_ends(clip):
    with open_source(SourceSettings(str(clip), paced=False, loop=False)) as src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f.image)
    assert len(frames) == 20 and frames[0].shape == (120, 160, 3)
    with open_source(SourceSettings(str(clip), paced=False, loop=True)) as src:
        assert all(src.read() is not None for _ in range(45))


def test_video_is_resized_without_distortion(clip):
    with open_source(SourceSettings(str(clip), size=(64, 64), paced=False)) as src:
        assert src.read().image.shape == (64, 64, 3)
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255  # the centre square survives a cover-fit to a square
    assert fit_cover(img, (10, 10)).min() == 255


def test_paced_file_is_delivered_at_its_frame_rate(clip):
    with open_source(SourceSettings(str(clip), paced=True)) as src:  # 20 fps clip
        start = time.perf_counter()
        for _ in range(6):
            src.read()
        assert time.perf_counter() - start >= 5 / 20 * 0.9


def test_still_image_source(tmp_path, photos):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), cv2.cvtColor(photos["coffee"], cv2.COLOR_RGB2BGR))
    with open_source(SourceSettings(str(path), paced=False)) as src:
        assert np.array_equal(src.read().image, photos["coffee"])
        assert np.array_equal(src.read().image, photos["coffee"])


@pytest.mark.parametrize("name,content", [("bad.jpg", b"not a jpeg"), ("bad.mp4", b"\x00" * 100),
                                          ("empty.png", b"")])
def test_unreadable_files_raise_one_clear_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match="cannot read"):
        open_source(SourceSettings(str(path)))


def test_missing_file_and_missing_camera(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(SourceSettings(str(tmp_path / "nope.mp4")))
    with pytest.raises(SourceError, match="camera 97 not found"):
        open_source(SourceSettings("camera:97"))
    with pytest.raises(SourceError, match="/dev/video97"):
        open_source(SourceSettings("/dev/video97"))
    with pytest.raises(InputError):
        parse_camera("camera:x")


def test_camera_survives_unplug_and_replug(clip, tmp_path):
    """A real cv2.VideoCapture on a file stands in for the device node (no webcam here):
    moving the file away makes reads fail like an unplugged camera; moving it back is a replug."""
    device = tmp_path / "video0.mp4"
    shutil.copy(clip, device)
    cam = CameraSource(SourceSettings("camera", size=(80, 60)), str(device), retry_s=0.05)
    try:
        assert cam.read(timeout=2).image.shape == (60, 80, 3)
        device.rename(tmp_path / "away.mp4")  # unplug; the open capture runs dry after ≤ 20 frames
        with pytest.raises(SourceLost):
            for _ in range(200):
                cam.read(timeout=0.5)
        assert not cam.connected
        (tmp_path / "away.mp4").rename(device)  # plug back in
        assert cam.read(timeout=3).image.shape == (60, 80, 3)
        assert cam.reconnects >= 1
    finally:
        cam.close()
    assert not cam._thread.is_alive()


def test_camera_keeps_only_the_newest_frame(clip, tmp_path):
    """Frames the camera delivers while the consumer is busy are overwritten, not queued: the next
    read returns the newest, and the ones in between are never handed out."""
    cam = CameraSource(SourceSettings("camera"), str(clip), retry_s=0.05)
    try:
        first = cam.read(timeout=2)
        taken_first = cam._taken  # sequence number of the frame handed out
        time.sleep(0.3)  # the thread keeps grabbing while the consumer is busy
        second = cam.read(timeout=2)
        skipped = cam._taken - taken_first - 1
        assert skipped >= 2, skipped  # frames grabbed meanwhile were dropped ...
        assert second.index == first.index + 1  # ... and the consumer got one frame, not a backlog
    finally:
        cam.close()
