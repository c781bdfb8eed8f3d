"""int8 where it pays: quantize everything except the op types whose int8 version is
slower on the target's runtime.

Two measurements decide, both of them real runs of the runtime:

1. Suspects, from per-op times of the fp32 and the plain int8 model (ONNX Runtime's
   session profiler, OpenVINO's performance counters: `Session.node_times`). Each int8
   node is typed as the graph node of its name where it kept one, else by its kernel
   (ORT's fused QLinearAdd is an Add); a type is a suspect when its int8 nodes take longer
   than its fp32 ones. LiteRT's Python interpreter has no per-op times (and
   `litert-benchmark` 2.x has no op profiling), so there every non-compute op type of
   the model is a suspect, most frequent first.
2. The islands' cost, measured: each suspect kept float (through the toolchain's own
   selective quantization: TFLite's ``denylisted_ops``, ONNX Runtime's
   ``nodes_to_exclude``, NNCF's ``ignored_scope`` types) and timed against plain int8
   in one interleaved run. Keeping a type float adds a dequantize before and a quantize
   after each of its nodes; only a model timed with those pairs in it says whether they
   cost more than the int8 kernel lost, so a suspect is kept float only when its model
   is measurably (and at least 3%) faster than plain int8. Only the model's own op
   types are suspects: the runtime's layout nodes (Reorder) are no type to keep float.

The result is one candidate, verified, measured and held to the budget like any other;
its ``kept_float_why`` gives the figures for each op type kept float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NAME = "int8-where-it-pays"
MAX_SUSPECTS = 4  # each costs one quantization and a short measurement
# A float island is kept only when its model is this much faster than plain int8, and
# its interval says faster: on a shared machine a 2% gap between near-identical models
# comes and goes between runs.
MIN_GAIN = 1.03
# Ops that move or convert data: keeping them float saves nothing and adds islands.
QDQ = {"QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear", "FakeQuantize"}
PLUMBING = {
    "RESHAPE", "SQUEEZE", "CONCATENATION", "PAD", "Reshape", "Flatten", "Squeeze",
    "Unsqueeze", "Transpose", "Shape", "Gather", "Concat", "Parameter", "Result", "Constant",
    "Convert", "ShapeOf", "Pad", "ReorderInput", "ReorderOutput", "Reorder",
}  # fmt: skip


@dataclass
class Suspect:
    """An op type that may be faster float, and the figures that made it one."""

    op: str
    float_ms: float | None = None  # per inference, from the per-op profile
    int8_ms: float | None = None
    count: int = 0  # nodes of this type in the fp32 model

    def profiled(self) -> str:
        if self.float_ms is None or self.int8_ms is None:
            return f"{self.count} node(s)"
        return f"{self.int8_ms:.3f} ms int8 vs {self.float_ms:.3f} ms float (per-op profile)"


def float_type(op: str) -> str:
    """The fp32 op type an int8 kernel computes (ORT's QLinearAdd, QGemm: Add, Gemm)."""
    for prefix in ("QLinear", "Q"):
        if op.startswith(prefix) and op[len(prefix) :][:1].isupper() and op not in QDQ:
            return op[len(prefix) :]
    return op


def type_times(nodes: dict[str, dict[str, Any]], fp32_types: dict[str, str]) -> dict[str, float]:
    """ms per op type of a profile's nodes, each node typed as the fp32 node of its name."""
    out: dict[str, float] = {}
    for name, n in nodes.items():
        op = fp32_types.get(name) or float_type(str(n["op"]))
        out[op] = out.get(op, 0.0) + float(n["ms"])
    return out


def find_suspects(
    fp32: dict[str, dict[str, Any]] | None,
    int8: dict[str, dict[str, Any]] | None,
    histogram: dict[str, int],
    compute: tuple[str, ...],
) -> list[Suspect]:
    """The op types worth trying float, most promising first (see the module docstring)."""
    skip = set(compute) | QDQ | PLUMBING
    if fp32 is None or int8 is None:
        kinds = sorted((op for op in histogram if op not in skip), key=lambda op: -histogram[op])
        return [Suspect(op, count=histogram[op]) for op in kinds[:MAX_SUSPECTS]]
    types = {name: str(n["op"]) for name, n in fp32.items()}
    f, q = type_times(fp32, {}), type_times(int8, types)
    slow = [
        Suspect(op, f[op], q[op], histogram.get(op, 0))
        for op in f
        if op not in skip and op in histogram and op in q and q[op] > f[op]
    ]
    slow.sort(key=lambda s: -((s.int8_ms or 0.0) - (s.float_ms or 0.0)))
    return slow[:MAX_SUSPECTS]


@dataclass
class Choice:
    """What the chooser found: the op types kept float, why, and what it tried."""

    kept: list[str]
    why: list[str]
    tried: list[dict[str, Any]]
    note: str | None = None  # why there is no candidate, when there is none


def choose_float_types(
    suspects: list[Suspect],
    int8_path: Path,
    make: Callable[[tuple[str, ...]], Path],
    x: np.ndarray,
    *,
    runtime: str,
    threads: int,
) -> tuple[Choice, dict[tuple[str, ...], Path]]:
    """Each suspect kept float alone, timed against plain int8 in ONE interleaved run; the
    suspects whose model is measurably faster are kept (with their figures). Returns the
    choice and the models made, by the types they keep float."""
    from edgekit.bench.interleaved import measure_interleaved, ratios

    made: dict[tuple[str, ...], Path] = {}
    tried: list[dict[str, Any]] = []
    for s in suspects:
        try:
            made[(s.op,)] = make((s.op,))
        except Exception as exc:  # noqa: BLE001 - a type the quantizer cannot keep float
            tried.append({"op": s.op, "error": f"{type(exc).__name__}: {exc}"[:200]})
    ok = [s for s in suspects if (s.op,) in made]
    if not ok:
        return Choice([], [], tried, "no suspect op type could be kept float"), made
    lats = measure_interleaved([int8_path, *(made[(s.op,)] for s in ok)], x, runtime=runtime,
                               threads=threads)  # fmt: skip
    kept, why = [], []
    for s, lat, r in zip(ok, lats[1:], ratios(lats)[1:], strict=True):
        base_ms, ms = float(lats[0]["median"]), float(lat["median"])
        verdict = r["verdict"] if r else ("faster" if ms < base_ms else "same")
        tried.append({"op": s.op, "float_ms": s.float_ms, "int8_ms": s.int8_ms,
                      "model_ms": round(ms, 4), "plain_int8_ms": round(base_ms, 4),
                      "verdict": verdict})  # fmt: skip
        if verdict == "faster" and ms * MIN_GAIN < base_ms:
            kept.append(s.op)
            why.append(f"{s.op}: {s.profiled()}; whole model {ms:.3f} ms with it float vs "
                       f"{base_ms:.3f} ms int8, quantize/dequantize pairs included")  # fmt: skip
    note = None if kept else "no op type's float island made the int8 model faster"
    return Choice(kept, why, tried, note), made


def where_it_pays(
    fp32_path: Path,
    int8_path: Path,
    make: Callable[[tuple[str, ...]], Path],
    x: np.ndarray,
    *,
    runtime: str,
    threads: int,
    compute: tuple[str, ...],
) -> tuple[Path | None, Choice]:
    """(the int8 model with exactly the op types that do not pay kept float, or None when
    none pays; the choice). `make(types)` quantizes with `types` kept float."""
    from edgekit.model import load
    from edgekit.optimize._tools import node_times

    fp32 = node_times(fp32_path, x[:1], runtime=runtime, threads=threads)
    int8 = node_times(int8_path, x[:1], runtime=runtime, threads=threads)
    hist = load(fp32_path).op_histogram
    suspects = find_suspects(fp32 and fp32["nodes"], int8 and int8["nodes"], hist, compute)
    if not suspects:
        return None, Choice([], [], [], "the per-op profile shows no op type slower in int8")
    choice, made = choose_float_types(suspects, int8_path, make, x, runtime=runtime,
                                      threads=threads)  # fmt: skip
    if not choice.kept:
        return None, choice
    key = tuple(choice.kept)
    path = made.get(key) or make(key)
    return path, choice
