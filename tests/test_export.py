"""Our ONNX export: valid, native InstanceNormalization, and equal to PyTorch (|Δ| ≤ 1e-4)."""
import numpy as np
import onnx
import pytest
import onnxruntime as ort
import torch

from engine.backends.export import cached_onnx, export_onnx


@pytest.mark.parametrize("cpu_layout", [False, True])
def test_export_is_valid_and_matches_pytorch(pack, photos, tmp_path, cpu_layout):
    """``cpu_layout``: the CPU export, whose last conv (3 outputs) is its 4×4-blocked equivalent (48
    channels, stride 4, then depth-to-space) and whose upsampling convs are sub-pixel convs (no Resize):
    the same network as the PyTorch module's plain convs, on odd frame sizes too."""
    path = export_onnx(pack, tmp_path / "m.onnx", cpu_layout=cpu_layout)
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert (ops.count("DepthToSpace"), "Resize" in ops) == ((3, False) if cpu_layout else (0, True))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert "InstanceNormalization" in ops and "MatMul" in ops
    assert [i.name for i in model.graph.input] == ["image", "style_weights"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param  # dynamic H, W
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = pack.build()
    for spec in ["5", "0:0.3,19:0.7"]:
        w = pack.weights(spec)
        for img in photos.values():
            x = img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            ref = net(torch.from_numpy(x), torch.from_numpy(w)).detach().numpy()
            out = session.run(None, {"image": x, "style_weights": w})[0]
            assert np.abs(out - ref).max() <= 1e-4


def test_export_is_cached_by_weights(pack):
    first = cached_onnx(pack)
    mtime = first.stat().st_mtime_ns
    assert cached_onnx(pack) == first and first.stat().st_mtime_ns == mtime
    assert pack.digest[:16] in first.name
