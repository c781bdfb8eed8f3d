"""Interleaved A/B latency: several models timed in one measurement, so that the ratios
between them are not a shared machine's drift.

Each model gets `rounds` short `edgekit.bench.benchmark` runs, taken round-robin over
the models and in reverse order every other round (A B C, then C B A), which cancels
a linear drift. Every ratio `optimize` states comes from one such measurement
(`ratios`). Models with the same bytes (and the same runtime options) are one model:
measured once, and their ratio is exactly 1.

Example::

    from edgekit.bench.interleaved import measure_interleaved
    base, opt = measure_interleaved(["fp32.onnx", "int8.onnx"], x, runtime="onnxruntime")
    print(ratios([base, opt])[1]["speedup"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ROUNDS = 2  # A B C, then C B A: cancels a linear drift
MIN_TIME_S = 1.0  # per model, over all its rounds
MAX_TIME_S = 10.0  # per run
MIN_RUNS = 10  # per run
WARMUP = "0.2s"  # per run: each run loads the model afresh
BENCH_SAMPLES = 16  # distinct samples the harness rotates over


def sample_feeds(x: np.ndarray, spec: Any, batch: int, limit: int | None = None) -> list[dict]:
    """`x` cut into feeds of the input `spec` (an `edgekit.model.TensorSpec`): batches of
    `batch` samples (the input's fixed batch when it has one; a short last batch is padded
    by repeating its last sample), quantized to the input's dtype with
    `edgekit.evaluate.quantize`; at most `limit` feeds."""
    from edgekit.evaluate import quantize

    shape = spec.shape
    fixed = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
    step = fixed or batch
    out = []
    for start in range(0, len(x), step):
        chunk = np.asarray(x[start : start + step], np.float32)
        if fixed and len(chunk) < step:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), axis=0)])
        out.append({spec.name: quantize(chunk, spec)})
        if limit is not None and len(out) == limit:
            break
    return out


def measure_interleaved(
    paths: Sequence[str | os.PathLike],
    x: np.ndarray,
    *,
    runtime: str | Sequence[str],
    threads: int | None | Sequence[int | None],
    rounds: int = ROUNDS,
    min_time: float = MIN_TIME_S,
    options: Sequence[Mapping[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Latency statistics (ms) of each model in `paths` on the same samples `x`
    (preprocessed floats; batch 1, up to BENCH_SAMPLES of them rotated), measured
    interleaved: `rounds` short `edgekit.bench.benchmark` runs per model, round-robin,
    every other round in reverse order, `min_time` seconds per model in all.

    Each dict is the harness's statistics (`edgekit.bench.stats.summarize`: median, its
    confidence interval, percentiles...) of the model's samples from all its rounds,
    with ``runs``, ``quantile_method``, the runs' ``stop_reasons`` and ``warnings``, the
    model's ``sha256``, the ``inference_precision`` the runtime read back, and its raw
    ``samples_ns`` in time order. `options` (one per model,
    or None) are the runtime options each is opened with (an inference precision...);
    `runtime` and `threads` are one for all or one per model (several runtimes side by
    side: `edgekit.optimize.fastest`). A model with the same bytes, options, runtime and
    threads as an earlier one is not measured again: it gets a copy of that one's statistics.
    Every round loads (compiles) each model afresh, and there are at least as many rounds
    as any of the runtimes' `min_loads`, sharing `min_time`.
    """
    from edgekit.bench import benchmark
    from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize
    from edgekit.model import load
    from edgekit.runtimes import get_runtime

    n = len(paths)
    opts = list(options) if options is not None else [None] * n
    rts = [runtime] * n if isinstance(runtime, str) else list(runtime)
    rounds = max(rounds, *(get_runtime(rt).min_loads for rt in set(rts)))
    ths = list(threads) if isinstance(threads, Sequence) else [threads] * n
    loaded = [load(p) for p in paths]
    keys = [(m.sha256, repr(sorted((o or {}).items())), rt, th)
            for m, o, rt, th in zip(loaded, opts, rts, ths, strict=True)]  # fmt: skip
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    unique = sorted(set(first.values()))
    models = [loaded[i] for i in unique]
    inputs = [sample_feeds(x, m.signature.inputs[0], 1, limit=BENCH_SAMPLES) for m in models]
    reports: list[list[Any]] = [[] for _ in models]
    for r in range(rounds):
        order = range(len(models)) if r % 2 == 0 else reversed(range(len(models)))
        for i in order:
            j = unique[i]
            reports[i].append(benchmark(
                models[i], runtime=rts[j], threads=ths[j], batch=1, inputs=inputs[i],
                warmup=WARMUP, min_time=min_time / rounds, max_time=MAX_TIME_S,
                min_runs=MIN_RUNS, stop_on_interrupt=True, options=opts[j],
            ))  # fmt: skip
    measured = {}
    for i, reps in zip(unique, reports, strict=True):
        samples = np.concatenate([np.asarray(rep.samples_ns) for rep in reps])
        lat = summarize(samples)
        lat["samples_ns"] = samples.astype(np.int64).tolist()  # raw, for report.html's charts
        lat["quantile_method"] = QUANTILE_METHOD_NAME
        lat["runs"] = len(reps)
        lat["stop_reasons"] = sorted({rep["protocol"]["stop_reason"] for rep in reps})
        lat["warnings"] = list(dict.fromkeys(w for rep in reps for w in rep.warnings))
        lat["sha256"] = loaded[i].sha256
        lat["options"] = dict(opts[i] or {})
        lat["runtime"], lat["threads"] = rts[i], ths[i]
        # what the runtime computed in, read back from the compiled model (None: as stored)
        lat["inference_precision"] = reps[0]["runtime"]["inference_precision"]
        measured[i] = lat
    return [dict(measured[first[k]]) for k in keys]


def ratios(lats: Sequence[Mapping[str, Any]], base: int = 0) -> list[dict[str, Any] | None]:
    """Each model's latency against `lats[base]`'s (all from one `measure_interleaved`):
    `edgekit.bench.stats.ratio_verdict` on the raw samples, exactly 1 ("same") for a model
    with the baseline's bytes, None where the samples are missing."""
    from edgekit.bench.stats import identical_verdict, ratio_verdict

    b = lats[base]
    out: list[dict[str, Any] | None] = []
    for lat in lats:
        same = ("sha256", "options", "runtime", "threads")
        if lat.get("sha256") is not None and all(lat.get(k) == b.get(k) for k in same):
            out.append(identical_verdict())
            continue
        if not lat.get("samples_ns") or not b.get("samples_ns"):
            out.append(None)
            continue
        out.append(ratio_verdict(b["samples_ns"], lat["samples_ns"]))
    return out
