"""`--processes K`: repeat a measurement in K fresh Python processes and merge them.

Each process is `python -m edgekit.bench.worker SETTINGS.json OUT.json`; it
runs one measurement and writes a full report. The processes run one after
another (never at once, so they do not compete for cores). The merged report
pools the raw samples and keeps each process's statistics in
`latency_ms.per_process`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.report import Report, load_report
from edgekit.bench.stats import QUANTILE_METHOD_NAME, summarize
from edgekit.errors import EdgekitError


def _run_one(settings: dict[str, Any], out: Path) -> None:
    from edgekit.bench.measure import measure
    from edgekit.bench.protocol import Protocol
    from edgekit.data.feed import FeedFlags
    from edgekit.model import load

    report = measure(
        load(settings["model"]),
        settings["runtime"],
        device=settings["device"],
        provider=settings["provider"],
        threads=settings["threads"],
        batch=settings["batch"],
        inputs=settings["inputs"],
        input_shapes={k: tuple(v) for k, v in settings["input_shapes"].items()} or None,
        seed=settings["seed"],
        protocol=Protocol(**settings["protocol"]),
        mode=settings["mode"],
        concurrency=settings["concurrency"] or 1,
        options=settings["options"] or None,
        progress=None,
        feed=FeedFlags(**settings["feed"]) if settings.get("feed") else None,
    )
    report.save(out)


def merge(reports: list[dict[str, Any]]) -> Report:
    """One report from several processes' reports of the same measurement."""
    base = json.loads(json.dumps(reports[0]))
    samples = np.concatenate([np.asarray(r["samples_ns"], dtype=np.int64) for r in reports])
    lat = summarize(samples)
    lat["quantile_method"] = QUANTILE_METHOD_NAME
    per = []
    for i, r in enumerate(reports):
        entry = dict(r["latency_ms"]["per_process"][0])
        entry["index"] = i
        per.append(entry)
    lat["per_process"] = per
    base["latency_ms"] = lat
    base["samples_ns"] = samples.tolist()
    phases = {}
    for key in reports[0]["phases_ms"]:
        vals = [r["phases_ms"][key] for r in reports if key in r["phases_ms"]]
        phases[key] = float(np.median(vals))
    base["phases_ms"] = phases
    base["protocol"]["processes"] = len(reports)
    reasons = [r["protocol"]["stop_reason"] for r in reports]
    for bad in ("interrupted", "max_time", "max_runs"):
        if bad in reasons:
            base["protocol"]["stop_reason"] = bad
            break
    base["protocol"]["warmup"]["runs"] = int(
        np.median([r["protocol"]["warmup"]["runs"] for r in reports])
    )
    base["protocol"]["warmup"]["stable"] = all(r["protocol"]["warmup"]["stable"] for r in reports)
    for key in ("rss_before_load", "rss_after_load", "peak_rss"):
        vals = [r["memory_mb"][key] for r in reports if r["memory_mb"][key] is not None]
        base["memory_mb"][key] = max(vals) if vals else None
    tp = [r["throughput"]["inferences_per_s"] for r in reports]
    base["throughput"]["inferences_per_s"] = float(np.median(tp))
    warnings: list[str] = []
    for r in reports:
        for w in r["warnings"]:
            if w not in warnings:
                warnings.append(w)
    medians = [p["median"] for p in per]
    spread = (max(medians) - min(medians)) / min(medians)
    if spread > 0.05:
        warnings.append(
            f"process medians differ by {spread:.1%} (from {min(medians):.4g} to "
            f"{max(medians):.4g} ms): run-to-run variation exceeds the per-run confidence interval"
        )
    base["warnings"] = warnings
    return Report(base).validate()


def run_processes(
    settings: dict[str, Any], processes: int, progress: Callable[[str, float], None] | None = None
) -> Report:
    """Run the measurement in `processes` fresh processes, one after another, and merge."""
    reports = []
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        cfg = Path(tmp) / "settings.json"
        cfg.write_text(json.dumps(settings))
        for k in range(processes):
            if progress is not None:
                progress(f"process {k + 1}/{processes}", k / processes)
            out = Path(tmp) / f"process{k}.json"
            proc = subprocess.run(
                [sys.executable, "-m", "edgekit.bench.worker", str(cfg), str(out)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                check=False,
            )
            if proc.returncode != 0 or not out.exists():
                lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
                last = lines[-1] if lines else f"exit code {proc.returncode}"
                raise EdgekitError(f"benchmark process {k + 1} of {processes} failed: {last}")
            reports.append(load_report(out))
        if progress is not None:
            progress(f"process {processes}/{processes}", 1.0)
    return merge(reports)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = json.loads(Path(args[0]).read_text())
    try:
        _run_one(settings, Path(args[1]))
    except EdgekitError as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
