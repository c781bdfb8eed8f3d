#!/usr/bin/env python3
"""Run this edgekit bundle with only the target's runtime and numpy (no edgekit needed).

    python run.py [--input input.npz] [--output output.npz] [--model FILE]
    python run.py --bench [--runs N] [--warmup N] [--threads N] [--json]

Checks every file's sha256 against manifest.json, loads the model on the runtime
the manifest names, runs it once on the .npz inputs (or random ones) and writes
the outputs to a .npz file. With --bench it times the model instead, the way
`edgekit bench` does (only the runtime call inside the clock, gc off, raw samples
kept), and with --json prints an edgekit benchmark report (schema_version 1) that
`edgekit compare` reads.

This file is `edgekit/deploy/runner.py`, copied into every bundle as `run.py`. It
runs where edgekit is not installed, so it imports only the standard library,
numpy and the target's runtime, and keeps its own copy of the little runtime
knowledge it needs (which interpreter to import, which device or provider is here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import numpy as np

# run.py also runs on the Pythons of older boards (3.8, 3.9): type aliases stay in annotations,
# and zip() has no strict= there (hence the B905 noqas).
if TYPE_CHECKING:
    Outputs = list[tuple[str, np.ndarray]]

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = "manifest.json"


def fail(msg: str) -> NoReturn:
    """One line on stderr and exit code 2: a problem with the bundle or the inputs."""
    sys.stderr.write("run.py: error: " + msg + "\n")
    raise SystemExit(2)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(folder: str) -> dict[str, Any]:
    """The bundle's manifest, after checking every file it lists against its sha256."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        fail(f"no {MANIFEST} in {folder}; not an edgekit bundle")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    check(manifest, folder)
    return manifest


def check(manifest: dict[str, Any], folder: str) -> None:
    """Fail unless every file the manifest lists is in `folder` with its recorded sha256."""
    for rel, digest in manifest["files"].items():
        path = os.path.join(folder, rel)
        if not os.path.isfile(path):
            fail(f"file {rel} listed in {MANIFEST} is missing")
        if sha256(path) != digest:
            fail(f"file {rel} does not match its sha256 in {MANIFEST}; refusing to run")


def make_inputs(signature: dict[str, Any], path: str | None) -> list[np.ndarray]:
    """One array per model input, in order: from the .npz at `path`, else seeded random data."""
    specs = signature["inputs"]
    if path:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if all(s["name"] in keys for s in specs):
                return [data[s["name"]] for s in specs]
            if len(specs) == 1 and len(keys) == 1:
                return [data[keys[0]]]
        fail(f"{path} holds {keys}; the model's inputs are {[s['name'] for s in specs]}")
    rng = np.random.default_rng(0)
    feeds = []
    for s in specs:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (s["shape"] or [1])]
        dt = np.dtype(s["dtype"])
        if dt.kind == "f":
            feeds.append(rng.uniform(-1, 1, shape).astype(dt))
        else:
            info = np.iinfo(dt)
            feeds.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(dt))
    return feeds


def to_model_layout(manifest: dict[str, Any], feeds: list[np.ndarray]) -> list[np.ndarray]:
    """Transpose NCHW inputs (the source's layout) for a model that takes NHWC.

    A model converted from ONNX by onnx2tf takes images channels-last; the manifest
    says so under conversion.input_layouts, and inputs given as the source took
    them (N, C, H, W) are fed (N, H, W, C).
    """
    layouts = manifest.get("conversion", {}).get("input_layouts") or {}
    out = []
    for s, x in zip(manifest["signature"]["inputs"], feeds):  # noqa: B905
        want = s["shape"] or []
        if layouts.get(s["name"]) == "nhwc" and x.ndim == 4 and len(want) == 4:
            t = x.transpose(0, 2, 3, 1)
            if list(x.shape) != list(want) and all(
                not isinstance(d, int) or d < 1 or d == n
                for d, n in zip(want, t.shape)  # noqa: B905
            ):
                x = t
        out.append(x)
    return out


