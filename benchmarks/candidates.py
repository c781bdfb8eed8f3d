"""Precision candidates (issue 12): fp32, bf16 (OpenVINO), plain int8 and what
`edgekit optimize --quantize auto` picks, per model and runtime, single thread, batch 1.

Models: keras.applications MobileNetV2, EfficientNetB0, MobileNetV3Large and
MobileNetV3Small with random weights (`weights=None`) at --size (224 by default) and
random calibration data: latency only, accuracy unproven. For each runtime the variants
(and auto's chosen model, with the runtime options it chose) are timed in ONE interleaved
measurement (`edgekit.bench.interleaved`), and each ratio to fp32 comes from it with its
bootstrap interval.

    .venv/bin/python benchmarks/candidates.py [--models mobilenetv2,...] [--runtimes openvino,...]
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

MODELS = {
    "mobilenetv2": "MobileNetV2",
    "efficientnetb0": "EfficientNetB0",
    "mobilenetv3large": "MobileNetV3Large",
    "mobilenetv3small": "MobileNetV3Small",
}
# runtime -> (format, the profile whose `--quantize auto` is asked)
RUNTIMES = {"openvino": ("openvino", "x86-avx512"), "litert": ("tflite", "rpi4"),
            "onnxruntime": ("onnx", "x86-avx2")}  # fmt: skip


def variants(km, fmt: str, calib, work: Path) -> dict[str, tuple[Path, dict | None]]:
    """{variant: (path, runtime options)}: fp32, bf16 on OpenVINO, plain int8."""
    from edgekit.optimize.flow import convert_fp32
    from edgekit.optimize.quantize import quantize
    from edgekit.runtimes import get_runtime

    notes: list[str] = []
    if fmt == "tflite":
        fp32 = quantize(km, "tflite", "fp32", work / "fp32" / "m.tflite")
        int8 = quantize(km, "tflite", "int8", work / "int8" / "m.tflite", calib)
    else:
        onnx = convert_fp32(km, "onnx", work / "onnx", notes)
        fp32 = onnx if fmt == "onnx" else convert_fp32(onnx, "openvino", work / "ov", notes)
        name = "m.onnx" if fmt == "onnx" else "m.xml"
        int8 = quantize(fp32, fmt, "int8", work / "int8" / name, calib)
    out: dict[str, tuple[Path, dict | None]] = {"fp32": (Path(fp32), None)}
    if fmt == "openvino":
        out["bf16"] = (Path(fp32), get_runtime("openvino").precision_options("bf16"))
    out["int8"] = (Path(int8), None)
    for n in notes:
        print(f"    note: {n}", flush=True)
    return out


def auto_pick(src: Path, profile: str, out: Path, float_layers: int) -> tuple[Path, dict, dict]:
    """What `optimize --quantize auto` chose for `profile` (generated calibration inputs, as
    with no --calib-data): (model, runtime options, report)."""
    from edgekit.optimize import optimize

    res = optimize(src, profile, out=out, quantize="auto", threads=1, calib_samples=32,
                   max_float_layers=float_layers)  # fmt: skip
    o = res.report["optimized"]
    return res.model_path, o.get("runtime_options") or {}, res.report


def run_model(key: str, size: int, runtimes: list[str], rounds: int, work: Path,
              float_layers: int) -> list[dict]:  # fmt: skip
    import keras

    from edgekit.bench.interleaved import measure_interleaved, ratios

    keras.utils.set_random_seed(0)
    km = getattr(keras.applications, MODELS[key])(weights=None, input_shape=(size, size, 3))
    d = work / key
    d.mkdir(parents=True)
    src = d / "source.keras"
    km.save(src)
    rng = np.random.default_rng(0)
    calib = rng.uniform(0, 255, (32, size, size, 3)).astype(np.float32)
    rows = []
    for rt in runtimes:
        fmt, profile = RUNTIMES[rt]
        t0 = time.time()
        v = variants(km, fmt, calib, d / rt)
        path, opts, rep = auto_pick(src, profile, d / rt / "auto", float_layers)
        v[f"auto ({rep['optimized']['name']})"] = (path, opts or None)
        print(f"  {key}/{rt}: variants and auto made in {time.time() - t0:.0f} s", flush=True)
        names = list(v)
        lats = measure_interleaved([v[n][0] for n in names], calib[:16], runtime=rt, threads=1,
                                   options=[v[n][1] for n in names], rounds=rounds,
                                   min_time=2.0)  # fmt: skip
        for n, lat, r in zip(names, lats, ratios(lats), strict=True):
            ip = lat.get("inference_precision") or {}
            rows.append({
                "model": key, "size": size, "runtime": rt, "variant": n,
                "computed_in": ip.get("ran"), "median_ms": round(lat["median"], 4),
                "speedup": None if r is None else round(r["speedup"], 3),
                "speedup_ci": None if r is None else [round(r["speedup_low"], 3),
                                                      round(r["speedup_high"], 3)],
                "verdict": None if r is None else r["verdict"],
                "auto_meets_budget": rep["meets_budget"] if n.startswith("auto") else None,
            })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/candidates.json")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=4, help="harness runs per variant")
    ap.add_argument("--max-float-layers", type=int, default=6, help="optimize's recovery loop")
    args = ap.parse_args()

    from edgekit.devices import cpu

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ek-bench-cand-") as tmp:
        for key in args.models.split(","):
            print(f"{key} ...", flush=True)
            rows += run_model(key, args.size, args.runtimes.split(","), args.rounds, Path(tmp),
                              args.max_float_layers)  # fmt: skip
    results = {"started_utc": started, "load_average": os.getloadavg(), "cpu": cpu(),
               "threads": 1, "batch": 1, "rows": rows}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| model | runtime | variant | computed in | median ms | vs fp32 (95% CI) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ci = r["speedup_ci"] or [None, None]
        print(f"| {r['model']} | {r['runtime']} | {r['variant']} | {r['computed_in'] or '-'} | "
              f"{r['median_ms']} | {r['speedup']}x ({ci[0]}-{ci[1]}) {r['verdict']} |")  # fmt: skip


if __name__ == "__main__":
    main()
