"""StyleNet with the imported weights against the original ONNX file, on real photos."""
import json
import re
import shutil

import numpy as np
import pytest
import torch

from engine.errors import ModelError, StyleError
from engine.model.stylenet import StyleNet, StyleNetConfig
from engine.model.stock import load_stock_onnx
from engine.styles.importers import STOCK_NAMES, convert_stock
from engine.styles.packs import STOCK_MANIFEST, StylePack


def _blends(n=26):
    eye = np.eye(n, dtype=np.float32)
    mix = np.zeros(n, np.float32)
    mix[[3, 12]] = 0.5
    uniform = np.full(n, 1 / n, np.float32)
    return {"style0": eye[0], "style7": eye[7], "style19": eye[19], "3+12": mix, "all": uniform}


@pytest.mark.parametrize("blend", list(_blends()))
def test_stylenet_matches_original_onnx(pack, photos, stock_session, blend):
    net = pack.build()
    w = _blends()[blend]
    for name, img in photos.items():
        x = img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0  # raw, odd sizes included
        ref = stock_session.run(None, {"image": x, "style_weights": w})[0]
        with torch.no_grad():
            ours = net(torch.from_numpy(x), torch.from_numpy(w)).numpy()
        assert ours.shape == ref.shape, name
        assert np.abs(ours - ref).max() <= 1e-4, (name, blend)


def test_config_is_read_from_weight_shapes():
    config, state = load_stock_onnx()
    assert config == StyleNetConfig()  # the stock layout
    net = StyleNet(config)
    assert set(net.state_dict()) == set(state)


def test_styles_differ_and_blend_sits_between(pack, photos):
    net = pack.build()
    x = torch.from_numpy(photos["coffee"].astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
    eye = torch.eye(26)
    with torch.no_grad():
        a, b = net(x, eye[3]), net(x, eye[12])
        mid = net(x, 0.5 * eye[3] + 0.5 * eye[12])
    assert (a - b).abs().mean() > 0.05
    assert 0.01 < (mid - a).abs().mean() < (a - b).abs().mean()


def test_committed_checkpoint_is_reproducible(tmp_path):
    manifest = convert_stock(tmp_path / "stock26.json")
    fresh = json.loads(manifest.read_text())
    committed = json.loads(STOCK_MANIFEST.read_text())
    assert fresh["sha256"] == committed["sha256"]
    assert [s["name"] for s in committed["styles"]] == list(STOCK_NAMES)
    assert [s["id"] for s in committed["styles"]] == list(range(26))


def test_style_specs(pack):
    assert pack.weights("7").argmax() == 7
    assert pack.weights("Starry Swirl").argmax() == 19
    assert pack.weights("starry-swirl").argmax() == 19
    w = pack.weights("3:1,lilac pastel:3")
    assert np.isclose(w[3], 0.25) and np.isclose(w[12], 0.75) and np.isclose(w.sum(), 1)
    for bad, says in [("26", "out of range"), ("nope", "unknown style 'nope'"), ("3:x", "bad weight 'x'"),
                      ("3:-1", "non-negative"), ("", "empty style spec"), ("3:0", "not all zero")]:
        with pytest.raises(StyleError, match=re.escape(says)):
            pack.weights(bad)


def _copy_pack(tmp_path):
    shutil.copy(STOCK_MANIFEST, tmp_path / "p.json")
    shutil.copy(STOCK_MANIFEST.with_suffix(".safetensors"), tmp_path / "stock26.safetensors")
    return tmp_path / "p.json"


def test_corrupt_weights_are_rejected(tmp_path):
    manifest = _copy_pack(tmp_path)
    weights = tmp_path / "stock26.safetensors"
    data = bytearray(weights.read_bytes())
    data[5000:5010] = b"\x00" * 10
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        StylePack.load(manifest)
    manifest.write_text("{not json")
    with pytest.raises(ModelError, match="corrupt style manifest"):
        StylePack.load(manifest)


def test_corrupt_onnx_is_rejected(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ModelError):
        load_stock_onnx(bad)
