"""The benchmark harness: load, first inference, warm-up until stable, steady state.

The protocol is written down in benchmarks/PROTOCOL.md; this module is its
only implementation. Every phase is timed separately, the timed loop does no
allocation of its own (pre-bound inputs, a pre-allocated sample buffer, gc
off), and the report states what lies inside the timed region and which rule
ended the run.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench import machine
from edgekit.bench.report import SCHEMA_VERSION, Report
from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize, window_medians_agree
from edgekit.errors import BundleError, InputError

# At least this many distinct input samples are rotated over (fewer only when memory forbids).
INPUT_SAMPLES = 16
INPUT_MEMORY_LIMIT = 512 * 2**20
# Progress callback: (phase, fraction done in [0, 1]).
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Protocol:
    """How long to warm up and measure. All times in seconds."""

    warmup_runs: int = 10
    warmup_time_s: float = 0.5
    warmup_max_time_s: float = 5.0
    warmup_tolerance: float = 0.05  # two consecutive window medians within 5%
    min_runs: int = 100
    min_time_s: float = 2.0
    max_time_s: float | None = 30.0
    max_runs: int | None = 1_000_000  # bounds memory and report size for µs-scale models

    @classmethod
    def certify(cls) -> Protocol:
        """The long preset: 60 s of steady state, like benchmark_app's default."""
        return cls(
            warmup_runs=50,
            warmup_time_s=2.0,
            warmup_max_time_s=20.0,
            min_runs=300,
            min_time_s=60.0,
            max_time_s=300.0,
            max_runs=5_000_000,
        )


def parse_warmup(value: str | int | float | None) -> tuple[int | None, float | None]:
    """`--warmup 20` means 20 runs, `--warmup 1.5s` or `1.5` means seconds."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        raise InputError(f"--warmup {value!r} is not a number of runs or seconds")
    if isinstance(value, int):
        runs = value
        if runs < 0:
            raise InputError(f"--warmup {value} must not be negative")
        return runs, None
    if isinstance(value, float):
        secs = value
    else:
        text = value.strip().lower()
        try:
            if text.endswith("s"):
                secs = float(text[:-1])
            elif text.isdigit():
                return int(text), None
            else:
                secs = float(text)
        except ValueError:
            raise InputError(
                f"--warmup {value!r} is not a number of runs (20) or seconds (1.5s)"
            ) from None
    if not math.isfinite(secs) or secs < 0:
        raise InputError(f"--warmup {value!r} must be a non-negative number of seconds")
    return None, secs


# ----------------------------------------------------------------------------- inputs


def load_npz(path: str | os.PathLike, signature: Any) -> list[dict[str, np.ndarray]]:
    """Samples from a user's .npz: one array per input name, optionally with a leading sample axis."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise InputError(f"{p}: no such input file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: is not a readable .npz file ({exc})") from None
    names = [t.name for t in signature.inputs]
    if set(arrays) != set(names):
        raise InputError(
            f"{p}: holds arrays {sorted(arrays)}, but the model's inputs are {names}; "
            "name each array after its input"
        )
    counts = set()
    for spec in signature.inputs:
        arr = arrays[spec.name]
        rank = None if spec.shape is None else len(spec.shape)
        counts.add(arr.shape[0] if rank is not None and arr.ndim == rank + 1 else None)
    if len(counts) != 1:
        raise InputError(f"{p}: inputs disagree on the number of samples along the first axis")
    count = counts.pop()
    if count is None:
        return [arrays]
    if count == 0:
        raise InputError(f"{p}: holds zero samples")
    return [{n: np.ascontiguousarray(a[i]) for n, a in arrays.items()} for i in range(count)]


