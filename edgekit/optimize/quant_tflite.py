"""TFLite post-training quantization: dynamic range, float16, full int8, int16x8.

The TFLite converter quantizes while it converts, so the source is the float Keras
model (or a SavedModel folder), not a .tflite file. Calibration feeds reach the
converter as a ``representative_dataset``. Layers kept in float go through the
QuantizationDebugger's ``denylisted_nodes``, which names them by output tensor.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import LayerError, QuantOptions, require_precision

PRECISIONS = ("fp32", "dynamic", "fp16", "int8", "int8-float-fallback", "int16x8")


def _converter(source: Any) -> Any:
    from edgekit.convert._common import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    if isinstance(source, str | Path):
        return tf.lite.TFLiteConverter.from_saved_model(str(source))
    return tf.lite.TFLiteConverter.from_keras_model(source)


def _no_export_listing() -> contextlib.AbstractContextManager:
    """Keras 3's from_keras_model exports first and prints every captured tensor to stdout."""
    return contextlib.redirect_stdout(io.StringIO())


def _representative(calib: np.ndarray | None) -> Any:
    if calib is None or len(calib) == 0:
        raise UnsupportedModelError(
            "TFLite int8 quantization needs calibration samples; pass --calib-data."
        )

    def gen() -> Any:
        for i in range(len(calib)):
            yield [np.asarray(calib[i : i + 1], dtype=np.float32)]

    return gen


def configure(
    source: Any,
    precision: str,
    calib: np.ndarray | None = None,
    options: QuantOptions | None = None,
) -> Any:
    """A TFLiteConverter set up for `precision` (see PRECISIONS)."""
    import tensorflow as tf

    opts = options or QuantOptions()
    conv = _converter(source)
    if precision == "fp32":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "dynamic":
        return conv
    if precision == "fp16":
        conv.target_spec.supported_types = [tf.float16]
        return conv
    conv.representative_dataset = _representative(calib)
    io_type = {"int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}.get(opts.io_dtype or "")
    if precision == "int16x8":
        ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.target_spec.supported_ops = [*ops, tf.lite.OpsSet.TFLITE_BUILTINS]
        if opts.io_dtype == "int16":
            conv.inference_input_type = conv.inference_output_type = tf.int16
        return conv
    if precision == "int8" and not opts.keep_float:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type is not None and precision in ("int8", "int8-float-fallback"):
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
    return conv


def quantize_tflite(
    source: Any,
    out: Path,
    precision: str,
    calib: np.ndarray | None = None,
    options: QuantOptions | None = None,
) -> Path:
    """Convert `source` (Keras model or SavedModel path) to a TFLite file at `precision`.

    With ``options.keep_float`` the named layers (output tensor names) stay float.
    """
    require_precision("TFLite", precision, PRECISIONS)
    opts = options or QuantOptions()
    conv = configure(source, precision, calib, opts)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if opts.keep_float and precision in ("int8", "int8-float-fallback", "int16x8"):
        import tensorflow as tf

        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv,
            debug_dataset=_representative(calib),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=list(opts.keep_float)
            ),
        )
        with _no_export_listing():
            data = debugger.get_nondebug_quantized_model()
    else:
        try:
            with _no_export_listing():
                data = conv.convert()
        except Exception as exc:  # the converter raises many types, all with a message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedModelError(
                f"the TFLite converter cannot make a {precision} model: {first}"
            ) from None
    out.write_bytes(data)
    return out


def layer_errors(
    source: Any, calib: np.ndarray, options: QuantOptions | None = None, limit: int = 64
) -> list[LayerError]:
    """Per-layer int8 error from the QuantizationDebugger: RMSE of each quantized op's
    output over its quantization scale (about 0.29 is pure rounding; more is damage)."""
    import csv

    import tensorflow as tf

    conv = configure(source, "int8-float-fallback", calib[:limit], options)
    with _no_export_listing():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=_representative(calib[:limit])
        )
        debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    errors = []
    for row in csv.DictReader(buf):
        try:
            scale = float(row["scale"])
            mse = float(row["mean_squared_error"])
        except (KeyError, ValueError):
            continue
        if not np.isfinite(mse) or scale <= 0:
            continue
        errors.append(
            LayerError(
                name=row["tensor_name"],
                op=row.get("op_name", "?"),
                error=float(np.sqrt(mse) / scale),
                metric="rmse/scale",
            )
        )
    return sorted(errors, key=lambda e: -e.error)
