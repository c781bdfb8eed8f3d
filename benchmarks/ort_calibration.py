"""Which ONNX Runtime int8 settings keep a trained model's accuracy for x86-avx2? (issue 12)
One model of `auto_precision.py`'s cache, converted to ONNX as optimize does, quantized with
the x86-avx2 profile's settings (QDQ, uint8 activations, int8 per-channel weights in 7 bits:
reduce_range) and with each change of them below, each calibrated on the 32 samples optimize
calibrates on; each scored on the 360 held-out digits and all timed in ONE interleaved run
(1 thread, --rounds rounds) against fp32.

- "u8u8": uint8 weights, 8 bits: ONNX Runtime's other way around the saturation of
  VPMADDUBSW (AVX2 without VNNI), which reduce_range avoids;
- "u8s8, 8-bit weights": valid only on a CPU with VNNI (this one), not on the profile's target;
- "Percentile": the profile's settings with Percentile calibration instead of MinMax.

    .venv/bin/python benchmarks/ort_calibration.py --models mobilenetv3small mobilenetv3large
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.auto_precision import accuracy  # noqa: E402 - scored as the grid scores
from benchmarks.candidates import trained  # noqa: E402 - the same trained models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mobilenetv3small", "mobilenetv3large"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cache", default="build/bench-models")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()

    from edgekit.bench.interleaved import measure_interleaved, ratios
    from edgekit.model import load
    from edgekit.optimize.data import resolve_data
    from edgekit.optimize.flow import convert_fp32
    from edgekit.optimize.quantize import backend, quantize
    from edgekit.profiles import load_profile

    profile = backend("onnx").options_for(load_profile("x86-avx2"))
    settings = {
        "x86-avx2 profile (MinMax)": profile,
        "u8u8": replace(profile, weight_type="uint8", reduce_range=False),
        "u8s8, 8-bit weights (VNNI only)": replace(profile, reduce_range=False),
        "profile, Percentile calibration": replace(profile, calibrate_method="Percentile"),
    }
    print(f"start {time.strftime('%H:%M:%S', time.gmtime())} load {os.getloadavg()}")
    print("| model | settings | test accuracy | median ms | speedup vs fp32 (95% CI) |")
    print("|---|---|---|---|---|")
    for key in args.models:
        with tempfile.TemporaryDirectory(prefix="ek-bench-ortcal-") as tmp:
            d = Path(tmp)
            km, npz = trained(key, args.size, Path(args.cache))
            km.save(d / "model.keras")
            data = resolve_data(load(d / "model.keras"), f"npz:{npz}", f"npz:{npz}", 32, [], 0)
            paths = {"fp32": convert_fp32(km, "onnx", d / "onnx", [])}
            for i, (name, opts) in enumerate(settings.items()):
                paths[name] = quantize(paths["fp32"], "onnx", "int8", d / f"q{i}.onnx",
                                       data.calib, opts)  # fmt: skip
            lats = measure_interleaved(list(paths.values()), data.x_eval[:16],
                                       runtime="onnxruntime", threads=1, rounds=args.rounds,
                                       min_time=4.0)  # fmt: skip
            for (name, path), lat, r in zip(paths.items(), lats, ratios(lats), strict=True):
                acc = accuracy(path, None, data.x_eval, data.y_eval, "onnxruntime")
                print(f"| {key} | {name} | {acc:.2f}% | {lat['median']:.3f} | "
                      f"{r['speedup']:.2f}x ({r['speedup_low']:.2f}-{r['speedup_high']:.2f}) |",
                      flush=True)  # fmt: skip
    print(f"end {time.strftime('%H:%M:%S', time.gmtime())} load {os.getloadavg()}")


if __name__ == "__main__":
    main()
