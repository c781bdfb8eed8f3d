"""Small private helpers of the optimize flow, built on the shared modules: feeds cut from
sample arrays (`edgekit.evaluate.quantize`), interleaved latency (`edgekit.bench`), gzip
size and per-op profiles (what no shared module offers)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# File name of a model of each format inside an output folder.
MODEL_FILE = {"tflite": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}

# Latency of one candidate: short, since the flow measures several. Each model gets
# ROUNDS short harness runs, taken round-robin over the models (in reverse order every
# other round), so that a shared machine's drift spreads evenly over them.
ROUNDS = 2  # A B C, then C B A: cancels a linear drift
MIN_TIME_S = 1.0  # per model, over all its rounds
MAX_TIME_S = 10.0  # per run
MIN_RUNS = 10  # per run
WARMUP = "0.2s"  # per run: each run loads the model afresh
BENCH_SAMPLES = 16  # distinct eval samples the harness rotates over


def runtime_for(fmt: str, profile_runtime: str | None = None) -> str:
    """The runtime that measures `fmt` models: the profile's, else the format's own."""
    from edgekit.runtimes import DEFAULT_RUNTIME

    if profile_runtime and profile_runtime != "tflite-micro":
        return profile_runtime
    return DEFAULT_RUNTIME[fmt]


def gzip_bytes(path: Path) -> int:
    """Size after gzip -9: what sparsity buys on the wire and in flash."""
    from edgekit.model import load

    return sum(len(gzip.compress(p.read_bytes(), 9)) for p in load(path).files)


def feeds(x: np.ndarray, spec: Any, batch: int, limit: int | None = None) -> list[dict]:
    """`x` cut into feeds of `spec`'s input: batches of `batch` samples (the input's fixed
    batch when it has one; a short last batch is padded by repeating its last sample),
    quantized to the input's dtype with `edgekit.evaluate.quantize`."""
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


def latencies(
    paths: Sequence[Path],
    x: np.ndarray,
    *,
    runtime: str,
    threads: int | None,
    rounds: int = ROUNDS,
    min_time: float = MIN_TIME_S,
) -> list[dict[str, Any]]:
    """Latency statistics (ms) of each model on the same eval samples, measured
    interleaved: `rounds` short `edgekit.bench.benchmark` runs per model, round-robin,
    every other round in reverse order. Each dict is the harness's statistics
    (`edgekit.bench.stats.summarize`: median, its confidence interval, percentiles...)
    of the model's samples from all its rounds, with its runs' stop reasons and warnings."""
    from edgekit.bench import benchmark
    from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize
    from edgekit.model import load

    models = [load(p) for p in paths]
    inputs = [feeds(x, m.signature.inputs[0], 1, limit=BENCH_SAMPLES) for m in models]
    reports: list[list[Any]] = [[] for _ in models]
    for r in range(rounds):
        order = range(len(models)) if r % 2 == 0 else reversed(range(len(models)))
        for i in order:
            reports[i].append(benchmark(
                models[i], runtime=runtime, threads=threads, batch=1, inputs=inputs[i],
                warmup=WARMUP, min_time=min_time / rounds, max_time=MAX_TIME_S,
                min_runs=MIN_RUNS, stop_on_interrupt=True,
            ))  # fmt: skip
    out = []
    for reps in reports:
        samples = np.concatenate([np.asarray(rep.samples_ns) for rep in reps])
        lat = summarize(samples)
        lat["samples_ns"] = samples.astype(np.int64).tolist()  # raw, for report.html's charts
        lat["quantile_method"] = QUANTILE_METHOD_NAME
        lat["runs"] = len(reps)
        lat["stop_reasons"] = sorted({rep["protocol"]["stop_reason"] for rep in reps})
        lat["warnings"] = list(dict.fromkeys(w for rep in reps for w in rep.warnings))
        out.append(lat)
    return out


def op_times(path: Path, feed: np.ndarray, *, runtime: str, threads: int | None = 1) -> dict:
    """Time per op type in ms (ONNX Runtime profiling, OpenVINO profiling info), or the op
    histogram for LiteRT, whose Python interpreter exposes no per-op timings."""
    if runtime == "onnxruntime":
        import json

        import onnxruntime as ort

        so = ort.SessionOptions()
        so.enable_profiling = True
        so.log_severity_level = 3
        so.intra_op_num_threads = threads or 0
        so.profile_file_prefix = str(Path(path).parent / ".ek_profile")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        x = feed.astype(np.float32)
        for _ in range(10):
            sess.run(None, {name: x})
        prof = sess.end_profiling()
        events = json.loads(Path(prof).read_text())
        Path(prof).unlink(missing_ok=True)
        out: dict[str, float] = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                op = e.get("args", {}).get("op_name", "?")
                out[op] = out.get(op, 0.0) + e["dur"] / 1e3 / 10
        return {"unit": "ms per inference", "ops": out}
    if runtime == "openvino":
        import openvino as ov

        core = ov.Core()
        cfg: dict[str, Any] = {"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(str(path), "CPU", cfg)
        req = compiled.create_infer_request()
        for _ in range(10):
            req.infer([feed.astype(np.float32)])
        out = {}
        for info in req.get_profiling_info():
            key = f"{info.node_type} ({info.exec_type})"
            out[key] = out.get(key, 0.0) + info.real_time.total_seconds() * 1e3
        return {"unit": "ms per inference", "ops": out}
    from edgekit.model import load

    return {"unit": "op count", "ops": dict(load(path).op_histogram)}