class Bound(NamedTuple):
    """A loaded model with its inputs bound: `call()` is exactly what is timed."""

    call: Callable[[], Any]  # one inference, as an application makes it
    outputs: Callable[[Any], list]  # call()'s result -> one array per output, in order
    timed_region: str  # what lies inside call(), said as the harness's Session says it
    package: str  # the distribution that ran it
    computed_in: str | None = None  # inference precision read back from the compiled model


def open_tflite(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any],
                threads: int | None) -> Bound:  # fmt: skip
    """LiteRT, else tflite_runtime, else TensorFlow's interpreter; on the CPU."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        package = "ai-edge-litert"
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter

            package = "tflite-runtime"
        except ImportError:
            try:
                from tensorflow.lite import Interpreter

                package = "tensorflow"
            except ImportError:
                fail("no TFLite interpreter; run: pip install -r requirements.txt")
    interp = Interpreter(model_path=model_path, num_threads=threads)
    resized = []
    for d, x in zip(interp.get_input_details(), feeds):  # noqa: B905
        if tuple(d["shape"]) != tuple(x.shape):
            resized.append(f"{d['name']} {list(x.shape)} (the model takes {d['shape'].tolist()})")
            interp.resize_tensor_input(d["index"], list(x.shape))
    try:
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        if not resized:
            raise
        # a model exported at a fixed shape (a PT2E int8 .pt2 is) cannot be resized
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"the model cannot take input {', '.join(resized)}: {first}")
    set_tensor, invoke, get_tensor = interp.set_tensor, interp.invoke, interp.get_tensor
    pairs = [(d["index"], x) for d, x in zip(interp.get_input_details(), feeds)]  # noqa: B905
    outs = [d["index"] for d in interp.get_output_details()]

    def call() -> list:
        for idx, x in pairs:
            set_tensor(idx, x)
        invoke()
        return [get_tensor(i) for i in outs]

    region = "input copy (set_tensor) + invoke + output copy (get_tensor)"
    return Bound(call, lambda res: res, region, package)


def open_onnx(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any],
              threads: int | None) -> Bound:  # fmt: skip
    """ONNX Runtime on the first of the target's execution providers present here, else CPU."""
    try:
        import onnxruntime as ort
    except ImportError:
        fail("onnxruntime is not installed; run: pip install -r requirements.txt")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    present = ort.get_available_providers()
    rt = manifest["runtime"]
    use = [p for p in rt.get("providers") or [] if p in present] or ["CPUExecutionProvider"]
    sess = ort.InferenceSession(model_path, so, providers=use)
    feed = dict(zip([i.name for i in sess.get_inputs()], feeds))  # noqa: B905
    names = [o.name for o in sess.get_outputs()]
    run = sess.run
    region = "session.run with pre-built feed dict (includes output allocation and copy)"
    package = "onnxruntime-gpu" if "CUDAExecutionProvider" in present else "onnxruntime"
    return Bound(lambda: run(names, feed), list, region, package)


def open_openvino(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any],
                  threads: int | None) -> Bound:  # fmt: skip
    """OpenVINO on the target's device when present here, else on the CPU."""
    try:
        import openvino as ov
    except ImportError:
        fail("openvino is not installed; run: pip install -r requirements.txt")
    core = ov.Core()
    device = manifest["runtime"].get("device") or "CPU"
    if device not in core.available_devices:
        sys.stderr.write(f"run.py: {device} not present, running on CPU\n")
        device = "CPU"
    config: dict[str, Any] = {}
    if device == "CPU":
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if manifest.get("precision") == "fp32":
            # The CPU plugin computes in bf16 on CPUs with AVX-512 BF16 or AMX unless told.
            config["INFERENCE_PRECISION_HINT"] = "f32"
    computed = manifest["runtime"].get("inference_precision")
    if computed:  # a bf16 bundle: the fp32 model, compiled to compute in bf16 (as measured)
        config["INFERENCE_PRECISION_HINT"] = computed
    compiled = core.compile_model(core.read_model(model_path), device, config)
    request = compiled.create_infer_request()
    tensors = list(enumerate(ov.Tensor(np.ascontiguousarray(x), shared_memory=True) for x in feeds))
    set_tensor, infer = request.set_input_tensor, request.infer

    def call() -> Any:
        for i, t in tensors:
            set_tensor(i, t)
        return infer(share_outputs=True)

    region = (
        "set_input_tensor (pre-built ov.Tensor sharing the input's memory, no copy) + "
        "infer_request.infer (outputs read as views)"
    )
    hint = compiled.get_property("INFERENCE_PRECISION_HINT") if device == "CPU" else None
    ran = None if hint is None else getattr(hint, "get_type_name", lambda: str(hint))()
    return Bound(call, lambda res: [np.array(res[p]) for p in compiled.outputs], region,
                 "openvino", ran)  # fmt: skip


