"""Small private helpers of the optimize flow, built on the shared modules: feeds cut from
sample arrays (`edgekit.evaluate.quantize`), latency (`edgekit.bench.benchmark`), gzip
size and per-op profiles (what no shared module offers)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# File name of a model of each format inside an output folder.
MODEL_FILE = {"tflite": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}

# Latency of one candidate: short, since the flow measures several (seconds, runs).
MIN_TIME_S = 1.0
MAX_TIME_S = 10.0
MIN_RUNS = 20
WARMUP = "0.3s"
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
    paths: Sequence[Path], x: np.ndarray, *, runtime: str, threads: int | None
) -> list[dict[str, Any]]:
    """Latency statistics (ms) of each model, one short `edgekit.bench.benchmark` run each on
    the same eval samples, in turn: the harness measures one model per run, so the models
    are not interleaved. Each dict is the harness's `latency_ms` (median, its confidence
    interval, percentiles...) with the run's stop reason and warnings."""
    from edgekit.bench import benchmark
    from edgekit.model import load

    out = []
    for p in paths:
        m = load(p)
        rep = benchmark(
            m, runtime=runtime, threads=threads, batch=1, warmup=WARMUP, min_time=MIN_TIME_S,
            max_time=MAX_TIME_S, min_runs=MIN_RUNS,
            inputs=feeds(x, m.signature.inputs[0], 1, limit=BENCH_SAMPLES),
        )  # fmt: skip
        lat = {k: v for k, v in rep.latency_ms.items() if k != "per_process"}
        lat["stop_reason"] = rep["protocol"]["stop_reason"]
        lat["warnings"] = list(rep.warnings)
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
