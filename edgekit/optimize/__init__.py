"""Optimization passes (prune, quantize, graph) and the `optimize` flow that proves them.

Every pass is a class in its own module (`base.Pass`); what it accepts and makes is
data in ``PASSES`` (`edgekit.optimize.passes`), so help texts, choices and error
messages come from one table and nothing heavy is imported until a pass runs.
Quantization is one algorithm over one backend per runtime (`edgekit.optimize.quantize`).

Example::

    from edgekit.optimize import optimize
    result = optimize("model.keras", "x86-avx512", out="opt/", max_accuracy_drop=1.0)
    print(result.report["optimized"]["latency_ms"]["median"], result.report_path)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgekit.optimize.passes import (
    PASSES,
    PRECISIONS,
    QUANTIZE_CHOICES,
    PassInfo,
    get_pass,
    passes_for,
    quantizer_for,
)

if TYPE_CHECKING:
    from edgekit.optimize.pipeline import OptimizeResult

__all__ = [
    "PASSES",
    "PRECISIONS",
    "QUANTIZE_CHOICES",
    "OptimizeResult",
    "PassInfo",
    "get_pass",
    "optimize",
    "passes_for",
    "quantizer_for",
]


def optimize(*args: Any, **kwargs: Any) -> OptimizeResult:
    """See `edgekit.optimize.pipeline.optimize`."""
    from edgekit.optimize.pipeline import optimize as _optimize

    return _optimize(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "OptimizeResult":
        from edgekit.optimize.pipeline import OptimizeResult

        return OptimizeResult
    raise AttributeError(name)
