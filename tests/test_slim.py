"""The slim student network (space-to-depth config): manifests, ONNX export, blends, frame sizes."""
import json

import numpy as np
import pytest
import torch

from engine.model.config import StyleNetConfig
from engine.backends.framed import FramedStyleNet
from engine.model.stylenet import StyleNet
from engine.paths import MODELS_DIR
from engine.styles.packs import STOCK_MANIFEST, StyleInfo, StylePack, save_pack
from lab.distill import SLIM_CONFIG

SLIM_MANIFEST = MODELS_DIR / "slim26.json"


@pytest.fixture(scope="module")
def slim_pack(tmp_path_factory):
    """The shipped slim26 pack; a random-weight one of the same config where it is not built yet."""
    if SLIM_MANIFEST.is_file():
        return StylePack.load(SLIM_MANIFEST)
    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in StyleNet(SLIM_CONFIG).state_dict().items()}
    styles = [StyleInfo(i, f"style {i}", "test", "n/a") for i in range(SLIM_CONFIG.num_styles)]
    path = tmp_path_factory.mktemp("slim") / "slim.json"
    save_pack(path, SLIM_CONFIG, state, styles)
    return StylePack.load(path)


def test_slim_config_round_trips_through_a_manifest(slim_pack, tmp_path):
    assert slim_pack.config.space_to_depth == 2 and slim_pack.config.downsample == 4
    styles = [StyleInfo(i, f"s{i}", "test", "n/a") for i in range(SLIM_CONFIG.num_styles)]
    save_pack(tmp_path / "p.json", slim_pack.config, slim_pack.state, styles, extra={"student_of": "stock26"})
    again = StylePack.load(tmp_path / "p.json")
    assert again.config == slim_pack.config
    assert json.loads((tmp_path / "p.json").read_text())["config"]["space_to_depth"] == 2
    again.build()  # the weights fit the config


def test_manifests_without_the_field_load_and_write_as_before():
    manifest = json.loads(STOCK_MANIFEST.read_text())
    assert "space_to_depth" not in manifest["config"]
    config = StyleNetConfig.from_dict(manifest["config"])
    assert config.space_to_depth == 1 and config.downsample == 4
    assert config.to_dict() == manifest["config"]  # re-saving the stock pack writes the same config


def test_slim_is_much_cheaper_than_stock():
    def macs(config):
        from engine.model.stylenet import ConvCIN

        net, total = StyleNet(config), [0]
        for m in net.modules():
            if isinstance(m, ConvCIN):
                m.register_forward_hook(lambda mod, i, o: total.__setitem__(0, total[0] + o.numel() * mod.w[0].numel()))
        with torch.no_grad():
            net(torch.rand(1, 3, 32, 32), torch.eye(config.num_styles)[0])
        return total[0] / 32 / 32

    assert macs(SLIM_CONFIG) * 3 <= macs(StyleNetConfig())