def open_executorch(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any],
                    threads: int | None) -> Bound:  # fmt: skip
    """ExecuTorch's runtime (its XNNPACK backend is in the wheel) on the program's forward."""
    try:
        import torch
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime
    except ImportError:
        fail("executorch is not installed; run: pip install -r requirements.txt")
    if threads:
        portable_lib._unsafe_reset_threadpool(int(threads))  # XNNPACK's threads, process-wide
    program = Runtime.get().load_program(model_path)
    method = program.load_method("forward")
    args = [torch.from_numpy(np.ascontiguousarray(x)) for x in feeds]
    execute = method.execute

    def call(_program: Any = program) -> Any:  # holds the program: its method needs it
        return execute(args)

    region = "method.execute on pre-built torch tensors (outputs read as numpy views after)"
    return Bound(call, lambda res: [o.numpy() for o in res], region, "executorch")


# The bundle's model format -> the function that loads it and binds its inputs.
RUNTIMES: dict[str, Callable[[str, list[np.ndarray], dict[str, Any], Any], Bound]] = {
    "tflite": open_tflite,
    "onnx": open_onnx,
    "openvino": open_openvino,
    "executorch": open_executorch,
}


def open_bundle(
    folder: str, input_path: str | None = None, model: str | None = None,
    threads: int | None = None,
) -> tuple[dict[str, Any], list[np.ndarray], Bound]:  # fmt: skip
    """Check the bundle in `folder`, load its model (or `model`) on the manifest's runtime
    with `threads` (default: the manifest's), and bind the inputs (see make_inputs)."""
    manifest = load_manifest(folder)
    feeds = to_model_layout(manifest, make_inputs(manifest["signature"], input_path))
    opener = RUNTIMES.get(manifest["format"])
    if opener is None:
        fail(f"this run.py cannot run {manifest['format']} models")
    model_path = model or os.path.join(folder, manifest["model"]["entry"])
    if threads is None:
        threads = manifest["runtime"].get("threads")
    return manifest, feeds, opener(model_path, feeds, manifest, threads)


def output_names(manifest: dict[str, Any], n: int) -> list[str]:
    names = [o["name"] for o in manifest["signature"]["outputs"]]
    return names if len(names) == n else [f"output_{i}" for i in range(n)]


def run(folder: str, input_path: str | None = None, model: str | None = None) -> Outputs:
    """Check the bundle in `folder` and run its model (or `model`, e.g. a compiled one) once.

    Returns ``[(name, array)]`` in the signature's output order, named as the
    manifest's signature names them.
    """
    manifest, _, bound = open_bundle(folder, input_path, model)
    outs = bound.outputs(bound.call())
    return list(zip(output_names(manifest, len(outs)), outs))  # noqa: B905


# ---- --bench: the harness's timing protocol and report fields, without edgekit ----------
# The report schema these fields follow (edgekit/schemas/report.schema.json), and the
# quantile rule of edgekit.bench.stats; tests check that both still agree with edgekit's.
REPORT_SCHEMA_VERSION = 1
QUANTILE_METHOD_NAME = "numpy 'linear' (Hyndman-Fan type 7)"
PERCENTILES = {"p5": 5, "p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimddp", "asimdhp", "sve", "sve2", "i8mm", "bf16",
)  # fmt: skip