def _feed_bytes(feeds: Mapping[str, np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in feeds.values())


# ----------------------------------------------------------------------------- timing loops


def clock_overhead_ns(repeats: int = 2000) -> int:
    """Median cost of one pair of back-to-back perf_counter_ns calls (part of every sample)."""
    pc = time.perf_counter_ns
    deltas = np.empty(repeats, dtype=np.int64)
    for i in range(repeats):
        t0 = pc()
        t1 = pc()
        deltas[i] = t1 - t0
    return int(np.median(deltas))


def warm_up(
    calls: Sequence[Callable[[], Any]],
    protocol: Protocol,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run until at least warmup_runs and warmup_time_s have passed AND two consecutive
    window medians agree within warmup_tolerance, or until warmup_max_time_s."""
    pc = time.perf_counter_ns
    k = len(calls)
    min_runs, min_ns = protocol.warmup_runs, int(protocol.warmup_time_s * 1e9)
    max_ns = int(max(protocol.warmup_max_time_s, protocol.warmup_time_s) * 1e9)
    if min_runs == 0 and min_ns == 0:
        return {"runs": 0, "time_s": 0.0, "stable": True, "window": 1, "samples": []}
    samples: list[int] = []
    window = 0
    start = pc()
    next_tick = start + 100_000_000
    stable = False
    i = 0
    while True:
        t0 = pc()
        calls[i % k]()
        t1 = pc()
        samples.append(t1 - t0)
        i += 1
        elapsed = t1 - start
        if window == 0 and i >= 5:
            # windows of ~0.1 s of inference, 5 to 500 runs each
            est = max(float(np.median(samples)), 1.0)
            window = int(min(500, max(5, math.ceil(1e8 / est))))
        if i >= min_runs and elapsed >= min_ns and window and i % window == 0:
            if window_medians_agree(
                np.asarray(samples[-2 * window :]), window, protocol.warmup_tolerance
            ):
                stable = True
                break
        if elapsed >= max_ns and i >= min_runs:
            break
        if progress is not None and t1 >= next_tick:
            next_tick = t1 + 100_000_000
            progress("warm-up", min(1.0, elapsed / max(min_ns, 1)))
    return {
        "runs": i,
        "time_s": (pc() - start) / 1e9,
        "stable": stable,
        "window": max(window, 1),
        "samples": samples,
    }


def steady_state(
    calls: Sequence[Callable[[], Any]],
    protocol: Protocol,
    progress: Progress | None = None,
) -> tuple[np.ndarray, str, float]:
    """Time each call with perf_counter_ns until min_runs AND min_time are met,
    or max_time / max_runs is reached, or the user interrupts.

    Returns (samples_ns, stop_reason, wall seconds).
    """
    pc = time.perf_counter_ns
    k = len(calls)
    min_runs = max(1, protocol.min_runs)
    min_ns = int(protocol.min_time_s * 1e9)
    max_ns = int(protocol.max_time_s * 1e9) if protocol.max_time_s else 1 << 62
    max_runs = protocol.max_runs or (1 << 62)
    cap = int(min(max_runs, max(4096, 2 * min_runs)))
    buf = np.empty(cap, dtype=np.int64)
    i = 0
    reason = "min_runs_and_min_time"
    start = pc()
    tick = 100_000_000
    next_tick = start + tick
    try:
        while True:
            call = calls[i % k]
            t0 = pc()
            call()
            t1 = pc()
            buf[i] = t1 - t0
            i += 1
            elapsed = t1 - start
            if i >= min_runs and elapsed >= min_ns:
                break
            if elapsed >= max_ns:
                reason = "max_time"
                break
            if i >= cap:
                if i >= max_runs:
                    reason = "max_runs"
                    break
                # grow outside the timed call; rare (doubling)
                buf = np.concatenate([buf, np.empty(min(cap, max_runs - cap), dtype=np.int64)])
                cap = len(buf)
            if progress is not None and t1 >= next_tick:
                next_tick = t1 + tick
                progress("steady", min(1.0, i / min_runs, elapsed / max(min_ns, 1)))
    except KeyboardInterrupt:
        if i == 0:
            raise
        reason = "interrupted"
    wall = (pc() - start) / 1e9
    return buf[:i].copy(), reason, wall


# ----------------------------------------------------------------------------- benchmark


def _resolve_protocol(
    certify: bool,
    warmup: str | int | float | None,
    min_runs: int | None,
    min_time: float | None,
    max_time: float | None,
    max_runs: int | None,
) -> Protocol:
    proto = Protocol.certify() if certify else Protocol()
    w_runs, w_secs = parse_warmup(warmup)
    changes: dict[str, Any] = {}
    if w_runs is not None:
        changes["warmup_runs"] = w_runs
        if w_runs == 0:
            changes["warmup_time_s"] = 0.0
    if w_secs is not None:
        changes["warmup_time_s"] = w_secs
        changes["warmup_max_time_s"] = max(proto.warmup_max_time_s, 4 * w_secs)
        if w_secs == 0:
            changes["warmup_runs"] = 0
    if min_runs is not None:
        if min_runs < 1:
            raise InputError(f"--min-runs {min_runs} must be at least 1")
        changes["min_runs"] = min_runs
    if min_time is not None:
        if min_time < 0:
            raise InputError(f"--min-time {min_time} must not be negative")
        changes["min_time_s"] = float(min_time)
    if max_time is not None:
        if max_time <= 0:
            raise InputError(f"--max-time {max_time} must be positive")
        changes["max_time_s"] = float(max_time)
    if max_runs is not None:
        changes["max_runs"] = max_runs
    # --max-time is the hard limit: below --min-time it wins, and the report says so
    return replace(proto, **changes)


def _bundle(path: Path) -> dict[str, Any]:
    """Model path and runtime settings from a deploy bundle, via edgekit.deploy.load_bundle."""
    try:
        from edgekit.deploy.bundle import load_bundle
    except ImportError:
        raise BundleError(
            f"{path}: is a deploy bundle, and this edgekit cannot read bundles yet; "
            "bench the model file inside it instead"
        ) from None
    b = load_bundle(path)

    def get(name: str) -> Any:
        if isinstance(b, Mapping):
            return b.get(name)
        return getattr(b, name, None)

    model_path = get("model_path") or get("model")
    if model_path is None:
        raise BundleError(f"{path}: the bundle's manifest names no model file")
    return {
        "model": Path(model_path) if not hasattr(model_path, "format") else model_path,
        "runtime": get("runtime"),
        "device": get("device"),
        "provider": get("provider"),
        "threads": get("threads"),
    }


def _precision(model: Any) -> str:
    tensors = list(model.signature.inputs) + list(model.signature.outputs)
    if any(t.quantization is not None for t in tensors):
        return "int8 (quantized I/O)"
    names = {"float32": "fp32", "float16": "fp16", "int8": "int8", "uint8": "uint8"}
    dtypes = {t.dtype for t in model.signature.inputs}
    if len(dtypes) == 1:
        d = dtypes.pop()
        return names.get(d, d)
    return "mixed I/O: " + ",".join(sorted(dtypes))


def _runtime_options(
    runtime: str, device: str, threads: int | None, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    if runtime == "openvino":
        from edgekit.runtimes.openvino import compile_config

        return {"compile_config": compile_config(device, threads, options)}
    return dict(options or {})


def _mb(b: int | None) -> float | None:
    return None if b is None else round(b / 2**20, 2)


def _utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def benchmark(
    model: Any,
    *,
    runtime: str | None = None,
    device: str | None = None,
    provider: str | None = None,
    threads: int | None = None,
    batch: int = 1,
    inputs: str | os.PathLike | Sequence[Mapping[str, np.ndarray]] | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    seed: int = 0,
    warmup: str | int | float | None = None,
    min_runs: int | None = None,
    min_time: float | None = None,
    max_time: float | None = None,
    max_runs: int | None = None,
    certify: bool = False,
    processes: int = 1,
    mode: str = "latency",
    concurrency: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    stop_on_interrupt: bool = False,
) -> Report:
    """Measure `model` (a path, a Model, or a deploy bundle folder) and return a Report.

    Phases are timed separately (import, load, first inference, warm-up, steady
    state); steady state ends when min_runs AND min_time are both met, or at
    max_time. With processes=K the whole measurement is repeated in K fresh
    processes and their samples merged. mode="throughput" runs `concurrency`
    requests at once and reports inferences per second. A Ctrl-C in steady state
    ends the measurement and keeps its samples (stop reason "interrupted");
    `stop_on_interrupt=True` raises KeyboardInterrupt instead, for callers such as
    optimize and deploy, where the measurement is one step of a run the user means
    to stop.

    Example:
        report = benchmark("model.onnx", runtime="openvino", threads=1, min_time=1)
        print(report.latency_ms["median"])
    """
    from edgekit.model import Model, load
    from edgekit.runtimes import default_runtime, get_runtime

    if mode not in ("latency", "throughput"):
        raise InputError(f"--mode {mode!r} is not one of: latency, throughput")
    if batch < 1:
        raise InputError(f"--batch {batch} must be at least 1")
    if processes < 1:
        raise InputError(f"--processes {processes} must be at least 1")
    if concurrency is not None and concurrency < 1:
        raise InputError(f"--concurrency {concurrency} must be at least 1")
    if concurrency not in (None, 1) and mode == "latency":
        raise InputError("--concurrency applies to --mode throughput only")
    if mode == "throughput" and concurrency is None:
        concurrency = 2
    protocol = _resolve_protocol(certify, warmup, min_runs, min_time, max_time, max_runs)

    bundle_path = None
    if not isinstance(model, Model):
        p = Path(model)
        is_archive = p.is_file() and p.name.endswith((".tar.gz", ".tgz"))
        if is_archive or (p.is_dir() and (p / "manifest.json").is_file()):
            bundle_path = p
            b = _bundle(p)
            model = b["model"]
            runtime = runtime or b["runtime"]
            device = device or b["device"]
            provider = provider or b["provider"]
            threads = threads if threads is not None else b["threads"]
    m = model if isinstance(model, Model) else load(model)
    if batch > 1 and not any(
        t.shape is None or (t.shape and not isinstance(t.shape[0], int)) for t in m.signature.inputs
    ):
        raise InputError(
            f"{m.path}: every input has a fixed first dimension, so --batch {batch} cannot apply; "
            "export the model with a dynamic batch dimension or give --input-shape"
        )
    rt_name = runtime or default_runtime(m)
    rt = get_runtime(rt_name)
    rt.require()

    if processes > 1:
        from edgekit.bench.worker import run_processes

        settings = {
            "model": str(m.path),
            "runtime": rt_name,
            "device": device,
            "provider": provider,
            "threads": threads,
            "batch": batch,
            "inputs": str(inputs) if isinstance(inputs, (str, os.PathLike)) else None,
            "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()},
            "seed": seed,
            "protocol": asdict(protocol),
            "mode": mode,
            "concurrency": concurrency,
            "options": dict(options or {}),
        }
        if inputs is not None and settings["inputs"] is None:
            raise InputError("--processes needs inputs from a .npz file, not in-memory arrays")
        report = run_processes(settings, processes, progress)
        if bundle_path is not None:
            report.data["model"]["bundle"] = str(bundle_path)
    else:
        report = _measure(
            m,
            rt,
            rt_name,
            device=device,
            provider=provider,
            threads=threads,
            batch=batch,
            inputs=inputs,
            input_shapes=input_shapes,
            seed=seed,
            protocol=protocol,
            mode=mode,
            concurrency=concurrency or 1,
            options=options,
            progress=progress,
            bundle_path=bundle_path,
        )
    if stop_on_interrupt and report["protocol"]["stop_reason"] == "interrupted":
        raise KeyboardInterrupt
    return report


def _measure(
    m: Any,
    rt: Any,
    rt_name: str,
    *,
    device: str | None,
    provider: str | None,
    threads: int | None,
    batch: int,
    inputs: Any,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
    seed: int,
    protocol: Protocol,
    mode: str,
    concurrency: int,
    options: Mapping[str, Any] | None,
    progress: Progress | None,
    bundle_path: Path | None = None,
) -> Report:
    """One measurement in this process (see `benchmark`)."""
    from edgekit import __version__ as edgekit_version
    from edgekit.inputs import generate_inputs
    from edgekit.runtimes import open_session

    env = machine.fingerprint()
    warnings = machine.check(env)
    pc = time.perf_counter_ns
    phases: dict[str, float] = {}

    # Framework import is its own phase so that `load` is the model's cost only.
    t0 = pc()
    rt_version = rt.version()
    if rt_name == "litert":
        rt.interpreter_package()
    phases["import"] = (pc() - t0) / 1e6

    rss_before = machine.rss_bytes()
    if mode == "throughput" and rt_name == "openvino":
        ov_opts = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": str(concurrency)}
        if threads:  # --threads is per request, as on the other runtimes; OpenVINO's is a total
            ov_opts["INFERENCE_NUM_THREADS"] = threads * concurrency
        options = {**ov_opts, **dict(options or {})}
    t0 = pc()
    session = open_session(
        m, rt_name, device=device, threads=threads, provider=provider, options=options
    )
    phases["load"] = (pc() - t0) / 1e6
    rss_after = machine.rss_bytes()
    try:
        # ---- inputs: seeded, distinct, pre-allocated before anything is timed
        if inputs is None:
            one = generate_inputs(m.signature, count=1, seed=seed, batch=batch, shapes=input_shapes)
            count = INPUT_SAMPLES
            per = _feed_bytes(one[0])
            if per * count > INPUT_MEMORY_LIMIT:
                count = max(1, INPUT_MEMORY_LIMIT // max(per, 1))
                warnings.append(
                    f"inputs are large ({per / 2**20:.0f} MiB per sample): rotating over "
                    f"{count} samples instead of {INPUT_SAMPLES}"
                )
            feeds = generate_inputs(
                m.signature, count=count, seed=seed, batch=batch, shapes=input_shapes
            )
            input_mode = (
                f"generated: {count} distinct seeded samples (seed {seed}), dtype and quantized "
                "ranges of the signature, rotated in order"
            )
        elif isinstance(inputs, (str, os.PathLike)):
            feeds = load_npz(inputs, m.signature)
            input_mode = f"user file {Path(inputs).name}: {len(feeds)} samples, rotated in order"
        else:
            feeds = [dict(f) for f in inputs]
            if not feeds:
                raise InputError("inputs is an empty list of feeds")
            input_mode = f"user arrays: {len(feeds)} samples, rotated in order"
        feeds = [{k: np.ascontiguousarray(v) for k, v in f.items()} for f in feeds]

        t0 = pc()
        calls = [session.bind(f) for f in feeds]
        phases["bind"] = (pc() - t0) / 1e6
        t0 = pc()
        calls[0]()
        phases["first_inference"] = (pc() - t0) / 1e6

        gc_was = gc.isenabled()
        gc.collect()
        gc.disable()  # a collection pause inside a timed call is Python's, not the model's
        try:
            if mode == "latency":
                wu = warm_up(calls, protocol, progress)
                phases["warmup"] = wu["time_s"] * 1e3
                samples, reason, wall = steady_state(calls, protocol, progress)
                phases["steady"] = wall * 1e3
                tput = {
                    "inferences_per_s": len(samples) / (float(samples.sum()) / 1e9),
                    "concurrency": 1,
                    "batch": batch,
                }
                timed_region = session.timed_region
            else:
                from edgekit.bench.throughput import measure_throughput

                wu, samples, reason, wall, ips, timed_region = measure_throughput(
                    session, feeds, calls, concurrency, protocol, progress,
                    open_more=lambda: open_session(
                        m, rt_name, device=device, threads=threads, provider=provider,
                        options=options,
                    ),
                )  # fmt: skip
                phases["warmup"] = wu["time_s"] * 1e3
                phases["steady"] = wall * 1e3
                tput = {"inferences_per_s": ips, "concurrency": concurrency, "batch": batch}
        finally:
            if gc_was:
                gc.enable()
        peak = machine.peak_rss_bytes()
    finally:
        session_device = getattr(session, "device", device or "CPU")
        session_provider = getattr(session, "provider", provider)
        session.close()

    if not wu["stable"] and wu["runs"]:
        warnings.append(
            f"warm-up did not stabilize within {protocol.warmup_max_time_s:g} s "
            f"({wu['runs']} runs): consecutive window medians kept differing by more than "
            f"{protocol.warmup_tolerance:.0%}"
        )
    if reason == "max_time":
        warnings.append(
            f"stopped by --max-time {protocol.max_time_s:g} s after {len(samples)} runs, before "
            f"--min-runs {protocol.min_runs} and --min-time {protocol.min_time_s:g} s were both met"
        )
    elif reason == "max_runs":
        warnings.append(f"stopped after the {protocol.max_runs} run limit before --min-time")
    elif reason == "interrupted":
        warnings.append(f"interrupted by the user after {len(samples)} runs")

    lat = summarize(samples)
    lat["quantile_method"] = QUANTILE_METHOD_NAME
    lat["per_process"] = [
        {
            "index": 0,
            "pid": os.getpid(),
            "n": lat["n"],
            "median": lat["median"],
            "p99": lat["p99"],
            "mean": lat["mean"],
            "phases_ms": dict(phases),
            "stop_reason": reason,
        }
    ]
    if lat["drift"] is not None and abs(lat["drift"]) > 0.05:
        warnings.append(
            f"latency drifted by {lat['drift']:+.1%} between the first and last third of the run"
        )
    if lat["cv"] is not None and lat["cv"] > 0.25:
        warnings.append(f"latencies vary a lot (coefficient of variation {lat['cv']:.2f})")

    sig = m.signature
    data = {
        "schema_version": SCHEMA_VERSION,
        "edgekit_version": edgekit_version,
        "timestamp_utc": _utc_now(),
        "model": {
            "path": str(m.path),
            "sha256": m.sha256,
            "format": str(m.format),
            "size_bytes": int(m.size_bytes),
            "precision": _precision(m),
            "inputs": [t.to_dict() for t in sig.inputs],
            "outputs": [t.to_dict() for t in sig.outputs],
            "bundle": str(bundle_path) if bundle_path else None,
        },
        "runtime": {
            "name": rt_name,
            "version": rt_version,
            "device": str(session_device),
            "provider": session_provider,
            "threads": threads,
            "options": _runtime_options(rt_name, str(session_device), threads, options),
        },
        "environment": env,
        "protocol": {
            "mode": mode,
            "warmup": {
                "min_runs": protocol.warmup_runs,
                "min_time_s": protocol.warmup_time_s,
                "max_time_s": protocol.warmup_max_time_s,
                "window": wu["window"],
                "tolerance": protocol.warmup_tolerance,
                "runs": wu["runs"],
                "time_s": wu["time_s"],
                "stable": wu["stable"],
            },
            "min_runs": protocol.min_runs,
            "min_time_s": protocol.min_time_s,
            "max_time_s": protocol.max_time_s,
            "max_runs": protocol.max_runs,
            "processes": 1,
            "stop_reason": reason,
            "timed_region": timed_region,
            "input_mode": input_mode,
            "input_samples": len(feeds),
            "input_shapes": {k: list(v.shape) for k, v in feeds[0].items()},
            "seed": seed,
            "batch": batch,
            "concurrency": concurrency,
            "clock": (
                "time.perf_counter_ns around each call; back-to-back clock pair costs "
                f"{clock_overhead_ns()} ns (included in every sample)"
            ),
            "gc_disabled": True,
            "quantile_method": QUANTILE_METHOD_NAME,
        },
        "phases_ms": phases,
        "latency_ms": lat,
        "throughput": tput,
        "memory_mb": {
            "rss_before_load": _mb(rss_before),
            "rss_after_load": _mb(rss_after),
            "peak_rss": _mb(peak),
        },
        "samples_ns": samples.tolist(),
        "warnings": warnings,
    }
    return Report(data).validate()
