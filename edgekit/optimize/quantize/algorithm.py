"""Quantization, written once over the backends: calibration, precision checks, per-layer
error ranking, and the loop that keeps the worst layers in float.

Each backend (`tflite`, `onnx`, `openvino` beside this file) implements
`QuantBackend`; which backend writes which format is the pass table's
(`edgekit.optimize.passes.PASSES`, the ``quantize`` rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.base import Pass, PassConfig, PassResult
from edgekit.optimize.passes import CALIBRATED, pass_class, quantizer_for
from edgekit.optimize.quantize.backend import Calibration, LayerError, QuantBackend, QuantOptions


def backend(fmt: str) -> QuantBackend:
    """The backend that quantizes `fmt` models, from the pass table."""
    info = quantizer_for(fmt)
    if info is None:
        raise UnsupportedModelError(f"edgekit cannot quantize {fmt} models.")
    return pass_class(info.name).backend  # type: ignore[attr-defined]


def require_precision(b: QuantBackend, precision: str) -> None:
    """UnsupportedModelError naming the choices when `b` cannot make `precision`."""
    if precision not in b.precisions:
        raise UnsupportedModelError(
            f"{b.tool} has no precision {precision!r}; choose from {', '.join(b.precisions)}."
        )


def quantize(
    model: Any,
    fmt: str,
    precision: str,
    out: str | Path,
    calib: Any = None,
    options: QuantOptions | None = None,
) -> Path:
    """Write `model` as a `fmt` model at `precision` to `out` with `fmt`'s backend.

    `calib` (samples, float32) is needed for int8, int8-float-fallback and int16x8;
    `options` is the backend's `Options` (default: chosen for this CPU).
    """
    info = quantizer_for(fmt)
    b = backend(fmt)
    require_precision(b, precision)
    if info is not None:
        info.require()
    cal = Calibration.wrap(calib, b.tool, precision) if precision in CALIBRATED else None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return b.quantize(model, precision, cal, b.own(options), out)


def layer_errors(
    model: Any, fmt: str, calib: Any, options: QuantOptions | None = None
) -> list[LayerError]:
    """Layers of `model` by int8 error, worst first, measured by `fmt`'s backend."""
    b = backend(fmt)
    cal = Calibration.wrap(calib, b.tool, "int8")
    errors = b.layer_errors(model, cal, b.own(options))
    return sorted(errors, key=lambda e: -e.error)


def describe(e: LayerError) -> str:
    """One layer's error in plain words."""
    if e.metric == "rmse/scale":
        words = f"its int8 output is off by {e.error:.2f} quantization steps on average"
        if e.error > 1.0:
            words += " (more than rounding alone explains)"
    elif e.metric == "noise/signal":
        sqnr = -20.0 * math.log10(max(e.error, 1e-12))
        words = f"quantization noise is {100 * e.error:.1f}% of its output (SQNR {sqnr:.1f} dB)"
    else:
        words = f"int8 output differs from float by {100 * e.error:.1f}% of its spread"
    return f"`{e.name}` ({e.op}): {words}"


@dataclass
class Step:
    """One try of the keep-float loop: the layers kept float and what it gave."""

    kept_float: list[str]
    accuracy_drop: float
    path: Any  # what `quantize` returned (None when it failed)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recovery:
    """The keep-float loop's outcome: every step, and the best one."""

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


@dataclass(frozen=True)
class QuantizeConfig(PassConfig):
    """One quantization: the precision, calibration samples, and the backend's options."""

    precision: str
    calib: np.ndarray | None = None
    options: QuantOptions | None = None


class QuantizePass(Pass):
    """The quantization pass of one backend; each backend module declares one subclass
    (its row in `PASSES`) naming its backend."""

    Config = QuantizeConfig
    backend: ClassVar[QuantBackend]

    def _run(self, model: Any, config: QuantizeConfig, out: Path) -> PassResult:
        fmt = self.backend.format
        path = quantize(model, fmt, config.precision, out, config.calib, config.options)
        return PassResult(path, fmt, config.precision)
