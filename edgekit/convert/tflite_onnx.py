"""tflite -> onnx: tf2onnx's TFLite reader (quantized models keep Q/DQ nodes)."""

from __future__ import annotations

from pathlib import Path

from edgekit.convert._common import (
    captured_logs,
    quiet_tensorflow,
    reason,
    require,
)
from edgekit.convert.graph import EdgeOptions
from edgekit.convert.tf_onnx import DEFAULT_OPSET, check_unsupported, save_result
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    quiet_tensorflow()
    require("tf2onnx", "tf2onnx")
    from tf2onnx import convert as t2o

    if str(src.format) == "tflite":
        from edgekit.verify import repaired_tflite

        # A 1-D tensor (a bias) naming a quantization axis other than 0 stops both
        # frontends; the copy fixes that axis to 0, the only one such a tensor has.
        src = repaired_tflite(src, out.parent) or src
    shapes = {k: list(v) for k, v in opts.input_shapes.items()} or None
    with captured_logs("tf2onnx") as logs:
        try:
            proto, _ = t2o._convert_common(
                None,
                tflite_path=str(src.path),
                name=src.path.stem,
                opset=opts.opset or DEFAULT_OPSET,
                shape_override=shapes,
                continue_on_error=False,
            )
        except Exception as exc:  # tf2onnx raises many types
            check_unsupported(src, logs, None)
            raise UnsupportedModelError(
                f"{src.path}: tf2onnx cannot convert this TFLite model: {reason(exc)}"
            ) from None
    save_result(src, out, logs, proto, opts.precision)
    return out
