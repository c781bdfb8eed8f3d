"""ONNX Runtime offline graph optimization, kept only when it is faster and verified.

ORT can save the graph it builds after its fusions (``optimized_model_filepath``).
The "extended" level keeps the file portable across CPUs of the same runtime
version; the saved model is measured against the input and kept only when it is
faster and computes the same outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.optimize.base import Pass, PassConfig, PassResult

LEVELS = ("basic", "extended")


@dataclass
class GraphOptResult:
    path: Path  # the model to use next: optimized when kept, else the input
    kept: bool
    latency_before_ms: float | None
    latency_after_ms: float | None
    max_abs_error: float | None
    reason: str


def optimize_graph(src: Path, out: Path, level: str = "extended") -> Path:
    """Write ORT's offline-optimized graph of `src` at `out`."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    so.optimized_model_filepath = str(out)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return Path(out)


def try_graph_opt(
    src: Path,
    out: Path,
    samples: np.ndarray,
    *,
    threads: int | None = 1,
    level: str = "extended",
    tolerance: float = 1e-4,
) -> GraphOptResult:
    """Optimize, then keep the result only if it is at least 2% faster (median of an
    `edgekit.bench` run each) and its outputs match the input model's within `tolerance`
    (max abs, `edgekit.verify.compare_outputs`) on `samples`."""
    from edgekit.bench.interleaved import measure_interleaved, sample_feeds
    from edgekit.model import load
    from edgekit.verify import compare_outputs

    try:
        optimize_graph(src, out, level)
    except Exception as exc:  # noqa: BLE001 - an optimization that fails is simply not kept
        return GraphOptResult(Path(src), False, None, None, None, f"ORT could not save it: {exc}")
    m = load(src)
    parity = compare_outputs(m, out, sample_feeds(samples, m.signature.inputs[0], len(samples)),
                             src_runtime="onnxruntime", dst_runtime="onnxruntime")  # fmt: skip
    err = float(parity.max_abs_error)
    lat = measure_interleaved([src, out], samples, runtime="onnxruntime", threads=threads)
    before, after = lat[0]["median"], lat[1]["median"]
    if err > tolerance:
        return GraphOptResult(Path(src), False, before, after, err, "outputs changed")
    if after > before * 0.98:
        return GraphOptResult(Path(src), False, before, after, err, "not faster")
    return GraphOptResult(Path(out), True, before, after, err, "faster and verified")


@dataclass(frozen=True)
class GraphOptConfig(PassConfig):
    """The samples that prove and time the optimized graph, and how it is measured."""

    samples: np.ndarray
    threads: int | None = 1
    level: str = "extended"
    tolerance: float = 1e-4


class GraphOpt(Pass):
    """The ``graph_opt`` pass: `try_graph_opt`; its result's path is the input's when the
    optimized graph is not kept, and `details` says why."""

    name = "graph_opt"
    Config = GraphOptConfig

    def _run(self, model: Any, config: GraphOptConfig, out: Path) -> PassResult:
        src = Path(getattr(model, "path", model))
        g = try_graph_opt(src, out, config.samples, threads=config.threads, level=config.level,
                          tolerance=config.tolerance)  # fmt: skip
        details = {
            "kept": g.kept,
            "reason": g.reason,
            "latency_before_ms": _r4(g.latency_before_ms),
            "latency_after_ms": _r4(g.latency_after_ms),
            "max_abs_error": g.max_abs_error,
        }
        return PassResult(g.path, "onnx", "fp32", details)


def _r4(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)