def median_ci(x: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Distribution-free interval of the median from order statistics (x sorted)."""
    n = len(x)
    if n < 1 or 1 - 2 * 0.5**n < level:
        return {"low": None, "high": None, "level": level,
                "method": "order statistics (n too small)"}  # fmt: skip
    k = np.arange(1, n + 1, dtype=np.float64)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log((n - k + 1) / k))])
    cdf = np.cumsum(np.exp(log_choose - n * np.log(2.0)))  # P(Binomial(n, 1/2) <= j)
    ok = np.nonzero(1 - 2 * cdf[: (n + 1) // 2] >= level)[0]
    j = int(ok[-1]) if len(ok) else 0
    return {"low": float(x[j]), "high": float(x[n - 1 - j]), "level": level,
            "method": "order statistics (binomial, distribution-free)"}  # fmt: skip


def summarize(samples_ns: np.ndarray) -> dict[str, Any]:
    """Latency statistics in ms, the fields and rules of edgekit.bench.stats.summarize."""
    x = np.asarray(samples_ns, dtype=np.float64) / 1e6
    n = len(x)
    qs = np.percentile(x, list(PERCENTILES.values()), method="linear")
    med, mean = float(qs[1]), float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    out: dict[str, Any] = {"n": n, "min": float(x.min()), "max": float(x.max()), "mean": mean,
                           "std": std, "cv": std / mean if mean > 0 else None, "median": med,
                           "mad": float(np.median(np.abs(x - med)))}  # fmt: skip
    out.update({k: float(v) for k, v in zip(PERCENTILES, qs)})  # noqa: B905
    out["median_ci"] = median_ci(np.sort(x))
    third = n // 3
    out["drift"] = (float((np.median(x[-third:]) - np.median(x[:third])) / med)
                    if n >= 9 and med != 0 else None)  # fmt: skip
    out["quantile_method"] = QUANTILE_METHOD_NAME
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def environment(packages: Sequence[str]) -> dict[str, Any]:
    """This machine's fingerprint, with the fields of edgekit's (edgekit.bench.machine)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, str] = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    mem = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    gov = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    versions: dict[str, str | None] = {}
    for name in ["numpy", *packages]:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    return {
        "cpu_model": info.get("model name")
        or info.get("Hardware")
        or platform.processor()
        or "unknown",
        "arch": platform.machine(),
        "cores_logical": os.cpu_count(),
        "isa_features": [f for f in ISA_FLAGS if f in flags],
        "memory_bytes": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "governor": gov.strip() if gov else None,
        "load_avg": load,
        "hostname": platform.node(),
        "packages": versions,
    }


def _rss_mb(field: str) -> float | None:
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 2)
    return None


def timed_loop(
    call: Callable[[], Any], runs: int, min_ns: int, max_ns: int
) -> tuple[np.ndarray, str]:
    """Time `call` into a pre-allocated buffer until `runs` AND `min_ns` are met, or `max_ns`."""
    pc = time.perf_counter_ns
    buf = np.empty(min(max(runs, 4096), 1 << 20), dtype=np.int64)  # grows past 1M runs
    i, reason, start = 0, "min_runs_and_min_time", pc()
    while True:
        t0 = pc()
        call()
        t1 = pc()
        buf[i] = t1 - t0
        i += 1
        if i >= runs and t1 - start >= min_ns:
            break
        if t1 - start >= max_ns:
            reason = "max_time"
            break
        if i == len(buf):
            buf = np.concatenate([buf, np.empty(len(buf), dtype=np.int64)])  # rare: doubling
    return buf[:i].copy(), reason


