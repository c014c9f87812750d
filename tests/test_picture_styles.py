"""Picture styles: Magenta's arbitrary-style network inside the engine, any picture a live style at once."""
import http.client
import json
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest

from engine.backends import create_backend, create_single
from engine.errors import BackendUnavailable
from engine.video.capture import SourceSettings, StillSource
from stylecam.cli import main
from engine.errors import StyleError
from engine.metrics import psnr
from engine.model.config import code_vector
from engine.model.picture import float_reference_onnx
from engine.live.pipeline import Pipeline, StyleSettings
from engine.styles.packs import StylePack
from engine.styles.user_styles import PICTURE_MANIFEST, UserStyleStore, add_picture_style, load_catalog
from tests.waiting import wait_until


def _painting(colours, period, angle=1):
    """A small 'painting' made here: stripes of two colours (no shared files)."""
    yy, xx = np.mgrid[0:96, 0:128]
    on = ((xx + angle * yy) // period) % 2 == 0
    return np.where(on[..., None], np.array(colours[0]), np.array(colours[1])).astype(np.uint8)


@pytest.fixture
def pictures(tmp_path):
    paths = {}
    for name, img in {"warm": _painting(([230, 80, 20], [250, 220, 60]), 12),
                      "cool": _painting(([20, 40, 160], [200, 230, 255]), 5, angle=-1)}.items():
        paths[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(paths[name]), img[:, :, ::-1])
    return paths


@pytest.fixture
def store(tmp_path):
    return UserStyleStore(tmp_path / "styles")


@pytest.fixture(scope="module")
def picture_net():
    return StylePack.load(PICTURE_MANIFEST)


@pytest.fixture(scope="module")
def codes():
    from engine.model.predictor import StylePredictor
    from skimage import data

    predictor = StylePredictor()
    return [predictor.code(data.astronaut()), predictor.code(data.coffee())]


def test_style_code_comes_from_the_float_predictor(codes):
    """The predictor runs as a float graph (no Quantize/DequantizeLinear left), and its code is the
    package's int8 graph emulated in float (ONNX Runtime with fusions off runs each Q/DQ as float)
    within quantization noise. ONNX Runtime's int8 kernels on a CPU without VNNI landed 0.4-0.6 away."""
    import onnx
    import onnxruntime as ort
    from skimage import data
    from engine.model.predictor import PREDICT_FILE, centre_square
    from engine.model.qdq import float_model
    from engine.model.stock import package_model

    path = package_model(PREDICT_FILE)
    ops = {n.op_type for n in float_model(onnx.load(str(path))).graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    emulated = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for photo, code in zip((data.astronaut(), data.coffee()), codes):
        x = centre_square(photo, 256).astype(np.float32)[None] / 255
        reference = emulated.run(None, {emulated.get_inputs()[0].name: x})[0].reshape(-1)
        assert 0 < np.abs(code - reference).max() < 0.1


def test_our_float_network_equals_the_dequantized_graph_at_any_size(picture_net, photos, codes, tmp_path):
    """Our module vs the package's own graph made float (QDQ folded) in ONNX Runtime, at two sizes
    neither of which is the 384² the package fixes (sides a multiple of 4: the graph does not pad)."""
    import onnxruntime as ort

    ref = ort.InferenceSession(str(float_reference_onnx(tmp_path / "float.onnx")), providers=["CPUExecutionProvider"])
    names = [i.name for i in ref.get_inputs()]
    with create_single("torch-cpu", pack=picture_net) as ours:
        for photo in (photos["astronaut"][:200, :220], photos["coffee"][:132]):
            for code in codes:
                theirs = ref.run(None, {names[0]: photo[None].astype(np.float32) / 255,
                                        names[1]: code.reshape(1, 1, 1, 100)})[0][0]
                out = ours.run(photo, code_vector(code))
                assert np.abs(out.astype(int) - np.round(theirs * 255)).max() <= 1


def test_close_to_the_int8_original_at_384(picture_net, photos, codes):
    """The package's int8 network differs from the float weights by quantization noise only."""
    import onnxruntime as ort

    from engine.model.stock import package_model

    q = ort.InferenceSession(str(package_model("arbitrary_transform.onnx")), providers=["CPUExecutionProvider"])
    names = [i.name for i in q.get_inputs()]
    photo = cv2.resize(photos["chelsea"], (384, 384), interpolation=cv2.INTER_AREA)
    with create_single("onnxruntime", pack=picture_net) as ours:
        for code in codes:
            int8 = q.run(None, {names[0]: photo[None].astype(np.float32) / 255, names[1]: code.reshape(1, 1, 1, 100)})[0][0]
            db = psnr(ours.run(photo, code_vector(code)), np.round(int8 * 255).astype(np.uint8))
            assert 25 <= db < 60, db  # noise, not an error (and not identical: it is not the int8 graph)


def test_import_picture_is_reproducible(tmp_path):
    assert main(["import-picture", "--out", str(tmp_path / "p.json")]) == 0
    assert (tmp_path / "p.safetensors").read_bytes() == PICTURE_MANIFEST.with_suffix(".safetensors").read_bytes()
    ours, shipped = json.loads((tmp_path / "p.json").read_text()), json.loads(PICTURE_MANIFEST.read_text())
    assert ours["config"] == shipped["config"] and ours["sha256"] == shipped["sha256"]
    for a, b in zip(ours["reference_styles"], shipped["reference_styles"]):
        assert a["name"] == b["name"] and np.allclose(a["code"], b["code"], atol=1e-3)


def test_corrupt_picture_model_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["import-picture", "--onnx", str(bad), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.onnx" in err[0]


def test_add_use_blend_switch_remove(pictures, store, photos):
    warm, t = add_picture_style(pictures["warm"], "Warm Stripes", store)
    assert t["seconds"] < 30 and warm.mode == "picture"
    add_picture_style(pictures["cool"], "Cool Stripes", store)
    catalog = load_catalog(store=store)
    assert [s.name for s in catalog.styles[-2:]] == ["Warm Stripes", "Cool Stripes"]
    assert catalog.family_of(catalog.lookup("warm stripes")) == "picture" and catalog.is_own(catalog.lookup("cool-stripes"))
    with create_backend("onnxruntime", pack=catalog) as b:
        img = photos["coffee"]
        warm_out, cool_out = (b.run(img, catalog.weights(n)) for n in ("warm stripes", "cool stripes"))
        half = b.run(img, catalog.weights("warm stripes:0.5,cool stripes:0.5"))
        stock = b.run(img, catalog.weights("7"))
        cross = b.run(img, catalog.weights("7:0.5,warm stripes:0.5"))
    mad = lambda a, c: np.abs(a.astype(int) - c).mean()  # noqa: E731
    assert mad(warm_out, img) > 10 and mad(warm_out, cool_out) > 10
    # A blend of two picture styles is one new code: unlike both, between them in colour.
    assert mad(half, warm_out) > 3 and mad(half, cool_out) > 3
    # stock + picture: both networks run, the outputs mix by share
    expected = (stock.astype(np.float32) + warm_out) / 2
    assert np.abs(cross - expected).max() <= 1
    # a picture style never changes the picture network's weights: the export is shared
    assert load_catalog(store=store).packs["picture"].digest == StylePack.load(PICTURE_MANIFEST).digest
    store.remove("Warm Stripes")
    assert "Warm Stripes" not in [s.name for s in load_catalog(store=store).styles]
    with pytest.raises(StyleError):
        load_catalog(store=store).weights("warm stripes")


def test_pipeline_switches_networks_without_a_rebuild(pictures, store, photos):
    add_picture_style(pictures["warm"], "Warm Stripes", store)
    catalog = load_catalog(store=store)
    source = StillSource(SourceSettings("image", fps=1000), photos["chelsea"])
    backend = create_backend("onnxruntime", pack=catalog)
    stock_backend = backend.get("stock")
    pipe = Pipeline(source, backend, catalog, [], StyleSettings("7"))
    try:
        a = pipe.step().stylized
        pipe.update(style="warm stripes")
        b = pipe.step().stylized
        pipe.update(style="7")
        c = pipe.step().stylized
        assert pipe.backend is backend and backend.get("stock") is stock_backend
    finally:
        pipe.close()
    assert np.array_equal(a, c) and np.abs(a.astype(int) - b).mean() > 10


@pytest.mark.parametrize("name", ["torch-cpu", "torch-cpu-compiled"])
def test_fp32_backends_run_the_picture_network(name, picture_net, codes, photos):
    with create_single(name, pack=picture_net) as b, create_single("onnxruntime", pack=picture_net) as ref:
        for code in codes:
            v = code_vector(code)
            assert np.abs(b.run(photos["astronaut"], v).astype(int) - ref.run(photos["astronaut"], v)).max() <= 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["torch-cpu-bf16", "torch-cpu-int8"])
def test_fast_paths_keep_fidelity_on_the_picture_network(name, picture_net, codes, int8_picture):
    """bf16/int8 are checked like the stock ones: against fp32 over the reference codes (int8 has its
    guard; its build is the run's, started early: conftest.INT8_BUILDS)."""
    from skimage import data

    try:
        fast = create_single(name, pack=picture_net)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    frame = cv2.resize(data.astronaut(), (192, 144), interpolation=cv2.INTER_AREA)  # conftest.INT8_BUILDS' size
    vectors = picture_net.calibration_vectors()[::5] + [code_vector(c) for c in codes]
    with fast, create_single("onnxruntime", pack=picture_net) as ref:
        worst = min(psnr(fast.run(frame, v), ref.run(frame, v)) for v in vectors)
    print(f"{name} on the picture network: worst {worst:.1f} dB")
    assert worst >= 33


def test_export_has_the_code_as_an_input(tmp_path):
    """ONNX Runtime and TensorRT take the picture network with [code, 1] as its style input
    (its TensorRT cache key: tests/test_cuda.py)."""
    import onnx

    assert main(["export", "onnx", str(tmp_path / "p.onnx"), "--network", "picture"]) == 0
    model = onnx.load(str(tmp_path / "p.onnx"))
    dims = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims == {"image": [1, 3, "height", "width"], "style_weights": [101]}


def test_cli_add_stylize_styles_remove(pictures, tmp_path, photos, capsys):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), photos["astronaut"][:, :, ::-1])
    assert main(["style", "add", str(pictures["warm"]), "--name", "Warm Stripes"]) == 0
    assert "picture style" in capsys.readouterr().out
    assert main(["styles", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[-1]["name"] == "Warm Stripes" and listed[-1]["network"] == "picture"
    for spec in ("warm stripes", "warm stripes:0.3,3:0.7"):
        out = tmp_path / "out.png"
        assert main(["stylize", str(photo), str(out), "--style", spec]) == 0
        assert cv2.imread(str(out)).shape == photos["astronaut"].shape
    assert main(["style", "remove", "warm stripes"]) == 0
    assert main(["stylize", str(photo), str(tmp_path / "x.png"), "--style", "warm stripes"]) == 2


def _png_header_only(w, h):
    """A PNG that claims w×h but holds one row of data: huge in its header, tiny on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\x00" * (3 * w + 1))) + chunk(b"IEND", b""))


def _bad_pictures(tmp_path):
    from PIL import Image

    def save(name, img, **kw):
        img.save(tmp_path / name, **kw)
        return tmp_path / name
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"this is not a picture")
    (tmp_path / "huge.png").write_bytes(_png_header_only(20000, 20000))
    ok, png16 = cv2.imencode(".png", np.full((64, 64, 3), 40000, np.uint16))
    (tmp_path / "deep.png").write_bytes(png16.tobytes())
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    return {
        "empty.png": "empty", "junk.jpg": "cannot read image", "huge.png": "400 MP",
        save("dot.png", Image.new("RGB", (1, 1))).name: "too small",
        save("cmyk.jpg", Image.new("CMYK", (64, 64))).name: "CMYK",
        "deep.png": "16-bit",
        save("alpha.png", Image.new("RGBA", (64, 64))).name: "transparency",
        save("anim.gif", frames[0], save_all=True, append_images=frames[1:]).name: "animated",
    }


def test_bad_pictures_are_one_line_and_nothing_is_written(tmp_path, capsys):
    store = UserStyleStore()
    before = [s.name for s in store.list()]
    for name, words in _bad_pictures(tmp_path).items():
        assert main(["style", "add", str(tmp_path / name), "--name", f"bad {name}"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and name in err[0], (name, err)
    assert [s.name for s in store.list()] == before
    assert not list(store.root.glob("bad-*")) if store.root.is_dir() else True


def _png_1bit(side):
    """A 1-bit PNG of side×side, all black: a few kB on disk, side² pixels once decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress((b"\x00" + bytes((side + 7) // 8)) * side, 9)) + chunk(b"IEND", b""))


def test_a_big_picture_is_decoded_no_bigger_than_the_predictor_needs(photos):
    """The issue's 4.9 kB 1-bit 6300×6300 PNG (390 MB and 3.8 s before), and a JPEG decoded at 1/4 by
    its decoder: the predictor sees what it saw from the full decode."""
    import time

    from engine.model.predictor import centre_square
    from engine.styles.pictures import read_style_picture

    t = time.process_time()
    rgb = read_style_picture(_png_1bit(6300), short_side=512)
    assert rgb.shape == (525, 525, 3) and rgb.dtype == np.uint8 and time.process_time() - t < 2.0
    painting = cv2.resize(photos["astronaut"], (3200, 2400), interpolation=cv2.INTER_CUBIC)
    data = cv2.imencode(".jpg", painting[:, :, ::-1])[1].tobytes()
    reduced, full = read_style_picture(data, short_side=512), read_style_picture(data)
    assert reduced.shape == (600, 800, 3) and full.shape == (2400, 3200, 3)
    assert np.abs(centre_square(reduced, 256).astype(int) - centre_square(full, 256)).mean() < 2.0


def test_names_a_spec_cannot_select_are_refused_before_the_picture_is_read(pictures, store):
    from engine.errors import InputError

    for name in ("k:1", "a,b", "x" * 65, "12", "tab\there", "  "):
        with pytest.raises(InputError):
            add_picture_style(b"not even a picture", name, store=store, taken=set())
    assert not store.root.exists() or not list(store.root.iterdir())
    style, _ = add_picture_style(pictures["warm"], "  Warm  ", store=store, taken=set())
    assert style.name == "Warm"
    with pytest.raises(InputError, match="already exists"):  # the store knows its own names
        store.add("warm", {"code": np.zeros(100, np.float32)}, "x", "picture", taken=set())
    assert [s.name for s in store.list()] == ["Warm"]


def test_a_failed_save_leaves_no_file_and_no_index_entry(store, monkeypatch):
    import safetensors.numpy

    from engine.styles.user_styles import StyleSaveError

    def fails(tensors, filename, *a, **kw):
        open(filename, "wb").write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", fails)
    with pytest.raises(StyleSaveError, match="No space left on device"):
        store.add("Full Disk", {"code": np.zeros(100, np.float32)}, "x", "picture", taken=set())
    assert store.list() == [] and [p.name for p in store.root.iterdir()] in ([], [".index.lock"])  # the lock stays


class _Served:
    def __init__(self, catalog, image):
        from engine.sinks.server import ServeSettings
        from engine.live.session import Session, SessionSettings

        self.session = Session(catalog, SessionSettings(backend="onnxruntime", style=StyleSettings("3"),
                                                        serve=ServeSettings(port=0)),
                               source=StillSource(SourceSettings("image", fps=30), image)).open()
        self.server = self.session.serve()
        self.pipe = self.session.pipeline
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.session.run, kwargs={"stop": self.stop}, daemon=True)
        self.thread.start()

    def post(self, path, body, length=None):
        host, port = self.server.url.split("//")[1].rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.putrequest("POST", path)
        conn.putheader("Content-Length", str(len(body) if length is None else length))
        conn.putheader("Content-Type", "image/png")  # the server refuses a body without its type (415)
        conn.endheaders()
        try:
            conn.send(body)
        except OSError:
            pass  # the server answered before reading a body it refused
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.session.close()


def test_server_makes_and_selects_a_picture_style(pictures, tmp_path, photos, caplog, own_style_store):
    served = _Served(load_catalog(), photos["coffee"])
    try:
        status, reply = served.post("/style/picture?name=Warm%20Stripes", pictures["warm"].read_bytes())
        assert status == 200 and reply["style"] == "Warm Stripes"
        assert served.session.current() == "Warm Stripes"
        status, _ = served.post("/style/picture", b"x" * 10, length=64 << 20)
        assert status == 413
        bad = _bad_pictures(tmp_path)
        for name in ("junk.jpg", "alpha.png", "anim.gif", "dot.png"):
            with caplog.at_level("WARNING"):
                status, reply = served.post("/style/picture", (tmp_path / name).read_bytes())
            assert status == 400, name
        status, _ = served.post("/style/picture", (tmp_path / "huge.png").read_bytes())
        assert status == 413
        assert bad and served.thread.is_alive()
        # the new style really runs: frames now differ from style 3's
        status, reply = served.post("/style/picture", pictures["cool"].read_bytes())
        assert status == 200 and reply["style"].startswith("Picture ")
    finally:
        served.close()


@pytest.mark.slow
def test_a_network_needed_mid_stream_runs_at_once_while_the_compiled_one_builds(pictures, store, photos):
    """Live use: the first picture-style frame on a compiled backend is served by ONNX Runtime; the
    compiled build warms on a thread and takes over between frames."""
    from engine.backends import BackendOptions
    from engine.backends.networks import NetworkBackends

    add_picture_style(pictures["warm"], "Warm Stripes", store)
    catalog = load_catalog(store=store)
    w = catalog.weights("warm stripes")
    frame = photos["astronaut"]  # the size test_fp32_backends_run_the_picture_network compiles: one compile
    with NetworkBackends("torch-cpu-compiled", catalog, BackendOptions(background_warmup=True)) as nets:
        (first, vector, _), = nets.parts(w, frame.shape)
        assert first.name == "onnxruntime"
        expected = first.run(frame, vector)
        assert wait_until(lambda: not nets.building(), timeout=300)
        (second, _, _), = nets.parts(w, frame.shape)
        assert second.name == "torch-cpu-compiled"  # the stand-in stays for sizes still to build
        assert np.abs(second.run(frame, vector).astype(int) - expected).max() <= 2
