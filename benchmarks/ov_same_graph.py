"""Is auto's OpenVINO pick slower than the same precision made by hand, or is it the
measurement? (issue 12): one model of `auto_precision.py`'s cache, `edgekit optimize
--quantize auto` for x86-avx512 as that script runs it, then the script's own fp32 IR and
optimize's output, each at bf16, in ONE interleaved run of --rounds rounds; then each of
the two files compiled --compiles times at bf16 in one process and all those compiled
models timed round-robin (reversed every other round), to tell a property of a file from
one of a compilation.

    .venv/bin/python benchmarks/ov_same_graph.py --model mobilenetv3large
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.candidates import trained  # noqa: E402 - the same trained models


def compiles(paths: list[Path], x: np.ndarray, n: int, rounds: int = 8) -> None:
    """Median ms of each of `n` compilations of each file at bf16, 1 thread, timed
    round-robin (20 inferences per turn, every other round reversed)."""
    import openvino as ov

    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
           "PERFORMANCE_HINT": "LATENCY"}  # fmt: skip
    reqs = [(f"{k} #{i + 1}", core.compile_model(str(p), "CPU", cfg).create_infer_request())
            for i in range(n) for k, p in zip(("script's", "auto's"), paths, strict=True)]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name, _ in reqs}
    for r in range(rounds):
        for name, req in reqs if r % 2 == 0 else reqs[::-1]:
            for _ in range(20):
                t = time.perf_counter()
                req.infer([x[:1]])
                times[name].append(time.perf_counter() - t)
    for name, v in times.items():
        print(f"| {name} file, compilation | {1e3 * float(np.median(v)):.3f} ms |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenetv3large")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cache", default="build/bench-models")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--compiles", type=int, default=3)
    args = ap.parse_args()

    from edgekit.bench.interleaved import measure_interleaved, ratios
    from edgekit.optimize import optimize
    from edgekit.optimize.flow import convert_fp32
    from edgekit.runtimes import get_runtime

    km, npz = trained(args.model, args.size, Path(args.cache))
    data = f"npz:{npz}"
    with tempfile.TemporaryDirectory(prefix="ek-bench-ovsame-") as tmp:
        d = Path(tmp)
        km.save(d / "model.keras")
        res = optimize(d / "model.keras", "x86-avx512", out=d / "opt", quantize="auto",
                       calib_data=data, eval_data=data, calib_samples=32, threads=1,
                       max_float_layers=2)  # fmt: skip
        picked = res.report["optimized"]
        mine = convert_fp32(km, "openvino", d / "mine", [])
        bf16 = get_runtime("openvino").precision_options("bf16")
        with np.load(npz) as z:
            x = z["x_test"][:16]
        names = ["script's fp32", "script's fp32 at bf16", f"auto's pick ({picked['name']})"]
        print(f"start {time.strftime('%H:%M:%S', time.gmtime())} load {os.getloadavg()}")
        lats = measure_interleaved([mine, mine, res.model_path], x, runtime="openvino",
                                   threads=1, rounds=args.rounds, min_time=6.0,
                                   options=[None, bf16, picked.get("runtime_options")])  # fmt: skip
        for n, lat, r in zip(names, lats, ratios(lats), strict=True):
            ran = (lat["inference_precision"] or {}).get("ran")
            ci = (
                ""
                if r is None
                else f"{r['speedup']:.2f}x ({r['speedup_low']:.2f}-{r['speedup_high']:.2f})"
            )
            print(f"| {n} | {ran} | {lat['sha256'][:12]} | {lat['median']:.3f} | {ci or '1.00x'} |")
        compiles([Path(mine), Path(res.model_path)], x, args.compiles)
        print(f"end {time.strftime('%H:%M:%S', time.gmtime())} load {os.getloadavg()}")


if __name__ == "__main__":
    main()
