"""The data every pass shares: quantization options, layer errors, pass descriptions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from edgekit.errors import UnsupportedModelError


def require_precision(tool: str, precision: str, supported: tuple[str, ...]) -> None:
    """UnsupportedModelError naming the choices when `tool` cannot make `precision`."""
    if precision not in supported:
        raise UnsupportedModelError(
            f"{tool} has no precision {precision!r}; choose from {', '.join(supported)}."
        )


@dataclass(frozen=True)
class QuantOptions:
    """Knobs of a quantization pass; ``None`` means the pass picks for this CPU."""

    keep_float: tuple[str, ...] = ()  # layers (TFLite tensors, ONNX/OpenVINO nodes) left float
    per_channel: bool | None = None
    quant_format: str | None = None  # ONNX: "QDQ" or "QOperator"
    calibrate_method: str = "MinMax"  # ONNX: MinMax, Entropy, Percentile
    activation_type: str | None = None  # ONNX: int8, uint8, int16
    weight_type: str | None = None
    reduce_range: bool | None = None
    io_dtype: str | None = None  # TFLite int8 models: "int8"/"uint8" I/O, else float
    preset: str | None = None  # OpenVINO: "performance" or "mixed"
    model_type: str | None = None  # OpenVINO: "transformer"
    keep_float_types: tuple[str, ...] = ()  # op types left float (ONNX/OpenVINO)

    def with_float(self, *names: str) -> QuantOptions:
        return replace(self, keep_float=tuple(dict.fromkeys((*self.keep_float, *names))))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class LayerError:
    """How much quantization damages one layer's output (bigger is worse)."""

    name: str  # what a pass takes to keep it in float
    op: str
    error: float
    metric: str  # "rmse/scale" (TFLite), "noise/signal" (ONNX), "relative rmse" (OpenVINO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "error": float(f"{self.error:.6g}"),
            "metric": self.metric,
        }


@dataclass(frozen=True)
class PassInfo:
    """A pass as data: where it lives, which formats it takes, what it makes."""

    name: str
    target: str  # "module:function"
    accepts: tuple[str, ...]  # model formats the pass takes
    produces: str | None  # format it writes (None: same as input)
    kind: str  # "prune", "quantize", "graph"
    precisions: tuple[str, ...] = ()
    needs_data: bool = False  # True: needs labelled training data (fine-tuning)
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
