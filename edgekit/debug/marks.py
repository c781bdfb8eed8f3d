"""Every intermediate value of a model, by the ONNX name it carries.

ONNX: each node output becomes a graph output (as Polygraphy's
``--onnx-outputs mark all``), run on ONNX Runtime, else on the ONNX reference
evaluator. OpenVINO IR: OpenVINO's ONNX frontend keeps ONNX output names as
tensor names, so each op output carrying one of the wanted names is added as a
model output. Other formats have no such names here and give nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError, UnsupportedModelError, first_line
from edgekit.model import Model


def node_outputs(proto: object) -> list[tuple[str, str, str]]:
    """(node name, op type, output name) of the top graph's nodes, in topological order."""
    out = []
    for i, node in enumerate(proto.graph.node):  # type: ignore[attr-defined]
        name = node.name or f"{node.op_type}_{i}"
        out.extend((name, node.op_type, o) for o in node.output if o)
    return out


def quantized_images(proto: object) -> dict[str, str]:
    """value -> the output of the QuantizeLinear/DequantizeLinear pair that quantizes it.

    In a QDQ model that value, not the float one, is what the next layer reads,
    so it is the one to compare with the float source (as ONNX Runtime's
    ``qdq_loss_debug`` pairs them).
    """
    made_by = {o: n for n in proto.graph.node for o in n.output}  # type: ignore[attr-defined]
    images = {}
    for node in proto.graph.node:  # type: ignore[attr-defined]
        q = made_by.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if q is not None and q.op_type == "QuantizeLinear":
            images[q.input[0]] = node.output[0]
    return images


def onnx_values(model: Model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every node output of an ONNX model on `feeds`, by name."""
    import onnx

    proto = onnx.load(str(model.path))
    have = {o.name for o in proto.graph.output}
    for _, _, name in node_outputs(proto):
        if name not in have:
            proto.graph.output.append(onnx.ValueInfoProto(name=name))
            have.add(name)
    with tempfile.TemporaryDirectory(prefix="edgekit-marks-") as tmp:
        path = Path(tmp) / "marked.onnx"
        onnx.save(proto, str(path))
        try:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            names = [o.name for o in sess.get_outputs()]
            return dict(zip(names, sess.run(names, dict(feeds)), strict=True))
        except Exception:  # noqa: BLE001 - ONNX Runtime cannot run it: use the specification
            from edgekit.runtimes import open_session

            with open_session(model, "onnx-reference") as sess:
                return sess.run_all(feeds)  # type: ignore[attr-defined]


def openvino_values(
    model: Model, feeds: Mapping[str, np.ndarray], wanted: Iterable[str]
) -> dict[str, np.ndarray]:
    """The outputs of an OpenVINO IR's ops whose tensor names are in `wanted`, by name."""
    import openvino as ov

    wanted = set(wanted)
    core = ov.Core()
    ov_model = core.read_model(str(model.path))
    marks = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() in ("Parameter", "Constant", "Result"):
            continue
        for port in op.outputs():
            if port.get_names() & wanted:
                marks.append(port)
    if marks:
        ov_model.add_outputs(marks)
    try:
        compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        order = [p.get_any_name() for p in compiled.inputs]
        res = compiled.create_infer_request().infer([feeds[n] for n in order])
    except Exception as exc:  # noqa: BLE001 - OpenVINO's own error types
        raise UnsupportedModelError(
            f"{model.path}: OpenVINO cannot run the marked model: {first_line(exc)}"
        ) from None
    values: dict[str, np.ndarray] = {}
    for port in compiled.outputs:
        for name in port.get_names() & wanted:
            values[name] = np.array(res[port])
    return values


def values_of(
    model: Model, feeds: Mapping[str, np.ndarray], wanted: Iterable[str]
) -> dict[str, np.ndarray]:
    """Intermediate values of `model` (any format) whose names are in `wanted`."""
    read = _VALUE_READERS.get(str(model.format))
    if read is None:
        raise EdgekitError(
            f"{model.path}: edgekit cannot mark intermediate values of {model.format} models"
        )
    return read(model, feeds, wanted)


def _onnx_wanted(
    model: Model, feeds: Mapping[str, np.ndarray], wanted: Iterable[str]
) -> dict[str, np.ndarray]:
    """An ONNX model's values in `wanted`, a quantized value standing for its float one."""
    import onnx

    wanted = set(wanted)
    values = onnx_values(model, feeds)
    for name, image in quantized_images(onnx.load(str(model.path))).items():
        if image in values:
            values[name] = values[image]
    return {k: v for k, v in values.items() if k in wanted}


# The formats whose intermediate values carry ONNX names, and how each is read.
_VALUE_READERS = {"onnx": _onnx_wanted, "openvino": openvino_values}
