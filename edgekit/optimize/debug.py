"""Per-layer quantization error and the loop that keeps the worst layers in float.

Each quantization pass measures its own layer errors (TFLite QuantizationDebugger,
ONNX Runtime ``qdq_loss_debug``, OpenVINO side-by-side layer outputs); the loop
below is written once: keep the worst layer float, re-quantize, re-evaluate, until
the accuracy budget holds or the step limit is reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.optimize.base import LayerError

# quantization pass module -> its layer_errors function
BACKENDS = {
    "tflite": "edgekit.optimize.quant_tflite",
    "onnx": "edgekit.optimize.quant_onnx",
    "openvino": "edgekit.optimize.quant_openvino",
}


def layer_errors(fmt: str, source: Any, calib: Any, options: Any = None) -> list[LayerError]:
    """Layers of `source` by int8 error, worst first, measured by the format's tools."""
    import importlib

    return importlib.import_module(BACKENDS[fmt]).layer_errors(source, calib, options)


def describe(e: LayerError) -> str:
    """One layer's error in plain words."""
    if e.metric == "rmse/scale":
        words = f"its int8 output is off by {e.error:.2f} quantization steps on average"
        if e.error > 1.0:
            words += " (more than rounding alone explains)"
    elif e.metric == "noise/signal":
        import math

        sqnr = -20.0 * math.log10(max(e.error, 1e-12))
        words = f"quantization noise is {100 * e.error:.1f}% of its output (SQNR {sqnr:.1f} dB)"
    else:
        words = f"int8 output differs from float by {100 * e.error:.1f}% of its spread"
    return f"`{e.name}` ({e.op}): {words}"


@dataclass
class Step:
    kept_float: list[str]
    accuracy_drop: float
    path: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recovery:
    kept_float: list[str]
    steps: list[Step]
    met: bool
    best: Step | None


def keep_worst_float(
    errors: list[LayerError],
    quantize: Callable[[tuple[str, ...]], Any],
    drop_of: Callable[[Any], float],
    budget: float,
    max_steps: int = 8,
) -> Recovery:
    """Keep layers float one at a time, worst first, until ``drop_of(model) <= budget``.

    `quantize(names)` returns a model with `names` kept float; `drop_of(model)` its
    accuracy drop in points. Returns every step and the best one (smallest drop).
    """
    steps: list[Step] = []
    kept: list[str] = []
    for e in errors[:max_steps]:
        kept.append(e.name)
        try:
            model = quantize(tuple(kept))
        except Exception as exc:  # noqa: BLE001 - a layer the converter cannot keep float
            kept.pop()
            steps.append(Step([*kept, e.name], float("nan"), None, {"error": str(exc)[:200]}))
            continue
        drop = drop_of(model)
        steps.append(Step(list(kept), drop, model))
        if drop <= budget:
            return Recovery(list(kept), steps, True, steps[-1])
    ok = [s for s in steps if s.path is not None]
    best = min(ok, key=lambda s: s.accuracy_drop) if ok else None
    return Recovery(best.kept_float if best else [], steps, False, best)
