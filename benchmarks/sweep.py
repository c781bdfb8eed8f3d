"""Sweep throughput and timing fidelity on Dask, and the overhead of a remote (SSH) bench.

1. Throughput: a grid of 16 small jobs (4 tiny ONNX models x x86-avx2, x86-avx512 x fp32,
   int8; each a real optimize + deploy) on a local cluster of one worker, then of two
   workers: wall time and jobs per minute.
2. Fidelity: the same benchmark (edgekit.bench, 1 thread, fixed time) run outside any
   sweep (this process, pinned to one core, nothing else of ours running), then as tasks
   of the two-worker sweep while the other worker builds: the medians must agree within
   +-5%, since every timed step holds its worker's `bench` resource and its own core.
3. Remote overhead: one bundle timed by its own `run.py --bench` run here, and through
   the loopback SSH device (tests/sshd.py starts sshd on 127.0.0.1; the device runs the
   same run.py --bench), interleaved with `edgekit bench` on the same bundle; push,
   fingerprint, connect and round-trip times are reported apart from the samples.

Usage: python benchmarks/sweep.py [--json results.json] [--repeats 3] [--skip-grid] [--skip-remote]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import tiny_onnx  # noqa: E402

BENCH_SECONDS = 3.0


def bench_median(model: str) -> float:
    """One fixed-length edgekit benchmark on 1 thread; its median in ms (runs on a worker too)."""
    from edgekit.bench import benchmark

    rep = benchmark(model, threads=1, warmup=50, min_runs=1, min_time=BENCH_SECONDS,
                    max_time=BENCH_SECONDS)  # fmt: skip
    return float(rep.latency_ms["median"])


def grid(folder: Path) -> Any:
    from edgekit.sweep import load_sweep

    for i, (width, layers) in enumerate([(16, 2), (32, 2), (48, 3), (64, 3)]):
        tiny_onnx(folder / f"m{i}.onnx", width=width, layers=layers)
    text = (
        'models = ["m0.onnx", "m1.onnx", "m2.onnx", "m3.onnx"]\nprofiles = ["x86-avx2", "x86-avx512"]\n'
        '[[configs]]\nname = "fp32"\nquantize = "none"\n[[configs]]\nname = "int8"\nquantize = "int8"\n'
    )
    (folder / "grid.toml").write_text(text)
    return load_sweep(folder / "grid.toml")


def _run_into(results: list[Any], sweep: Any, out: Path, engine: Any) -> None:
    from edgekit.sweep import run_sweep

    results.append(run_sweep(sweep, out, engine=engine))


def throughput_and_fidelity(tmp: Path, repeats: int) -> dict[str, Any]:
    from edgekit.sweep import DaskEngine

    sweep = grid(tmp)
    probe = str(tiny_onnx(tmp / "probe.onnx", width=512, layers=8))
    out: dict[str, Any] = {"jobs": len(sweep.jobs)}

    # outside: this process alone on one core
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    outside = [bench_median(probe) for _ in range(repeats)]
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    out["outside_ms"] = outside

    for workers in (1, 2):
        with DaskEngine(workers=workers) as eng:
            eng.client.submit(lambda: 0, key=f"warm-{workers}").result()
            inside: list[Any] = []
            started = time.monotonic()
            runner = threading.Thread(
                target=_run_into, args=(inside, sweep, tmp / f"out{workers}", eng)
            )
            runner.start()
            futs = []
            if workers == 2:  # timed steps submitted while the sweep builds on the other worker
                for i in range(repeats):
                    time.sleep(8)
                    futs.append(eng.submit(bench_median, probe, key=f"probe-{i}"))
            runner.join()
            wall = time.monotonic() - started
            res = inside[0]
            out[f"workers_{workers}"] = {
                "wall_s": round(wall, 1),
                "jobs_per_min": round(len(sweep.jobs) / wall * 60, 2),
                "counts": res.summary["counts"],
                "job_elapsed_median_s": statistics.median(
                    r["elapsed_s"] for r in res.summary["jobs"]
                ),
            }
            if futs:
                out["inside_ms"] = [f.result() for f in futs]
    out["speedup"] = round(out["workers_1"]["wall_s"] / out["workers_2"]["wall_s"], 2)
    out["inside_over_outside"] = round(
        statistics.median(out["inside_ms"]) / statistics.median(out["outside_ms"]), 4
    )
    return out


def remote_overhead(tmp: Path, repeats: int, runs: int) -> dict[str, Any]:
    from edgekit.bench import benchmark
    from edgekit.deploy import deploy
    from edgekit.remote import remote_benchmark
    from tests.sshd import SSHDUnavailable, devices_toml, loopback_sshd

    model = tiny_onnx(tmp / "remote.onnx", width=512, layers=8)
    bundle = deploy(model, "x86-avx2", tmp / "bundle", measure=False, threads=1).path
    try:
        with loopback_sshd(tmp) as facts:
            devices = devices_toml(tmp / "devices.toml", facts, facts["host_key"])
            local, remote, harness, extra = [], [], [], []
            for _ in range(repeats):
                # the bundle's own runner here, as the device runs it (run.py --bench)
                p = subprocess.run([sys.executable, str(bundle / "run.py"), "--bench", "--json",
                                    "--runs", str(runs), "--warmup", "50", "--threads", "1"],
                                   capture_output=True, text=True, check=True)  # fmt: skip
                local.append(json.loads(p.stdout)["latency_ms"]["median"])
                harness.append(benchmark(bundle, threads=1, warmup=50, min_runs=runs,
                                         min_time=0).latency_ms["median"])  # fmt: skip
                rep = remote_benchmark(
                    bundle, "loop", devices_file=devices, runs=runs, warmup=50, threads=1
                )
                remote.append(rep.latency_ms["median"])
                extra.append(rep["remote"])
    except SSHDUnavailable as exc:
        return {"skipped": str(exc)}
    return {
        "runs": runs,
        "local_ms": local,
        "remote_ms": remote,
        "edgekit_bench_ms": harness,
        "remote_over_local": round(statistics.median(remote) / statistics.median(local), 4),
        "run_py_over_edgekit_bench": round(
            statistics.median(local) / statistics.median(harness), 4
        ),
        "first_push_ms": round(extra[0]["push_ms"], 1),
        "later_push_check_ms": round(statistics.median(e["push_ms"] for e in extra[1:]), 1)
        if repeats > 1
        else None,
        "fingerprint_ms": round(statistics.median(e["fingerprint_ms"] for e in extra), 1),
        "connect_ms": round(statistics.median(e["connect_ms"] for e in extra), 1),
        "run_round_trip_ms": round(statistics.median(e["run_round_trip_ms"] for e in extra), 1),
        "samples_sum_ms": round(runs * statistics.median(remote), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--remote-runs", type=int, default=2000)
    ap.add_argument("--skip-grid", action="store_true")
    ap.add_argument("--skip-remote", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {"when_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                               "load_avg_start": os.getloadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-sweep-") as tmp:
        if not args.skip_grid:
            (Path(tmp) / "grid").mkdir()
            results["sweep"] = throughput_and_fidelity(Path(tmp) / "grid", args.repeats)
        if not args.skip_remote:
            (Path(tmp) / "remote").mkdir()
            results["remote"] = remote_overhead(
                Path(tmp) / "remote", args.repeats, args.remote_runs
            )
    results["load_avg_end"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