def test_onnx_export_matches_torch_in_onnxruntime(slim_pack, tmp_path):
    import onnx
    import onnxruntime as ort

    from engine.backends.export import export_onnx
    from skimage import data

    path = export_onnx(slim_pack, tmp_path / "slim.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DepthToSpace" in ops and "InstanceNormalization" in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = slim_pack.build()
    img = np.ascontiguousarray(data.astronaut()[::4, ::4][:96, :120])  # 96×120
    x = img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    for spec in ("7", "3:0.5,19:0.5"):
        w = slim_pack.weights(spec)
        ref = net(torch.from_numpy(x), torch.from_numpy(w)).numpy()
        out = session.run(None, {"image": x, "style_weights": w})[0]
        assert out.shape == x.shape
        assert np.abs(out - ref).max() <= 2 / 255


def test_blends_are_linear_in_the_cin_tables(slim_pack):
    net = slim_pack.build()
    a, b, t = 3, 19, 0.3
    w = slim_pack.weights({a: t, b: 1 - t})
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    blended = net(x, torch.from_numpy(w))
    # the same network with every table's row 0 replaced by the blend of rows a and b
    for norm in net.norms():
        gamma, beta = norm.affine(torch.from_numpy(w))
        assert torch.allclose(gamma[0], t * norm.gamma[a] + (1 - t) * norm.gamma[b], atol=1e-6)
        norm.gamma.data[0], norm.beta.data[0] = gamma[0], beta[0]
    assert torch.allclose(net(x, torch.eye(slim_pack.num_styles)[0]), blended, atol=1e-5)


@pytest.mark.parametrize("size", [(320, 240), (322, 241)])
def test_output_is_the_frame_size(slim_pack, size):
    from engine.backends import create_single

    w, h = size
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    with torch.no_grad():
        out = FramedStyleNet(slim_pack.build())(torch.from_numpy(frame), torch.from_numpy(slim_pack.weights(7)))
    assert out.shape == (h, w, 3) and out.dtype == torch.uint8
    with create_single("torch-cpu", pack=slim_pack) as backend:
        assert backend.run(frame, slim_pack.weights(7)).shape == (h, w, 3)


def test_a_resumed_phase_can_restart_the_lr_schedule():
    from types import SimpleNamespace

    from lab.distill import Distiller, DistillSettings

    lr = lambda settings, step: Distiller.lr_at(SimpleNamespace(settings=settings), step)  # noqa: E731
    plain = DistillSettings(steps=1000, lr=1e-3, lr_end=1e-5)
    restart = DistillSettings(steps=1500, lr=4e-4, lr_end=1e-5, schedule_start=500, warmup=50)
    assert lr(plain, 0) == pytest.approx(1e-5) and lr(plain, 100) == pytest.approx(1e-3)
    assert lr(plain, 1000) == pytest.approx(1e-5)
    assert lr(restart, 500) == pytest.approx(4e-4 / 50)  # warm-up again from the phase's first step
    assert lr(restart, 550) == pytest.approx(4e-4)
    assert lr(restart, 1500) == pytest.approx(1e-5)
    assert lr(restart, 1025) == pytest.approx(1e-5 + 0.5 * (4e-4 - 1e-5))  # half-way down the cosine


def test_per_sample_relative_mse_weighs_samples_alike():
    from lab.distill import _rel_mse, _rel_mse_per_sample

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 8, 8, generator=g), torch.rand(1, 8, 8, generator=g)
    assert _rel_mse_per_sample(a, b).item() == pytest.approx(_rel_mse(a, b).item(), rel=1e-5)
    # a sample 100x larger (a high-contrast style) counts as much as a small one
    big = _rel_mse_per_sample(torch.cat([a, 100 * a]), torch.cat([b, 100 * b])).item()
    assert big == pytest.approx(_rel_mse(a, b).item(), rel=1e-5)


def test_a_rows_only_phase_moves_only_the_chosen_styles_rows(tmp_path):
    """A per-style phase (``rows_only``, ``styles``) trains the CIN rows of those styles alone: the
    shared convs and every other style's rows stay bit for bit (styles within the floor keep their
    output), while the chosen rows do move."""
    import torch

    from engine.styles.packs import StylePack
    from lab.distill import SLIM_CONFIG, Distiller, DistillSettings

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    settings = DistillSettings(steps=2, batch=2, crop=32, lr=1e-2, warmup=1, perceptual_weight=0.0, gram_weight=0.0,
                               rows_only=True, styles="3,7", validation_crops=2, validate_every=1000)
    d = Distiller(StylePack.load().build(), SLIM_CONFIG, settings, photos, tmp_path)
    before = {k: v.clone() for k, v in d.student.state_dict().items()}
    d.train()
    after = d.student.state_dict()
    others = [i for i in range(26) if i not in (3, 7)]
    for name, value in after.items():
        if name.endswith(("gamma", "beta")):
            assert torch.equal(value[others], before[name][others]), name
        else:
            assert torch.equal(value, before[name]), name
    assert any(not torch.equal(after[n][[3, 7]], before[n][[3, 7]]) for n in after if n.endswith("gamma"))


