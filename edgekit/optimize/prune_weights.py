"""Magnitude pruning of ONNX and TFLite weights, without training data.

The smallest weights of each conv/matmul weight tensor are set to zero. The file
keeps its dense layout, so it is exactly as large and as fast as before: the zeros
only help once the file is compressed (gzip, an OTA update, a flash image). Without
fine-tuning accuracy usually drops; the report measures by how much.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import Pass, PassConfig, PassResult

NOTE = (
    "weight pruning without training only zeroes weights: the model is as large and as "
    "fast as before and only its compressed (gzip) size shrinks"
)
ONNX_WEIGHT_OPS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
TFLITE_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
MIN_ELEMENTS = 64  # smaller tensors (tiny heads, scalars) are left alone


@dataclass
class WeightPruneResult:
    path: Path
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    note: str = NOTE


def _zero_smallest(w: np.ndarray, sparsity: float) -> np.ndarray:
    k = int(round(sparsity * w.size))
    if k <= 0:
        return w
    flat = np.abs(w).ravel()
    threshold = np.partition(flat, k - 1)[k - 1]
    out = w.copy()
    out[np.abs(w) <= threshold] = 0
    return out


def prune_onnx(src: Path, out: Path, sparsity: float) -> WeightPruneResult:
    """Zero `sparsity` of each Conv/Gemm/MatMul float weight initializer of an ONNX model."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(src))
    inits = {i.name: i for i in m.graph.initializer}
    result = WeightPruneResult(Path(out))
    for node in m.graph.node:
        pos = ONNX_WEIGHT_OPS.get(node.op_type)
        if pos is None or len(node.input) <= pos or node.input[pos] not in inits:
            continue
        init = inits[node.input[pos]]
        w = numpy_helper.to_array(init)
        if w.dtype.kind != "f" or w.size < MIN_ELEMENTS:
            continue
        pruned = _zero_smallest(w, sparsity)
        init.CopyFrom(numpy_helper.from_array(pruned.astype(w.dtype), init.name))
        result.layer_sparsity[node.name or init.name] = float(np.mean(pruned == 0))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    return result


def prune_tflite(src: Path, out: Path, sparsity: float) -> WeightPruneResult:
    """Zero `sparsity` of each conv/fully-connected float32 weight buffer of a TFLite model."""
    from edgekit.convert._common import quiet_tensorflow

    quiet_tensorflow()
    try:
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils
    except ImportError as exc:
        raise UnsupportedModelError(
            f"pruning TFLite weights needs TensorFlow's flatbuffer tools ({exc})."
        ) from None
    model = flatbuffer_utils.read_model(str(src))
    opnames = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    result = WeightPruneResult(Path(out))
    for sub in model.subgraphs:
        for op in sub.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = opnames.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
            if name not in TFLITE_WEIGHT_OPS or len(op.inputs) < 2 or op.inputs[1] < 0:
                continue
            tensor = sub.tensors[op.inputs[1]]
            buf = model.buffers[tensor.buffer]
            if tensor.type != schema.TensorType.FLOAT32 or buf.data is None:
                continue
            w = np.frombuffer(bytes(bytearray(buf.data)), dtype=np.float32)
            if w.size < MIN_ELEMENTS:
                continue
            pruned = _zero_smallest(w, sparsity)
            buf.data = np.frombuffer(pruned.tobytes(), dtype=np.uint8)
            key = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            result.layer_sparsity[key] = float(np.mean(pruned == 0))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    flatbuffer_utils.write_model(model, str(out))
    return result


def prune_weights(src: Path, out: Path, sparsity: float, fmt: str) -> WeightPruneResult:
    """Magnitude-prune the weights of an ONNX or TFLite file (no training data needed)."""
    if not 0.0 <= sparsity < 1.0:
        raise UnsupportedModelError(f"pruning sparsity must be in [0, 1), got {sparsity}.")
    if fmt == "onnx":
        return prune_onnx(Path(src), Path(out), sparsity)
    if fmt == "tflite":
        return prune_tflite(Path(src), Path(out), sparsity)
    raise UnsupportedModelError(f"weight pruning takes ONNX or TFLite models, not {fmt}.")


@dataclass(frozen=True)
class WeightPruneConfig(PassConfig):
    """The fraction of each weight tensor to zero."""

    sparsity: float


class WeightPrune(Pass):
    """The ``prune_weights`` pass: `prune_weights` on an ONNX or TFLite file."""

    name = "prune_weights"
    Config = WeightPruneConfig

    def _run(self, model: Any, config: WeightPruneConfig, out: Path) -> PassResult:
        from edgekit.model import Model, load

        m = model if isinstance(model, Model) else load(model)
        fmt = str(m.format)
        res = prune_weights(m.path, out, config.sparsity, fmt)
        details = {
            "layer_sparsity": {k: round(v, 4) for k, v in res.layer_sparsity.items()},
            "note": res.note,
        }
        return PassResult(res.path, fmt, "fp32", details, [res.note])
