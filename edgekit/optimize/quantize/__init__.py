"""Quantization: one algorithm (`algorithm`) over one small backend per runtime
(`tflite`, `onnx`, `openvino`, each a `backend.QuantBackend`).

Example::

    from edgekit.optimize.quantize import quantize
    quantize("model.onnx", "onnx", "int8", "q/model.onnx", calib=x[:200])
"""

from edgekit.optimize.quantize.algorithm import (
    QuantizeConfig,
    Recovery,
    Step,
    backend,
    describe,
    keep_worst_float,
    layer_errors,
    quantize,
)
from edgekit.optimize.quantize.backend import Calibration, LayerError, QuantBackend, QuantOptions

__all__ = [
    "Calibration",
    "LayerError",
    "QuantBackend",
    "QuantOptions",
    "QuantizeConfig",
    "Recovery",
    "Step",
    "backend",
    "describe",
    "keep_worst_float",
    "layer_errors",
    "quantize",
]
