"""Small private helpers the passes share: conversion to a format at fp32, prediction,
timing, parity and sizes.

They stand in for `edgekit.convert`, `edgekit.bench` and `edgekit.verify` until those
land; each is one function so it can be swapped for the shared one later.
"""

from __future__ import annotations

import gzip
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# File name of a model of each format inside an output folder.
MODEL_FILE = {"tflite": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}


def quiet_tf() -> None:
    """Silence TensorFlow's C++ and Python logging before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


# --- conversion at fp32 (stands in for edgekit.convert) --------------------------------


def keras_input_signature(km: Any) -> tuple[Any, ...]:
    import tensorflow as tf

    specs = []
    for i, t in enumerate(km.inputs):
        shape = (None, *tuple(t.shape)[1:])
        name = getattr(t, "name", None) or f"input_{i}"
        specs.append(tf.TensorSpec(shape, tf.float32, name=name.split(":")[0]))
    return tuple(specs)


def keras_to_onnx(km: Any, out: Path, opset: int = 17) -> Path:
    """A Keras model as ONNX (tf2onnx), dynamic batch."""
    quiet_tf()
    import tf2onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_keras(
        km, input_signature=keras_input_signature(km), opset=opset, output_path=str(out)
    )
    return out


def keras_to_tflite(km: Any, out: Path) -> Path:
    """A Keras model as float32 TFLite."""
    from edgekit.optimize.quant_tflite import quantize_tflite

    return quantize_tflite(km, out, "fp32")


def onnx_to_openvino(src: Path, out: Path, compress_to_fp16: bool = False) -> Path:
    """An ONNX model as OpenVINO IR (model.xml + model.bin)."""
    import openvino as ov

    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(src)), str(out), compress_to_fp16=compress_to_fp16)
    return out


def copy_model(src: Path, out: Path) -> Path:
    """Copy a model file (and an OpenVINO .bin beside an .xml)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, out)
    if src.suffix == ".xml":
        shutil.copyfile(src.with_suffix(".bin"), out.with_suffix(".bin"))
    return out


def model_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.suffix == ".xml":
        return [path, path.with_suffix(".bin")]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in model_files(path))


def gzip_bytes(path: Path) -> int:
    """Size after gzip -9: what sparsity buys on the wire and in flash."""
    return sum(len(gzip.compress(p.read_bytes(), 9)) for p in model_files(path))


def runtime_for(fmt: str, profile_runtime: str | None = None) -> str:
    if profile_runtime and profile_runtime != "tflite-micro":
        return profile_runtime
    return {"tflite": "litert", "onnx": "onnxruntime", "openvino": "openvino"}[fmt]


# --- prediction (stands in for edgekit.evaluate) -----------------------------------------


def _quantize_in(x: np.ndarray, spec: Any) -> np.ndarray:
    dtype = np.dtype(spec.dtype)
    if dtype.kind == "f":
        return x.astype(dtype)
    q = spec.quantization
    if q is None:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / q.scale[0] + q.zero_point[0]), info.min, info.max).astype(dtype)


def _dequantize_out(y: np.ndarray, spec: Any) -> np.ndarray:
    q = spec.quantization
    if np.dtype(spec.dtype).kind in "iu" and q is not None:
        return (y.astype(np.float32) - q.zero_point[0]) * q.scale[0]
    return y.astype(np.float32)


def predict(
    path: Path, x: np.ndarray, *, runtime: str | None = None, batch: int = 64
) -> np.ndarray:
    """The first output of the model for every sample of `x` (float, batches of `batch`)."""
    from edgekit.runtimes import open_session

    sess = open_session(path, runtime)
    spec_in, spec_out = sess.signature.inputs[0], sess.signature.outputs[0]
    fixed = spec_in.shape is not None and isinstance(spec_in.shape[0], int)
    step = 1 if fixed and spec_in.shape[0] == 1 else batch
    outs = []
    try:
        for i in range(0, len(x), step):
            feed = {spec_in.name: _quantize_in(np.asarray(x[i : i + step]), spec_in)}
            res = sess.run(feed)
            outs.append(_dequantize_out(res[spec_out.name], spec_out))
    finally:
        sess.close()
    return np.concatenate(outs, axis=0)


def keras_predict(km: Any, x: np.ndarray, batch: int = 128) -> np.ndarray:
    out = km.predict(x, batch_size=batch, verbose=0)
    return np.asarray(out[0] if isinstance(out, list | tuple) else out, dtype=np.float32)


# --- parity and accuracy (stands in for edgekit.verify) ---------------------------------


@dataclass
class Parity:
    top1_agreement: float
    max_abs_error: float
    cosine: float

    def to_dict(self) -> dict[str, float]:
        return {
            "top1_agreement": round(self.top1_agreement, 6),
            "max_abs_error": float(f"{self.max_abs_error:.6g}"),
            "cosine": round(self.cosine, 6),
        }


def parity(ref: np.ndarray, out: np.ndarray) -> Parity:
    """Top-1 agreement, max abs error and mean per-sample cosine of `out` against `ref`."""
    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    out = np.asarray(out, np.float64).reshape(len(out), -1)
    agree = float(np.mean(ref.argmax(1) == out.argmax(1))) if ref.shape[1] > 1 else 1.0
    num = (ref * out).sum(1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return Parity(agree, float(np.abs(ref - out).max()), float(cos.mean()))


def accuracy(out: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return float(np.mean(np.asarray(out).reshape(len(out), -1).argmax(1) == labels))


# --- timing (stands in for edgekit.bench) -----------------------------------------------


def time_models(
    paths: Sequence[Path],
    feed: np.ndarray,
    *,
    runtime: str,
    threads: int | None = 1,
    rounds: int = 15,
    per_round: int = 5,
    warmup: int = 5,
    budget_s: float = 20.0,
) -> list[float]:
    """Median latency in ms of each model, measured interleaved (round-robin) on one feed.

    Round-robin spreads the noise of a shared machine evenly over the candidates, so
    their ratios hold even when the absolute numbers drift.
    """
    from edgekit.runtimes import open_session

    calls: list[Callable[[], Any]] = []
    sessions = []
    for p in paths:
        s = open_session(p, runtime, threads=threads)
        spec = s.signature.inputs[0]
        call = s.bind({spec.name: _quantize_in(feed, spec)})
        for _ in range(warmup):
            call()
        calls.append(call)
        sessions.append(s)
    samples: list[list[float]] = [[] for _ in paths]
    start = time.perf_counter()
    for r in range(rounds):
        for i, call in enumerate(calls):
            for _ in range(per_round):
                t0 = time.perf_counter()
                call()
                samples[i].append((time.perf_counter() - t0) * 1e3)
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
    for s in sessions:
        s.close()
    return [statistics.median(s) for s in samples]


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
