"""How many OpenVINO compilations does one interleaved measurement need for a stable choice?
(issue 12): `benchmarks/ov_same_graph.py` found one compilation of a graph running up to 19%
slower than another of the same graph, so a ratio from a run that compiles each model twice
follows whichever compilations it drew. This script takes one model of `auto_precision.py`'s
cache, its fp32 IR computed in bf16 and edgekit's int8 IR (the two candidates auto chose
between by chance), and repeats `edgekit.bench.interleaved.measure_interleaved` --repeats
times at each of the --rounds settings (every round loads, so compiles, each model afresh;
the same --min-time per model in all), the settings alternating so that they share the
machine's drift. Printed: each setting's int8-over-bf16 speedups, their spread, and how
often int8 came out faster.

    .venv/bin/python benchmarks/ov_compilations.py --model mobilenetv3large --rounds 2 6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.candidates import trained  # noqa: E402 - the same trained models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenetv3large")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cache", default="build/bench-models")
    ap.add_argument("--rounds", type=int, nargs="+", default=[2, 6])
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per model per run")
    ap.add_argument("--json", default=None, help="write the speedups here")
    args = ap.parse_args()

    from edgekit.bench.interleaved import measure_interleaved, ratios
    from edgekit.model import load
    from edgekit.optimize.data import resolve_data
    from edgekit.optimize.flow import convert_fp32
    from edgekit.optimize.quantize import quantize
    from edgekit.runtimes import get_runtime

    km, npz = trained(args.model, args.size, Path(args.cache))
    out: dict = {"model": args.model, "min_time": args.min_time, "start": time.time(),
                 "load_start": os.getloadavg(), "speedups": {str(r): [] for r in args.rounds}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ek-bench-ovcomp-") as tmp:
        d = Path(tmp)
        km.save(d / "model.keras")
        data = resolve_data(load(d / "model.keras"), f"npz:{npz}", f"npz:{npz}", 32, [], seed=0)
        fp32 = convert_fp32(km, "openvino", d / "ov", [])
        int8 = quantize(fp32, "openvino", "int8", d / "int8.xml", data.calib)
        bf16 = get_runtime("openvino").precision_options("bf16")
        x = data.x_eval[:16]
        print(f"start {time.strftime('%H:%M:%S', time.gmtime())} load {os.getloadavg()}")
        for rep in range(args.repeats):
            settings = args.rounds if rep % 2 == 0 else args.rounds[::-1]
            for rounds in settings:
                lats = measure_interleaved([fp32, int8], x, runtime="openvino", threads=1,
                                           options=[bf16, None], rounds=rounds,
                                           min_time=args.min_time)  # fmt: skip
                s = ratios(lats)[1]["speedup"]  # int8 against bf16, from this run
                out["speedups"][str(rounds)].append(round(s, 4))
                print(f"repeat {rep + 1}, {rounds} compilations: int8 {s:.3f}x bf16", flush=True)
    out["end"], out["load_end"] = time.time(), os.getloadavg()
    print("| compilations per model | speedups (int8 / bf16) | spread | int8 faster |")
    print("|---|---|---|---|")
    for rounds, v in out["speedups"].items():
        a = np.asarray(v)
        print(f"| {rounds} | {', '.join(f'{s:.2f}' for s in v)} | {a.min():.2f}-{a.max():.2f} "
              f"(sd {a.std(ddof=1):.3f}) | {int((a > 1).sum())} of {len(a)} |")  # fmt: skip
    print(f"end {time.strftime('%H:%M:%S', time.gmtime())} load {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
