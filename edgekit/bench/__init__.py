"""Benchmarking: the measurement harness, its statistics, reports and comparisons.

`benchmark()` measures a model and returns a `Report`; `load_report()` reads
one back (validated against the shipped JSON Schema); `compare()` aligns
reports and tests whether they differ. Frameworks are imported only when a
model is actually measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgekit.bench.report import SCHEMA_VERSION, Report, load_report, validate_report

if TYPE_CHECKING:
    from edgekit.bench.compare import Comparison

__all__ = [
    "SCHEMA_VERSION",
    "Report",
    "benchmark",
    "compare",
    "load_report",
    "validate_report",
]


def benchmark(model: Any, **kwargs: Any) -> Report:
    """Measure a model; see `edgekit.bench.harness.benchmark` for every keyword."""
    from edgekit.bench.harness import benchmark as _benchmark

    return _benchmark(model, **kwargs)


def compare(reports: list[Any], **kwargs: Any) -> Comparison:
    """Compare reports; see `edgekit.bench.compare.compare` for every keyword."""
    from edgekit.bench.compare import compare as _compare

    return _compare(reports, **kwargs)