def test_per_style_best_keeps_each_styles_rows_from_its_own_best_validation(tmp_path):
    """``per_style_best``: every trained style's rows come from the validation where its own Gram distance
    was lowest (the starting rows count), so one style cannot get worse on validation to help another."""
    import torch

    from engine.styles.packs import StylePack
    from lab.distill import SLIM_CONFIG, Distiller, DistillSettings

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    settings = DistillSettings(steps=3, batch=2, crop=32, lr=5e-2, warmup=1, perceptual_weight=0.0, gram_weight=0.0,
                               rows_only=True, styles="3,7", validation_crops=2, validate_every=1,
                               per_style_best=True, style_validation_crops=2)
    d = Distiller(StylePack.load().build(), SLIM_CONFIG, settings, photos, tmp_path)
    start = {k: v.clone() for k, v in d.student.state_dict().items()}
    d.train()
    state = d.with_best_rows()
    for sid in (3, 7):
        history = [(row["step"], row[f"val_gram_{sid}"]) for row in d.history if f"val_gram_{sid}" in row]
        assert [s for s, _ in history] == [0, 1, 2, 3]
        step, gram = min(history, key=lambda h: h[1])
        assert d.best_rows[sid]["step"] == step and d.best_rows[sid]["gram"] == pytest.approx(gram)
        if step == 0:
            assert all(torch.equal(state[n][sid], start[n][sid]) for n in state if n.endswith("gamma"))
    others = [i for i in range(26) if i not in (3, 7)]
    assert all(torch.equal(state[n][others], start[n][others]) for n in state if n.endswith(("gamma", "beta")))
    shipped = torch.load(tmp_path / "best_rows.pt", weights_only=False)["student"]
    assert all(torch.equal(shipped[n], state[n]) for n in state)
    with pytest.raises(ValueError, match="rows_only"):
        Distiller(StylePack.load().build(), SLIM_CONFIG, DistillSettings(per_style_best=True), photos, tmp_path / "x")


def test_depth_to_space_is_pixel_shuffle_and_crop():
    import torch

    from engine.backends.depth_to_space import depth_to_space

    for channels, s in ((12, 2), (27, 3)):  # the numba kernel (2, 3 colours) and the general numpy one
        y = torch.randint(0, 256, (channels, 7, 9), dtype=torch.uint8)
        want = torch.nn.functional.pixel_shuffle(y[None], s)[0].permute(1, 2, 0)[:7 * s - 1, :9 * s - 1].numpy()
        assert np.array_equal(depth_to_space(y.numpy(), s, 7 * s - 1, 9 * s - 1), want)


def test_int8_slim_matches_fp32_at_an_odd_size(slim_pack, photos, int8_slim):
    """The int8 path returns the slim network's output before its depth-to-space and finishes it in numpy
    (fused in the graph it was a third of the network's time): same frame as fp32, padded size cropped.
    (Its build is the run's, started early: conftest.INT8_BUILDS.)"""
    import cv2

    from engine.backends import create_single
    from engine.errors import BackendUnavailable
    from engine.metrics import psnr

    frame = cv2.resize(photos["coffee"], (162, 122), interpolation=cv2.INTER_AREA)  # conftest.INT8_BUILDS' size
    try:
        int8 = create_single("torch-cpu-int8", pack=slim_pack)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    with int8, create_single("torch-cpu", pack=slim_pack) as fp32:
        w = slim_pack.weights(7)
        got, ref = int8.run(frame, w), fp32.run(frame, w)
    assert got.shape == frame.shape and got.dtype == np.uint8
    assert psnr(got, ref) > 35.0
