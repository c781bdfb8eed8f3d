"""ONNX reader: graph inputs (minus initializers), outputs, ops and parameters."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edgekit.errors import ModelError
from edgekit.formats import ModelInfo
from edgekit.model import Dim, Model, Signature, TensorSpec


def _dtype(elem_type: int) -> str:
    from onnx import helper

    try:
        return str(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        return f"onnx_type_{elem_type}"


def _spec(value_info: Any) -> TensorSpec:
    ttype = value_info.type.tensor_type
    shape: tuple[Dim, ...] | None = None
    if ttype.HasField("shape"):
        dims: list[Dim] = []
        for d in ttype.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        shape = tuple(dims)
    return TensorSpec(value_info.name, shape, _dtype(ttype.elem_type))


def load_proto(model: Model, load_external_data: bool = False) -> Any:
    import onnx

    try:
        return onnx.load(str(model.path), load_external_data=load_external_data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{model.path}: a damaged ONNX file ({exc})") from None


def read(model: Model) -> ModelInfo:
    import numpy as np

    proto = load_proto(model)
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs = tuple(_spec(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(_spec(v) for v in graph.output)
    ops = Counter(n.op_type if not n.domain or n.domain == "ai.onnx" else f"{n.domain}.{n.op_type}"
                  for n in graph.node)  # fmt: skip
    params = sum(int(np.prod(t.dims)) for t in graph.initializer)
    by_name = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    params += int(np.prod(attr.t.dims))
        elif node.op_type == "ConstantOfShape" and node.input and node.input[0] in by_name:
            # Weights generated at load time (as in ONNX's "light" test models).
            from onnx import numpy_helper

            params += int(np.prod(numpy_helper.to_array(by_name[node.input[0]])))
    return ModelInfo(Signature(inputs, outputs), dict(ops), params)
