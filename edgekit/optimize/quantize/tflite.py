"""TFLite backend: the TFLite converter's post-training quantization (dynamic range,
float16, full int8, int16x8).

The TFLite converter quantizes while it converts, so the source is the float Keras
model (or a SavedModel folder), not a .tflite file; a PyTorch source goes through
litert-torch's PT2E quantizer instead (`tflite_torch`), and through the converter on
onnx2tf's SavedModel of it only when PT2E fails. Calibration samples reach the
converter as a ``representative_dataset``. Layers kept in float go through the
QuantizationDebugger's ``denylisted_nodes``, which names them by output tensor, and op
types through its ``denylisted_ops`` (TFLite's names: HARD_SWISH).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError, UnsupportedModelError, first_line
from edgekit.optimize.quantize.algorithm import QuantizePass
from edgekit.optimize.quantize.backend import Calibration, LayerError, QuantBackend, QuantOptions

IO_DTYPES = ("int8", "uint8", "int16")


@dataclass(frozen=True)
class TFLiteOptions(QuantOptions):
    """TFLite's knobs: `keep_float` names output tensors; `io_dtype` ("int8"/"uint8",
    "int16" for int16x8) makes an integer model's inputs and outputs integer."""

    io_dtype: str | None = None


def _converter(source: Any) -> Any:
    from edgekit.convert._common import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    from edgekit.model import Model

    if isinstance(source, str | Path | Model):
        path = source.path if isinstance(source, Model) else source
        return tf.lite.TFLiteConverter.from_saved_model(str(path))
    return tf.lite.TFLiteConverter.from_keras_model(source)


def _no_export_listing() -> contextlib.AbstractContextManager:
    """Keras 3's from_keras_model exports first and prints every captured tensor to stdout."""
    return contextlib.redirect_stdout(io.StringIO())


def _representative(calib: Calibration) -> Any:
    def gen() -> Any:
        for x in calib.samples():
            yield [x]

    return gen


def configure(source: Any, precision: str, calib: Calibration | None, opts: TFLiteOptions) -> Any:
    """A TFLiteConverter set up for `precision`."""
    import tensorflow as tf

    conv = _converter(source)
    if precision == "fp32":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "dynamic":
        return conv
    if precision == "fp16":
        conv.target_spec.supported_types = [tf.float16]
        return conv
    assert calib is not None  # the algorithm wraps it for every calibrated precision
    conv.representative_dataset = _representative(calib)
    io_type = {"int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}.get(opts.io_dtype or "")
    if precision == "int16x8":
        ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.target_spec.supported_ops = [*ops, tf.lite.OpsSet.TFLITE_BUILTINS]
        if opts.io_dtype == "int16":
            conv.inference_input_type = conv.inference_output_type = tf.int16
        return conv
    if precision == "int8" and not (opts.keep_float or opts.keep_float_types):
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type is not None and precision in ("int8", "int8-float-fallback"):
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
    return conv


class TFLiteBackend(QuantBackend):
    """TFLite files from a Keras model, a SavedModel folder, or a PyTorch model."""

    format = "tflite"
    tool = "TFLite"
    Options = TFLiteOptions
    compute_types = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")

    def options_for(self, profile: Any) -> TFLiteOptions:
        """Integer I/O when the profile's input dtype is an integer."""
        dtype = profile.input_dtype
        return TFLiteOptions(io_dtype=dtype if dtype in IO_DTYPES else None)

    def quantize(
        self,
        model: Any,
        precision: str,
        calib: Calibration | None,
        options: TFLiteOptions,
        out: Path,
    ) -> Path:
        opts = options
        from edgekit.optimize.quantize import tflite_torch

        if tflite_torch.is_torch(model):
            try:
                return tflite_torch.quantize(model, precision, calib, opts.io_dtype,
                                             opts.keep_float, out)  # fmt: skip
            except tflite_torch.PT2EFailed as exc:
                pt2e_failed = str(exc)  # the TFLite converter on onnx2tf's SavedModel next
                try:
                    model, calib = tflite_torch.savedmodel_route(model, calib, out.parent)
                except EdgekitError as fallback:
                    raise UnsupportedModelError(
                        f"{pt2e_failed}; the fallback through ONNX and onnx2tf failed too: "
                        f"{fallback}"
                    ) from None
        else:
            pt2e_failed = None
        conv = configure(model, precision, calib, opts)
        if (opts.keep_float or opts.keep_float_types) and calib is not None:
            import tensorflow as tf

            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv,
                debug_dataset=_representative(calib),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_nodes=list(opts.keep_float) or None,
                    denylisted_ops=list(opts.keep_float_types) or None,
                ),
            )
            with _no_export_listing():
                data = debugger.get_nondebug_quantized_model()
        else:
            try:
                with _no_export_listing():
                    data = conv.convert()
            except Exception as exc:  # the converter raises many types, all with a message
                why = f"{pt2e_failed}; then " if pt2e_failed else ""
                raise UnsupportedModelError(
                    f"{why}the TFLite converter cannot make a {precision} model: {first_line(exc)}"
                ) from None
        out.write_bytes(data)
        return out

    def layer_errors(
        self, model: Any, calib: Calibration, options: TFLiteOptions, limit: int = 64
    ) -> list[LayerError]:
        """The QuantizationDebugger's RMSE of each quantized op's output over its
        quantization scale (about 0.29 is pure rounding; more is damage)."""
        import csv

        import tensorflow as tf

        from edgekit.optimize.quantize import tflite_torch

        if tflite_torch.is_torch(model):
            raise UnsupportedModelError(
                "per-layer int8 error is measured by TensorFlow's QuantizationDebugger, "
                "which does not take PyTorch models"
            )
        calib = calib.head(limit)
        conv = configure(model, "int8-float-fallback", calib, options)
        with _no_export_listing():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=_representative(calib)
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
            errors.append(LayerError(row["tensor_name"], row.get("op_name", "?"),
                                     float(np.sqrt(mse) / scale), "rmse/scale"))  # fmt: skip
        return errors


class TFLiteQuantize(QuantizePass):
    """The ``quant_tflite`` pass."""

    name = "quant_tflite"
    backend = TFLiteBackend()
