"""Train every recipe on digits through the CLI and check the accuracy and time bars.

Each recipe is trained ``--repeats`` times with the same seed by ``edgekit train``
in a fresh process; we report the median wall time of the whole command (Python
start, TensorFlow import, data, training, outputs) and the test accuracy (the same
every time, which also checks reproducibility). Every trained model is then exported
to TFLite, ONNX and OpenVINO (fp32) and each export is scored by ``edgekit eval``
against its Keras model.

Usage: python benchmarks/train.py [--repeats 3] [--workdir out/bench-train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BARS = {"cnn": 0.97, "lstm": 0.94, "transformer": 0.94}
TIME_BAR_S = 60.0


def run_train(recipe: str, out: Path) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "edgekit",
        "train",
        "--recipe",
        recipe,
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--json",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def export(keras_path: Path) -> dict[str, Path]:
    import keras
    import openvino as ov
    import tensorflow as tf
    import tf2onnx

    model = keras.saving.load_model(keras_path, compile=False)
    out = keras_path.parent
    (out / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, output_path=str(out / "model.onnx"))
    ov.save_model(ov.convert_model(model), str(out / "model.xml"))
    return {
        "tflite": out / "model.tflite",
        "onnx": out / "model.onnx",
        "openvino": out / "model.xml",
    }


def run_eval(model: Path, reference: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "edgekit",
        "eval",
        str(model),
        "--dataset",
        "digits",
        "--reference",
        str(reference),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("out/bench-train"))
    ap.add_argument("--recipes", nargs="+", default=list(BARS))
    ap.add_argument("--json", type=Path, help="Also write the results here.")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()

    rows = []
    for recipe in args.recipes:
        walls, accs, train_s = [], [], []
        for i in range(args.repeats):
            wall, m = run_train(recipe, args.workdir / recipe)
            walls.append(wall)
            accs.append(m["test"]["accuracy"])
            train_s.append(m["train_time_s"])
            print(f"  {recipe} run {i + 1}: acc {accs[-1]:.4f} wall {wall:.1f} s", flush=True)
        rows.append(
            {
                "recipe": recipe,
                "test_accuracy": accs[-1],
                "test_samples": m["test"]["samples"],
                "reproducible": len(set(accs)) == 1,
                "wall_s_median": statistics.median(walls),
                "wall_s_all": [round(w, 1) for w in walls],
                "fit_s_median": statistics.median(train_s),
                "epochs": m["options"]["epochs"],
                "parameters": m["parameters"],
                "pass": accs[-1] >= BARS[recipe] and statistics.median(walls) < TIME_BAR_S,
            }
        )

    evals = []  # (recipe, format, eval result), Keras first for each recipe
    for recipe in args.recipes:
        keras_path = args.workdir / recipe / "model.keras"
        evals.append((recipe, "keras", run_eval(keras_path, keras_path)))
        for fmt, path in export(keras_path).items():
            evals.append((recipe, fmt, run_eval(path, keras_path)))

    print()
    print(
        f"{'recipe':12} {'test acc':>9} {'bar':>5} {'repro':>6} {'wall s (median)':>16} "
        f"{'fit s':>6} {'epochs':>6} {'params':>8}  pass"
    )
    for r in rows:
        print(
            f"{r['recipe']:12} {r['test_accuracy']:9.4f} {BARS[r['recipe']]:5.2f} "
            f"{str(r['reproducible']):>6} {r['wall_s_median']:16.1f} {r['fit_s_median']:6.1f} "
            f"{r['epochs']:6d} {r['parameters']:8d}  {'yes' if r['pass'] else 'NO'}"
        )
    print()
    print(
        f"{'model':24} {'runtime':12} {'accuracy':>9} {'errors':>7} {'vs keras':>9} "
        f"{'agree':>7} {'max|diff|':>10}"
    )
    keras_errors = {r: e["errors"] for r, f, e in evals if f == "keras"}
    for recipe, fmt, e in evals:
        ref = e["reference"]
        print(
            f"{recipe + ' as ' + fmt:24} {e['runtime']:12} {e['accuracy']:9.4f} "
            f"{e['errors']:7d} {e['errors'] - keras_errors[recipe]:+9d} "
            f"{ref['agreement']:7.4f} {ref['max_abs_diff']:10.2e}"
        )
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "train": rows,
        "eval": [{"recipe": r, "format": f, **e} for r, f, e in evals],
    }
    print(
        f"\nload average (1 min) before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = all(r["pass"] for r in rows) and all(
        abs(e["errors"] - keras_errors[r]) <= 1 for r, _, e in evals
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
