"""OpenVINO inference precision: `edgekit bench` against `benchmark_app`, f32 and bf16.

On ../shared/models (SqueezeNet, ResNet-50), 1 thread, batch 1 (benchmark_app: -hint none -api sync -nstreams 1 -nthreads 1): for each
model the four settings (edgekit f32, edgekit bf16, benchmark_app f32, benchmark_app
bf16) are run round-robin in one interleaved measurement, every other round reversed;
each cell is the median over the rounds (edgekit: of all its samples; benchmark_app: of
its reported medians). The precision edgekit records is read back from the compiled model.

    .venv/bin/python benchmarks/precision.py [--out benchmarks/results/precision.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = ("light_squeezenet.onnx", "light_resnet50.onnx")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "models"
PRECISIONS = ("f32", "bf16")


def edgekit_run(model: Path, precision: str, seconds: float) -> dict:
    from edgekit.bench import benchmark
    from edgekit.runtimes import get_runtime

    rep = benchmark(model, runtime="openvino", threads=1, min_time=seconds, max_time=seconds * 3,
                    options=get_runtime("openvino").precision_options(precision)).to_dict()  # fmt: skip
    return {"samples_ms": [s / 1e6 for s in rep["samples_ns"]],
            "ran": rep["runtime"]["inference_precision"]}  # fmt: skip


def benchmark_app_run(model: Path, precision: str, seconds: float) -> dict:
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cmd = [tool, "-m", str(model), "-d", "CPU", "-hint", "none", "-api", "sync", "-nstreams", "1", "-nthreads", "1",
           "-infer_precision", precision, "-t", str(int(max(1, seconds)))]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    med = re.search(r"Median:\s+([\d.]+) ms", out)
    return {"median_ms": float(med.group(1)), "command": " ".join(cmd[1:])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/precision.json")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0, help="per setting per round")
    args = ap.parse_args()
    from edgekit.devices import cpu

    settings = [(tool, p) for tool in ("edgekit", "benchmark_app") for p in PRECISIONS]
    results: dict = {"cpu": cpu(), "threads": 1, "rounds": args.rounds, "models": {}}
    for name in MODELS:
        model = SHARED / name
        runs: dict = {s: [] for s in settings}
        for r in range(args.rounds):
            for s in settings if r % 2 == 0 else list(reversed(settings)):
                fn = edgekit_run if s[0] == "edgekit" else benchmark_app_run
                runs[s].append(fn(model, s[1], args.seconds))
        row = {}
        for p in PRECISIONS:
            ek = np.concatenate([x["samples_ms"] for x in runs[("edgekit", p)]])
            ba = float(np.median([x["median_ms"] for x in runs[("benchmark_app", p)]]))
            row[p] = {"edgekit_ms": round(float(np.median(ek)), 3), "benchmark_app_ms": round(ba, 3),
                      "ratio": round(float(np.median(ek)) / ba, 3),
                      "edgekit_ran": runs[("edgekit", p)][0]["ran"]["ran"],
                      "benchmark_app_command": runs[("benchmark_app", p)][0]["command"]}  # fmt: skip
        results["models"][name] = row
        for p, c in row.items():
            print(f"{name:24s} {p:5s} edgekit {c['edgekit_ms']:8.3f} ms (ran {c['edgekit_ran']})  "
                  f"benchmark_app {c['benchmark_app_ms']:8.3f} ms  ratio {c['ratio']:.3f}")  # fmt: skip
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
