"""keras/savedmodel -> onnx: tf2onnx on the serving signature (NHWC layout kept).

Keras models go through a temporary SavedModel. Ops tf2onnx cannot map are
named in the error (tf2onnx itself only logs them and writes an unrunnable graph).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from edgekit.convert._common import (
    captured_logs,
    onnx_to_fp16,
    quiet_tensorflow,
    reason,
    require,
)
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model

DEFAULT_OPSET = 17


def unsupported_ops(logs: list[str], proto: object | None = None) -> list[str]:
    """Ops tf2onnx reported as unsupported, or left in a non-ONNX domain of the graph."""
    ops: set[str] = set()
    for line in logs:
        if "Unsupported ops" in line:
            ops.update(re.findall(r"'([\w.]+)'", line))
    if proto is not None:
        std = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
        ops.update(n.op_type for n in proto.graph.node if n.domain not in std)  # type: ignore[attr-defined]
    return sorted(ops)


def check_unsupported(src: Model, logs: list[str], proto: object | None) -> None:
    ops = unsupported_ops(logs, proto)
    if ops:
        raise UnsupportedModelError(
            f"{src.path}: tf2onnx cannot convert op{'s' if len(ops) > 1 else ''} "
            f"{', '.join(ops)} to ONNX"
        )


def save_result(src: Model, out: Path, logs: list[str], proto: object, precision: str) -> None:
    """Refuse a graph tf2onnx left ops unconverted in, else write it (as fp16 when asked)."""
    from tf2onnx import utils

    check_unsupported(src, logs, proto)
    utils.save_protobuf(str(out), proto)
    if precision == "fp16":
        onnx_to_fp16(out, out)


def _shape_override(src_sig: object, input_shapes: dict[str, tuple[int, ...]]) -> dict | None:
    return {f"{k}:0": list(v) for k, v in input_shapes.items()} or None


def convert_savedmodel(sm_path: Path, src: Model, out: Path, opts: EdgeOptions) -> None:
    quiet_tensorflow()
    require("tf2onnx", "tf2onnx")
    from tf2onnx import convert as t2o
    from tf2onnx import tf_loader

    with captured_logs("tf2onnx") as logs:
        try:
            graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
                str(sm_path), None, None, return_initialized_tables=True,
                return_tensors_to_rename=True,
            )  # fmt: skip
            proto, _ = t2o._convert_common(
                graph_def,
                name=src.path.name,
                opset=opts.opset or DEFAULT_OPSET,
                input_names=inputs,
                output_names=outputs,
                tensors_to_rename=renames,
                initialized_tables=tables,
                shape_override=_shape_override(None, opts.input_shapes),
                continue_on_error=False,
            )
        except Exception as exc:  # tf2onnx raises ValueError, KeyError, TF errors...
            check_unsupported(src, logs, None)
            raise UnsupportedModelError(
                f"{src.path}: tf2onnx cannot convert this model: {reason(exc)}"
            ) from None
    save_result(src, out, logs, proto, opts.precision)


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    if str(src.format) != "keras":
        convert_savedmodel(src.path, src, out, opts)
        return out
    from edgekit.convert.keras_savedmodel import export_keras
    from edgekit.formats.keras import load_keras

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-sm-"))
    try:
        export_keras(load_keras(src), tmp / "sm", opts.input_shapes)
        convert_savedmodel(tmp / "sm", src, out, opts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
