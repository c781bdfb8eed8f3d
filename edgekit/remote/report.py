"""The raw samples a device sent back, as a normal bench Report (schema-validated).

The environment is the device's (from its fingerprint), not this host's; the
time spent connecting, fingerprinting, pushing and on the SSH round trip goes
under "remote", never into the samples.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def build_report(
    loaded: Any, raw: dict[str, Any], env: dict[str, Any], remote: dict[str, Any]
) -> Any:
    """A Report from a LoadedBundle, the timing script's JSON, the device's env and SSH figures."""
    from edgekit import __version__
    from edgekit.bench.machine import check
    from edgekit.bench.report import SCHEMA_VERSION, Report
    from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize

    m = loaded.manifest
    entry = m["model"]["entry"]
    samples = np.asarray(raw["samples_ns"], dtype=np.int64)
    lat = summarize(samples)
    lat["quantile_method"] = QUANTILE_METHOD_NAME
    phases = {k: float(v) for k, v in raw["phases_ms"].items()}
    lat["per_process"] = [{"index": 0, "pid": raw.get("pid"), "n": lat["n"], "median": lat["median"],
                           "p99": lat["p99"], "mean": lat["mean"], "phases_ms": phases,
                           "stop_reason": "max_runs"}]  # fmt: skip
    warnings = check(env)
    made_for = m.get("profile", {}).get("name")
    if made_for and made_for != remote["device_profile"]:
        warnings.append(f"the bundle was made for profile {made_for}; device {remote['device']} "
                        f"stands for {remote['device_profile']}")  # fmt: skip
    if lat["cv"] is not None and lat["cv"] > 0.25:
        warnings.append(f"latencies vary a lot (coefficient of variation {lat['cv']:.2f})")
    sig = m["signature"]
    n = len(samples)
    data = {
        "schema_version": SCHEMA_VERSION,
        "edgekit_version": __version__,
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {
            "path": f"{remote['bundle_dir']}/{entry}",
            "sha256": m["files"][entry],
            "format": m["format"],
            "size_bytes": int(m["model"]["size_bytes"]),
            "precision": m["precision"],
            "inputs": sig["inputs"],
            "outputs": sig["outputs"],
            "bundle": str(loaded.path),
        },
        "runtime": {
            "name": m["runtime"]["name"],
            "version": raw.get("runtime_version") or "unknown",
            "device": m["runtime"].get("device") or "CPU",
            "provider": m["runtime"].get("provider"),
            "threads": raw.get("threads"),
            "options": {"package": raw.get("runtime_package")},
        },
        "environment": env,
        "protocol": {
            "mode": "latency",
            "warmup": {
                "min_runs": int(raw["warmup_runs"]),
                "min_time_s": 0.0,
                "runs": int(raw["warmup_runs"]),
                "time_s": phases["warmup"] / 1e3,
                "stable": True,
            },  # fmt: skip
            "min_runs": n,
            "min_time_s": 0.0,
            "max_time_s": float(remote["timeout_s"]),
            "max_runs": n,
            "processes": 1,
            "stop_reason": "max_runs",
            "timed_region": raw["timed_region"],
            "input_mode": "generated on the device by the bundle's run.py (seed 0), one sample",
            "input_samples": 1,
            "seed": 0,
            "batch": 1,
            "concurrency": 1,
            "clock": "time.perf_counter_ns on the device around each call",
            "gc_disabled": False,
            "quantile_method": QUANTILE_METHOD_NAME,
            "where": f"on device {remote['device']}; only on-device timings are samples",
        },
        "phases_ms": phases,
        "latency_ms": lat,
        "throughput": {
            "inferences_per_s": n / (float(samples.sum()) / 1e9),
            "concurrency": 1,
            "batch": 1,
        },  # fmt: skip
        "memory_mb": {"rss_before_load": None, "rss_after_load": None, "peak_rss": None},
        "samples_ns": samples.tolist(),
        "warnings": warnings,
        "remote": remote,
    }
    return Report(data).validate()
