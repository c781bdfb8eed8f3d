"""Optimize figures: fp32, 50% structured pruning, int8 and pruned+int8 on LiteRT, ONNX
Runtime and OpenVINO, single thread, batch 1.

Models: the reference CNN trained on digits (`edgekit.train`, accuracy on the digits
test split) and MobileNetV2 (random weights, 224x224, random calibration: latency
and size only). Within each model and runtime every variant is timed interleaved
(round-robin) and the medians and ratios come from that one run.

    .venv/bin/python benchmarks/optimize.py [--out benchmarks/results/optimize.json]
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

RUNTIMES = {"tflite": "litert", "onnx": "onnxruntime", "openvino": "openvino"}
TARGETS = {"litert": 2.25, "openvino": 1.51, "onnxruntime": 1.32}  # MobileNetV2 int8 speedup


def build_variants(km, pruned, calib, work: Path, tag: str) -> dict:
    """{fmt: {variant: path}} for fp32, pruned fp32, int8, pruned int8."""
    from edgekit.optimize import QuantOptions
    from edgekit.optimize import _tools as T
    from edgekit.optimize.quant_onnx import quantize_onnx
    from edgekit.optimize.quant_openvino import quantize_openvino
    from edgekit.optimize.quant_tflite import quantize_tflite

    out: dict[str, dict[str, Path]] = {f: {} for f in RUNTIMES}
    for name, model in (("fp32", km), ("pruned", pruned)):
        if model is None:
            continue
        d = work / tag / name
        t0 = time.time()
        out["tflite"][name] = quantize_tflite(model, d / "m.tflite", "fp32")
        q = "int8" if name == "fp32" else "pruned+int8"
        out["tflite"][q] = quantize_tflite(model, d / "m8.tflite", "int8", calib)
        onnx_path = T.keras_to_onnx(model, d / "m.onnx")
        out["onnx"][name] = onnx_path
        out["onnx"][q] = quantize_onnx(onnx_path, d / "m8.onnx", "int8", calib)
        if name == "fp32":  # the other signedness, for the record (see quant_onnx.cpu_types)
            out["onnx"]["int8 S8S8"] = quantize_onnx(
                onnx_path, d / "m8s.onnx", "int8", calib, QuantOptions(activation_type="int8")
            )
        xml = T.onnx_to_openvino(onnx_path, d / "ov" / "m.xml")
        out["openvino"][name] = xml
        out["openvino"][q] = quantize_openvino(xml, d / "ov8" / "m.xml", "int8", calib)
        print(f"  {tag}/{name}: converted and quantized in {time.time() - t0:.0f} s", flush=True)
    return out


def measure(variants: dict, x_eval, y_eval, rounds: int) -> list[dict]:
    from edgekit.optimize import _tools as T

    rows = []
    for fmt, paths in variants.items():
        rt = RUNTIMES[fmt]
        names = list(paths)
        lat = T.time_models([paths[n] for n in names], x_eval[:1], runtime=rt, threads=1,
                            rounds=rounds, per_round=5, budget_s=60)  # fmt: skip
        ref = None
        for n, t in zip(names, lat, strict=True):
            out = T.predict(paths[n], x_eval, runtime=rt) if y_eval is not None else None
            if n == "fp32":
                ref = out
            rows.append({
                "runtime": rt, "format": fmt, "variant": n,
                "size_bytes": T.size_bytes(paths[n]),
                "latency_ms": round(t, 4),
                "accuracy": None if out is None else round(T.accuracy(out, y_eval), 4),
                "agreement": None if out is None or ref is None
                else round(T.parity(ref, out).top1_agreement, 4),
            })  # fmt: skip
        base = next(r for r in rows if r["runtime"] == rt and r["variant"] == "fp32")
        for r in rows:
            if r["runtime"] == rt:
                r["speedup"] = round(base["latency_ms"] / r["latency_ms"], 3)
                r["size_ratio"] = round(r["size_bytes"] / base["size_bytes"], 3)
                if r["accuracy"] is not None:
                    r["accuracy_drop_pts"] = round(100 * (base["accuracy"] - r["accuracy"]), 2)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/optimize.json")
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--skip-mobilenet", action="store_true")
    args = ap.parse_args()

    import keras

    from edgekit.data import Preprocess, load_dataset
    from edgekit.devices import cpu
    from edgekit.optimize.prune_structured import prune_structured
    from edgekit.train import train

    results: dict = {"cpu": cpu(), "threads": 1, "batch": 1, "models": {}}
    with tempfile.TemporaryDirectory(prefix="ek-bench-opt-") as tmp:
        work = Path(tmp)
        print("training the reference CNN on digits (edgekit.train) ...", flush=True)
        run = train("cnn", "digits", work / "cnn", progress=False)
        km = keras.saving.load_model(run.model_path)
        ds = load_dataset("digits", Preprocess.load(work / "cnn" / "preprocess.json"))
        pr = prune_structured(km, 0.5, ds.x_train, ds.y_train, validation=(ds.x_val, ds.y_val))
        calib = ds.x_train[np.random.default_rng(0).permutation(len(ds.x_train))[:200]]
        print(f"  params {pr.params_before} -> {pr.params_after}", flush=True)
        v = build_variants(km, pr.model, calib, work, "cnn")
        results["models"]["cnn"] = {
            "params": [pr.params_before, pr.params_after],
            "rows": measure(v, ds.x_test, ds.y_test, args.rounds),
        }
        if not args.skip_mobilenet:
            print("MobileNetV2 (random weights) ...", flush=True)
            keras.utils.set_random_seed(0)
            mn = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
            rng = np.random.default_rng(0)
            calib = rng.uniform(-1, 1, (32, 224, 224, 3)).astype(np.float32)
            v = build_variants(mn, None, calib, work, "mobilenetv2")
            results["models"]["mobilenetv2"] = {
                "params": [int(mn.count_params())],
                "structured_pruning": "not run: MobileNetV2 has residual branches and edgekit's "
                "structured pruning follows chains of layers only",
                "rows": measure(v, calib[:1], None, args.rounds),
            }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(results: dict) -> None:
    print(
        "\n| model | runtime | variant | size | ratio | accuracy | drop (pts) | median ms | speedup |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model, m in results["models"].items():
        for r in m["rows"]:
            acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
            drop = "-" if r.get("accuracy_drop_pts") is None else f"{r['accuracy_drop_pts']:.2f}"
            print(f"| {model} | {r['runtime']} | {r['variant']} | {r['size_bytes'] / 1024:.0f} KiB"
                  f" | {r['size_ratio']:.2f}x | {acc} | {drop} | {r['latency_ms']:.3f} |"
                  f" {r['speedup']:.2f}x |")  # fmt: skip
    mn = results["models"].get("mobilenetv2")
    if mn:
        for rt, target in TARGETS.items():
            r = next(x for x in mn["rows"] if x["runtime"] == rt and x["variant"] == "int8")
            verdict = "meets" if r["speedup"] >= target else "MISSES"
            print(f"MobileNetV2 int8 speedup on {rt}: {r['speedup']:.2f}x "
                  f"(target {target}x: {verdict})")  # fmt: skip
        fastest = min(mn["rows"], key=lambda r: r["latency_ms"])
        print(f"fastest MobileNetV2: {fastest['runtime']} {fastest['variant']} "
              f"{fastest['latency_ms']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
