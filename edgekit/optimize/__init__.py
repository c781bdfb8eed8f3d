"""Optimization passes (prune, quantize, graph) and the `optimize` flow that proves them.

Every pass is one module; what it accepts and makes is data in ``PASSES`` below, so
help texts, choices and error messages come from one table and nothing heavy is
imported until a pass runs.

Example::

    from edgekit.optimize import optimize
    result = optimize("model.keras", "x86-avx512", out="opt/", max_accuracy_drop=1.0)
    print(result.report["optimized"]["latency_ms"]["median"], result.report_path)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgekit.optimize.base import LayerError, PassInfo, QuantOptions

if TYPE_CHECKING:
    from edgekit.optimize.pipeline import OptimizeResult

__all__ = [
    "PASSES",
    "QUANTIZE_CHOICES",
    "LayerError",
    "OptimizeResult",
    "PassInfo",
    "QuantOptions",
    "get_pass",
    "optimize",
    "passes_for",
]

_Q = ("fp32", "dynamic", "fp16", "int8", "int8-float-fallback", "int16x8")

PASSES: dict[str, PassInfo] = {
    p.name: p
    for p in (
        PassInfo("prune_magnitude", "edgekit.optimize.prune_magnitude:prune_magnitude",
                 ("keras",), None, "prune", needs_data=True,
                 summary="unstructured magnitude pruning with fine-tuning"),
        PassInfo("prune_structured", "edgekit.optimize.prune_structured:prune_structured",
                 ("keras",), None, "prune", needs_data=True,
                 summary="remove conv filters / dense units by L1 norm, rebuild, fine-tune"),
        PassInfo("prune_weights", "edgekit.optimize.prune_weights:prune_weights",
                 ("onnx", "tflite"), None, "prune",
                 summary="zero small weights without training (compressed size only)"),
        PassInfo("quant_tflite", "edgekit.optimize.quant_tflite:quantize_tflite",
                 ("keras", "savedmodel"), "tflite", "quantize", _Q,
                 summary="TFLite converter post-training quantization"),
        PassInfo("quant_onnx", "edgekit.optimize.quant_onnx:quantize_onnx",
                 ("onnx",), "onnx", "quantize", _Q,
                 summary="ONNX Runtime dynamic / static QDQ / QOperator quantization"),
        PassInfo("quant_openvino", "edgekit.optimize.quant_openvino:quantize_openvino",
                 ("openvino", "onnx"), "openvino", "quantize",
                 ("fp32", "fp16", "int8", "int8-float-fallback"),
                 summary="NNCF int8 and fp16 weight compression"),
        PassInfo("graph_opt", "edgekit.optimize.graph_opt:try_graph_opt",
                 ("onnx",), "onnx", "graph",
                 summary="ONNX Runtime offline graph optimization, kept when faster"),
    )
}  # fmt: skip

# The quantization pass for each target format.
QUANTIZER = {"tflite": "quant_tflite", "onnx": "quant_onnx", "openvino": "quant_openvino"}
QUANTIZE_CHOICES = ("auto", "int8", "int8-float-fallback", "fp16", "dynamic", "int16x8", "none")


def passes_for(fmt: str, kind: str | None = None) -> list[PassInfo]:
    """Passes that accept models of `fmt` (optionally of one kind), from the table."""
    return [p for p in PASSES.values() if fmt in p.accepts and (kind is None or p.kind == kind)]


def get_pass(name: str) -> Any:
    """The function behind pass `name`, imported on first use."""
    info = PASSES[name]
    module, attr = info.target.split(":")
    return getattr(importlib.import_module(module), attr)


def optimize(*args: Any, **kwargs: Any) -> OptimizeResult:
    """See `edgekit.optimize.pipeline.optimize`."""
    from edgekit.optimize.pipeline import optimize as _optimize

    return _optimize(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "OptimizeResult":
        from edgekit.optimize.pipeline import OptimizeResult

        return OptimizeResult
    raise AttributeError(name)