def bench(folder: str, runs: int = 100, warmup: int = 10, threads: int | None = None,
          min_time: float = 0.0, max_time: float = 600.0) -> dict[str, Any]:  # fmt: skip
    """Time the bundle's model on this machine: `warmup` runs, then `runs` timed calls (and
    at least `min_time` s, at most `max_time` s); returns a report with edgekit's fields."""
    import gc
    import importlib

    pc = time.perf_counter_ns
    phases: dict[str, float] = {}
    manifest = load_manifest(folder)
    rt = manifest["runtime"]
    t0 = pc()
    try:  # the framework's import is its own phase, so that `load` is the model's cost
        importlib.import_module(rt.get("module") or "")
    except (ImportError, ValueError):
        pass  # the opener tries the alternatives, or fails naming requirements.txt
    phases["import"] = (pc() - t0) / 1e6
    rss_before = _rss_mb("VmRSS")
    t0 = pc()
    _, feeds, bound = open_bundle(folder, threads=threads)
    phases["load"] = (pc() - t0) / 1e6
    rss_after = _rss_mb("VmRSS")
    call = bound.call
    t0 = pc()
    call()
    phases["first_inference"] = (pc() - t0) / 1e6
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection pause inside a timed call is Python's, not the model's
    try:
        t0 = pc()
        for _ in range(warmup):
            call()
        phases["warmup"] = (pc() - t0) / 1e6
        t0 = pc()
        samples, reason = timed_loop(call, max(1, runs), int(min_time * 1e9), int(max_time * 1e9))
        phases["steady"] = (pc() - t0) / 1e6
    finally:
        if gc_was:
            gc.enable()
    return bench_report(folder, manifest, feeds, bound, threads, samples, reason, phases, {
        "warmup": warmup, "runs": runs, "min_time": min_time, "max_time": max_time,
        "memory": (rss_before, rss_after, _rss_mb("VmHWM")),
    })  # fmt: skip


