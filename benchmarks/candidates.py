"""Precision candidates (issue 12): fp32, bf16 (OpenVINO), plain int8 and what
`edgekit optimize --quantize auto` picks, per model and runtime, single thread, batch 1.

Models: keras.applications MobileNetV2, EfficientNetB0, MobileNetV3Large and
MobileNetV3Small with random weights (`weights=None`) at --size (224 by default), built
with `classifier_activation=None`: their outputs are logits, since a softmax over 1000
classes of a random-weight model is ~0.001 everywhere, which int8 rounds to zero and
which makes any parity figure meaningless. Calibration: the inputs `optimize` generates
when given no data (`edgekit.inputs.generate_inputs`, seed 0), for the plain int8 rows
and auto alike. Every variant is verified against fp32 on those inputs (cosine of the
logits and top-1 agreement); accuracy is unproven. For each runtime the variants (and
auto's chosen model, with the runtime options it chose) are timed in ONE interleaved
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


def build(key: str, size: int) -> object:
    """`key`'s keras.applications model, random weights (seed 0), logits out, its batch-norm
    statistics set from one batch of inputs in the range optimize generates.

    With `weights=None` every batch norm keeps mean 0 and variance 1, and the activations
    shrink layer after layer: MobileNetV2 at 64x64 outputs about 1e-10, which int8 rounds to
    0, so no int8 variant could be verified. Real statistics give O(1) logits."""
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, MODELS[key])(
        weights=None, input_shape=(size, size, 3), classifier_activation=None
    )
    x = np.random.default_rng(0).uniform(-1, 1, (16, size, size, 3)).astype(np.float32)
    _norm_stats(model, x)
    return model


def _norm_stats(model, x: np.ndarray) -> None:
    """Set every batch norm's moving statistics to those of the batch `x`."""
    import keras

    norms = [m for m in model.layers if isinstance(m, keras.layers.BatchNormalization)]
    kept = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # the moving statistics become this batch's
    model(x, training=True)
    for m, k in zip(norms, kept, strict=True):
        m.momentum = k


def digits_npz(size: int, cache: Path) -> Path:
    """scikit-learn's digits as `size`x`size`x3 images in [-1, 1] (bilinear upsampling of
    the 8x8 originals), split 80/20 with seed 0 into x, y and x_test, y_test."""
    path = cache / f"digits-{size}.npz"
    if path.exists():
        return path
    import tensorflow as tf
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    x = d.images[order].astype(np.float32)[..., None] / 16.0
    x = tf.image.resize(x, (size, size), method="bilinear").numpy()
    x = np.repeat(x, 3, axis=-1) * 2.0 - 1.0
    y = d.target[order].astype(np.int64)
    n = int(0.8 * len(y))
    cache.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.npz")
    np.savez(part, x=x[:n], y=y[:n], x_test=x[n:], y_test=y[n:])
    part.rename(path)
    return path


def trained(key: str, size: int, cache: Path, epochs: int = 2) -> tuple[object, Path]:
    """`key`'s keras.applications architecture (`weights=None`, 10 classes, logits out, fed
    [-1, 1]) trained `epochs` on `digits_npz`, and that
    npz. A random-weight model's 1000 logits are near-tied, so top-1 flips under any
    rounding and no accuracy budget means anything; a few epochs on digits give a model
    whose accuracy int8 can keep or lose. Cached in `cache` (training takes minutes)."""
    import keras

    data = digits_npz(size, cache)
    path = cache / f"{key}-{size}-digits.keras"
    if path.exists():
        return keras.models.load_model(path), data
    keras.utils.set_random_seed(0)
    # MobileNetV3's built-in scaling expects 0-255; off, it takes [-1, 1] like MobileNetV2.
    # (EfficientNet's cannot be switched off: it scales [-1, 1] down, and trains anyway.)
    extra = {"include_preprocessing": False} if key.startswith("mobilenetv3") else {}
    model = getattr(keras.applications, MODELS[key])(
        weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None,
        **extra,
    )  # fmt: skip
    with np.load(data) as z:
        x, y = z["x"], z["y"]
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=2)
    # Two epochs leave the moving statistics far from the weights' (test accuracy near
    # chance while training accuracy is high): set them from 256 training samples.
    _norm_stats(model, x[:256])
    part = path.with_suffix(".part.keras")
    model.save(part)
    part.rename(path)
    return model, data


def optimize_inputs(src: Path, count: int) -> np.ndarray:
    """The `count` inputs `optimize` calibrates on when given no data (the same call, the
    same seed), so that hand-made variants are calibrated exactly as auto's are."""
    from edgekit.inputs import generate_inputs
    from edgekit.model import load

    feeds = generate_inputs(load(src), count=max(count, 16), seed=0)[:count]
    return np.concatenate([next(iter(f.values())) for f in feeds]).astype(np.float32)


def parity(ref: Path, path: Path, x: np.ndarray, runtime: str, options: dict | None) -> dict:
    """Cosine of the logits and top-1 agreement of `path` against fp32 `ref` on `x`."""
    from edgekit.bench.interleaved import sample_feeds
    from edgekit.model import load
    from edgekit.verify import compare_outputs

    m = load(ref)
    feeds = sample_feeds(x, m.signature.inputs[0], 1)
    p = compare_outputs(m, path, feeds, src_runtime=runtime, dst_runtime=runtime,
                        dst_options=options)  # fmt: skip
    return {"cosine": round(float(p.cosine), 5), "top1_agreement": p.top1_agreement}


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
    from edgekit.bench.interleaved import measure_interleaved, ratios

    km = build(key, size)
    d = work / key
    d.mkdir(parents=True)
    src = d / "source.keras"
    km.save(src)
    calib = optimize_inputs(src, 32)
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
            check = None if n == "fp32" else parity(v["fp32"][0], v[n][0], calib[:16], rt,
                                                     v[n][1])  # fmt: skip
            rows.append({
                "parity_vs_fp32": check,
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
    load_start = os.getloadavg()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ek-bench-cand-") as tmp:
        for key in args.models.split(","):
            print(f"{key} ...", flush=True)
            rows += run_model(key, args.size, args.runtimes.split(","), args.rounds, Path(tmp),
                              args.max_float_layers)  # fmt: skip
    results = {"started_utc": started, "load_average_start": load_start,
               "load_average": os.getloadavg(), "cpu": cpu(),
               "threads": 1, "batch": 1, "rows": rows}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| model | runtime | variant | computed in | median ms | vs fp32 (95% CI) | "
          "cosine, top-1 vs fp32 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ci = r["speedup_ci"] or [None, None]
        p = r["parity_vs_fp32"] or {}
        print(f"| {r['model']} | {r['runtime']} | {r['variant']} | {r['computed_in'] or '-'} | "
              f"{r['median_ms']} | {r['speedup']}x ({ci[0]}-{ci[1]}) {r['verdict']} | "
              f"{p.get('cosine', '-')}, {p.get('top1_agreement', '-')} |")  # fmt: skip


if __name__ == "__main__":
    main()
