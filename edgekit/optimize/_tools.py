"""Small helpers of the optimize flow that no shared module offers: the model file name
of each format, the measuring runtime, gzip size and per-op profiles."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.graph import SUFFIX

# File name of a model of each format inside an output folder.
MODEL_FILE = {fmt: f"model{suffix}" for fmt, suffix in SUFFIX.items() if suffix}


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