def bench_report(folder: str, manifest: dict[str, Any], feeds: list[np.ndarray], bound: Bound,
                 threads: int | None, samples: np.ndarray, reason: str,
                 phases: dict[str, float], settings: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The report of one `bench` run: the fields of edgekit's benchmark report."""
    rt, sig = manifest["runtime"], manifest["signature"]
    entry = manifest["model"]["entry"]
    threads = threads if threads is not None else rt.get("threads")
    packages = [rt.get("package") or bound.package, *(rt.get("alternatives") or [])]
    env = environment([p for p in dict.fromkeys(packages) if p])
    lat = summarize(samples)
    lat["per_process"] = [{"index": 0, "pid": os.getpid(), "n": lat["n"], "median": lat["median"],
                           "p99": lat["p99"], "mean": lat["mean"], "phases_ms": dict(phases),
                           "stop_reason": reason}]  # fmt: skip
    warnings = []
    if env["governor"] is None:
        warnings.append("the CPU frequency governor cannot be read (virtual machine or "
                        "container?); frequency scaling is not under control")  # fmt: skip
    elif env["governor"] != "performance":
        warnings.append(f"the CPU frequency governor is '{env['governor']}', not 'performance'; "
                        "the clock may change during the run")  # fmt: skip
    if lat["cv"] is not None and lat["cv"] > 0.25:
        warnings.append(f"latencies vary a lot (coefficient of variation {lat['cv']:.2f})")
    if reason == "max_time":
        warnings.append(
            f"stopped by --max-time {settings['max_time']:g} s after {len(samples)} runs"
        )
    rss_before, rss_after, peak = settings["memory"]
    now = time.time()
    pc = time.perf_counter_ns
    clock = min(-pc() + pc() for _ in range(200))
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "edgekit_version": manifest.get("edgekit_version", "unknown"),
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        + f".{int(now % 1 * 1e6):06d}Z",
        "model": {
            "path": os.path.join(os.path.abspath(folder), entry),
            "sha256": manifest["files"][entry],
            "format": manifest["format"],
            "size_bytes": int(manifest["model"]["size_bytes"]),
            "precision": manifest["precision"],
            "inputs": sig["inputs"],
            "outputs": sig["outputs"],
            "bundle": os.path.abspath(folder),
        },
        "runtime": {
            "name": rt.get("host_runtime") or rt["name"],
            "version": env["packages"].get(bound.package),
            "device": rt.get("device") or "CPU",
            "provider": rt.get("provider"),
            "threads": threads,
            "options": {
                "package": bound.package,
                "runner": "run.py --bench",
                "inference_precision": bound.computed_in,
            },  # fmt: skip
        },
        "environment": env,
        "protocol": {
            "mode": "latency",
            "warmup": {
                "min_runs": settings["warmup"],
                "min_time_s": 0.0,
                "max_time_s": 0.0,
                "window": 1,
                "tolerance": 0.0,
                "runs": settings["warmup"],
                "time_s": phases["warmup"] / 1e3,
                "stable": True,
            },  # fmt: skip
            "min_runs": max(1, settings["runs"]),
            "min_time_s": float(settings["min_time"]),
            "max_time_s": float(settings["max_time"]),
            "max_runs": None,
            "processes": 1,
            "stop_reason": reason,
            "timed_region": bound.timed_region,
            "input_mode": "generated by run.py: seeded random data (seed 0), one sample",
            "input_samples": 1,
            "input_shapes": {s["name"]: list(x.shape) for s, x in zip(sig["inputs"], feeds)},  # noqa: B905
            "seed": 0,
            "batch": 1,
            "concurrency": 1,
            "clock": "time.perf_counter_ns around each call; back-to-back clock pair costs "
            f"{clock} ns (included in every sample)",
            "gc_disabled": True,
            "quantile_method": QUANTILE_METHOD_NAME,
        },
        "phases_ms": phases,
        "latency_ms": lat,
        "throughput": {
            "inferences_per_s": len(samples) / (float(samples.sum()) / 1e9),
            "concurrency": 1,
            "batch": 1,
        },  # fmt: skip
        "memory_mb": {
            "rss_before_load": rss_before,
            "rss_after_load": rss_after,
            "peak_rss": peak,
        },  # fmt: skip
        "samples_ns": samples.tolist(),
        "warnings": warnings,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run this edgekit bundle, or time it (--bench).")
    ap.add_argument("--input", help=".npz with one array per model input")
    ap.add_argument("--output", default="output.npz", help=".npz to write the outputs to")
    ap.add_argument("--model", help="model file to run instead of the manifest's (e.g. compiled)")
    ap.add_argument(
        "--bench", action="store_true", help="time the model instead of running it once"
    )
    ap.add_argument("--runs", type=int, default=100, help="--bench: timed runs (at least)")
    ap.add_argument("--warmup", type=int, default=10, help="--bench: untimed runs first")
    ap.add_argument(
        "--threads", type=int, default=None, help="--bench: threads (default: manifest's)"
    )
    ap.add_argument("--min-time", type=float, default=0.0, help="--bench: timed seconds (at least)")
    ap.add_argument("--max-time", type=float, default=600.0, help="--bench: stop after this many s")
    ap.add_argument("--json", action="store_true", help="--bench: print the report as JSON")
    args = ap.parse_args(argv)
    if args.bench:
        if args.runs < 1 or args.warmup < 0 or args.max_time <= 0 or (args.threads or 1) < 1:
            fail(
                "--runs and --threads must be at least 1, --warmup at least 0, --max-time positive"
            )
        report = bench(HERE, args.runs, args.warmup, args.threads, args.min_time, args.max_time)
        if args.json:
            sys.stdout.write(json.dumps(report, separators=(",", ":"), allow_nan=False) + "\n")
        else:
            lat = report["latency_ms"]
            print(f"{report['runtime']['name']} {report['runtime']['version']}, "
                  f"threads {report['runtime']['threads']}, {lat['n']} runs: median "
                  f"{lat['median']:.4g} ms, p90 {lat['p90']:.4g} ms, p99 {lat['p99']:.4g} ms")  # fmt: skip
            for w in report["warnings"]:
                print("warning: " + w)
        return 0
    outs = run(HERE, args.input, args.model)
    tmp = args.output + ".tmp.npz"
    np.savez(tmp, **dict(outs))
    os.replace(tmp, args.output)
    for n, a in outs:
        print(f"{n} {list(a.shape)} {a.dtype}")
    print("wrote " + args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
