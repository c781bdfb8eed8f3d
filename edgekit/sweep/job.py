"""One sweep job, as a worker runs it: optimize (and deploy) into the job's own folder.

Runs in a Dask worker process. A user error (an unsupported op, a limit) is the
job's deterministic result, returned, never raised, so the engine does not retry
it; only a lost worker is retried. A job with a `device` times its bundle there
over SSH (`edgekit.remote`, as `bench --device` does); a device that cannot be
reached or fails a check is an `error` (the device's state, not the model's), so
`--resume` runs the job again.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

# Configuration keys that are not optimize keywords: a label, and where the bundle is timed.
_NOT_OPTIMIZE = ("name", "device")


def where_am_i() -> dict[str, Any]:
    """Where this job runs: the worker's address, the host's fingerprint and its cores."""
    from edgekit.bench.machine import fingerprint

    try:
        from distributed import get_worker

        w = get_worker()
        worker, name = w.address, w.name
    except (ImportError, ValueError):
        worker, name = None, None
    env = fingerprint()
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    return {
        "worker": worker,
        "worker_name": None if name is None else str(name),
        "pid": os.getpid(),
        "host": {k: env[k] for k in ("hostname", "arch", "cpu_model", "cores_logical", "os")},
        "cpus": cpus,
    }


def _metrics(rep: dict[str, Any]) -> dict[str, Any]:
    opt = rep.get("optimized") or {}
    lat = opt.get("latency_ms") or {}
    return {
        "precision": opt.get("precision"),
        "size_bytes": opt.get("size_bytes"),
        "accuracy": opt.get("accuracy"),
        "latency_ms": lat.get("median") if isinstance(lat, dict) else lat,
        "meets_budget": rep.get("meets_budget"),
    }


def run_job(job: dict[str, Any], out: str, attempt: int) -> dict[str, Any]:
    """Run one job (a `Job.to_dict()`) into `out`/jobs/<id>/ and return its result record."""
    from edgekit.optimize import optimize

    folder = Path(out) / "jobs" / job["id"]
    folder.mkdir(parents=True, exist_ok=True)
    # what an earlier, lost attempt left half-done is not this attempt's
    for stale in ("optimized", "bundle"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    where = where_am_i()
    (folder / f"attempt-{attempt}.pid").write_text(f"{where['pid']}\n")
    started = time.time()
    record: dict[str, Any] = {
        "id": job["id"],
        "label": f"{Path(job['model']).name} / {job['profile']} / {job['config']['name']}",
        "model": job["model"],
        "model_sha256": job["model_sha256"],
        "profile": job["profile"],
        "config": job["config"],
        "attempt": attempt,
        "where": where,
        "started": started,
    }
    cfg = {k: v for k, v in job["config"].items() if k not in _NOT_OPTIMIZE}
    cfg.setdefault("threads", 1)  # one core per worker: the timed step gets exactly it
    try:
        res = optimize(
            job["model"],
            job["profile"],
            out=folder / "optimized",
            calib_data=job.get("calib_data"),
            eval_data=job.get("eval_data"),
            **cfg,
        )
        record.update(status="ok", error=None, report=str(res.report_path))
        record["metrics"] = _metrics(res.report)
        record["warnings"] = list(res.warnings)
        record["bundle"] = _bundle(job, res.model_path, folder, cfg["threads"], record)
        if job["config"].get("device"):
            _bench_on_device(job, folder, cfg["threads"], record)
    except EdgekitError as exc:
        record.update(status="failed", error=str(exc), report=None, bundle=None, metrics=None)
    except Exception as exc:  # a bug: recorded with its traceback, rerun by --resume
        record.update(status="error", error=f"{type(exc).__name__}: {exc}", report=None,
                      bundle=None, metrics=None, traceback=traceback.format_exc(limit=8))  # fmt: skip
    record["finished"] = time.time()
    record["elapsed_s"] = round(record["finished"] - started, 3)
    record["python"] = platform.python_version()
    return record


def _bench_on_device(
    job: dict[str, Any], folder: Path, threads: int, record: dict[str, Any]
) -> None:
    """Time the job's bundle on its SSH device; its median becomes the job's latency."""
    from edgekit.remote import DeviceError, remote_benchmark

    name = job["config"]["device"]
    if record["bundle"] is None:
        record.update(status="failed", error=f"no bundle to time on device {name}: "
                      + "; ".join(record["warnings"][-1:]))  # fmt: skip
        return
    try:
        rep = remote_benchmark(record["bundle"], name, devices_file=job.get("devices_file"),
                               threads=threads)  # fmt: skip
    except DeviceError as exc:
        record.update(status="error", error=str(exc))
        return
    path = rep.save(folder / "device-bench.json")
    d = rep.to_dict()
    env = d["environment"]
    record["device"] = {"name": name, "report": str(path), "remote": d["remote"],
                        "host": {k: env.get(k) for k in ("hostname", "arch", "cpu_model")}}  # fmt: skip
    metrics = record["metrics"]
    metrics["host_latency_ms"] = metrics.get("latency_ms")
    metrics["latency_ms"] = d["latency_ms"]["median"]  # on-device timings are the job's
    metrics["latency_on"] = name


def _bundle(
    job: dict[str, Any], model_path: Path, folder: Path, threads: int, record: dict[str, Any]
) -> str | None:
    """The job's deploy bundle of the optimized model; a bundle that cannot be made is a warning."""
    if not job.get("bundle", True):
        return None
    from edgekit.deploy import deploy

    try:
        b = deploy(model_path, job["profile"], folder / "bundle", measure=False, threads=threads,
                   precision=(record.get("metrics") or {}).get("precision"))  # fmt: skip
    except EdgekitError as exc:
        record["warnings"].append(f"bundle not written: {exc}")
        return None
    return str(b.path)
