"""savedmodel/onnx/tflite -> openvino: `openvino.convert_model` then `openvino.save_model`.

One module serves three edges, since OpenVINO picks its frontend (TensorFlow,
ONNX, TFLite) from the source. fp16 compresses weights with `compress_to_fp16`;
fp32 keeps them as they are (`save_model` would otherwise compress by default).
"""

from __future__ import annotations

from pathlib import Path

from edgekit.convert._common import quiet_tensorflow, require
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    require("openvino", "openvino")
    if str(src.format) == "savedmodel":
        quiet_tensorflow()
    import openvino as ov

    from edgekit.formats.openvino import explain_error

    if str(src.format) == "tflite":
        from edgekit.verify import repaired_tflite

        # A 1-D tensor (a bias) naming a quantization axis other than 0 stops both
        # frontends; the copy fixes that axis to 0, the only one such a tensor has.
        src = repaired_tflite(src, out.parent) or src
    kwargs = {}
    if opts.input_shapes:
        kwargs["input"] = {k: list(v) for k, v in opts.input_shapes.items()}
    try:
        ov_model = ov.convert_model(str(src.path), **kwargs)
    except Exception as exc:  # OpenVINO raises RuntimeError, OpConversionFailure, ...
        raise UnsupportedModelError(
            f"{src.path}: OpenVINO's {src.format} frontend cannot convert this model: "
            f"{explain_error(exc)}"
        ) from None
    out = out.with_suffix(".xml")
    ov.save_model(ov_model, str(out), compress_to_fp16=opts.precision == "fp16")
    return out
