"""One measurement in this process: load, first inference, warm-up, steady state, report.

Every phase is timed separately, the timed loop does no allocation of its own
(pre-bound inputs, a pre-allocated sample buffer, gc off), and the report states
what lies inside the timed region and which rule ended the run. `measure` is
what `edgekit.bench.benchmark` runs, and what each `--processes` worker runs.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import edgekit.bench.machine as machine
from edgekit.bench.inputs import benchmark_inputs
from edgekit.bench.loops import Progress, clock_overhead_ns, steady_state, warm_up
from edgekit.bench.protocol import Protocol
from edgekit.bench.report import SCHEMA_VERSION, Report
from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize

if TYPE_CHECKING:
    from edgekit.data.feed import FeedFlags


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


def _mb(b: int | None) -> float | None:
    return None if b is None else round(b / 2**20, 2)


def _utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def measure(
    m: Any,
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
    feed: FeedFlags | None = None,
) -> Report:
    """One measurement of `m` on the runtime `rt_name`, in this process: what `benchmark`
    and each `--processes` worker run. The settings are `benchmark`'s, already checked;
    `protocol` is resolved and `concurrency` is 1 in latency mode."""
    from edgekit import __version__ as edgekit_version
    from edgekit.runtimes import get_runtime, open_session

    rt = get_runtime(rt_name)

    env = machine.fingerprint()
    warnings = machine.check(env)
    pc = time.perf_counter_ns
    phases: dict[str, float] = {}

    # Framework import is its own phase so that `load` is the model's cost only.
    t0 = pc()
    rt_version = rt.version()
    rt.import_framework()
    phases["import"] = (pc() - t0) / 1e6

    rss_before = machine.rss_bytes()
    if mode == "throughput":
        options = rt.throughput_options(concurrency, threads, options)
    t0 = pc()
    session = open_session(
        m, rt_name, device=device, threads=threads, provider=provider, options=options
    )
    phases["load"] = (pc() - t0) / 1e6
    rss_after = machine.rss_bytes()
    try:
        # ---- inputs: seeded, distinct, pre-allocated before anything is timed
        feeds, input_mode, feed_record = benchmark_inputs(
            m.signature, inputs, seed=seed, batch=batch, input_shapes=input_shapes,
            warnings=warnings, feed=feed, model_path=m.path,
        )  # fmt: skip

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
        # after the timing, since TFLM's arena search re-plans the model several times
        figures = session.target_figures()
    finally:
        session_device = getattr(session, "device", device or "CPU")
        session_provider = getattr(session, "provider", provider)
        ran_precision = session.inference_precision()
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
            "options": rt.report_options(str(session_device), threads, options),
            # what the runtime computed in, read back from the loaded model (None: as stored)
            "inference_precision": ran_precision,
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
            "timing_source": session.timing_source,
            "input_mode": input_mode,
            "feed": feed_record,
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
    if figures is not None:
        data["target_figures"] = figures
    return Report(data).validate()
