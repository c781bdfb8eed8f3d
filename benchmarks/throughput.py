"""Does `edgekit bench --mode throughput` scale with concurrency on each runtime?

MobileNetV2 (random weights, 224x224; the .tflite built by `fidelity.build_models`, and
its ONNX from `edgekit.convert`) is measured with one inference thread per request at
concurrency 1 and 2, alternating C=1, C=2 in fresh processes for --rounds rounds. The
figure per side is the median of the per-round inferences/s; the scaling is C=2 / C=1
(2.0 is the ceiling on a 2-core machine).

    .venv/bin/python benchmarks/throughput.py [--rounds 3] [--out benchmarks/results/throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CASES = (("tflite", "litert"), ("onnx", "onnxruntime"), ("onnx", "openvino"))


def bench(model: Path, runtime: str, concurrency: int, seconds: float, out: Path) -> float:
    cmd = [
        sys.executable, "-m", "edgekit", "bench", str(model), "--runtime", runtime,
        "--mode", "throughput", "--concurrency", str(concurrency), "--threads", "1",
        "--min-time", str(seconds), "--quiet", "--out", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)
    return float(json.loads(out.read_text())["throughput"]["inferences_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time", type=float, default=5.0, help="seconds of steady state per run")
    ap.add_argument("--out", default="benchmarks/results/throughput.json")
    args = ap.parse_args()

    from benchmarks.fidelity import build_models
    from edgekit.convert import convert
    from edgekit.devices import cpu

    rows = []
    with tempfile.TemporaryDirectory(prefix="ek-bench-tp-") as tmp:
        work = Path(tmp)
        tflite = build_models(work)["mobilenet_v2"]
        onnx = convert(tflite, "onnx", work / "mobilenet_v2.onnx").model.path
        models = {"tflite": tflite, "onnx": onnx}
        for fmt, runtime in CASES:
            ips: dict[int, list[float]] = {1: [], 2: []}
            for r in range(args.rounds):
                for c in (1, 2) if r % 2 == 0 else (2, 1):
                    ips[c].append(bench(models[fmt], runtime, c, args.time, work / "r.json"))
            one, two = statistics.median(ips[1]), statistics.median(ips[2])
            rows.append({"runtime": runtime, "format": fmt, "per_round": ips,
                         "c1_ips": round(one, 1), "c2_ips": round(two, 1),
                         "scaling": round(two / one, 3)})  # fmt: skip
            print(f"{runtime}: C=1 {one:.1f}/s, C=2 {two:.1f}/s, scaling {two / one:.2f}x",
                  flush=True)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": cpu(), "model": "mobilenet_v2 224", "rows": rows},
                              indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
