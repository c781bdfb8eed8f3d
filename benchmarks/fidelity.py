"""Does `edgekit bench` agree with each runtime's own benchmark tool?

For every (model, runtime, threads) case this script alternates, in one run,
an `edgekit bench` measurement (A) and the reference tool (B): A B A B ...
Each measurement is a fresh process. The figure per side is the median of
its per-round medians; the ratio is edgekit / reference.

References:
  openvino     benchmark_app -api sync -hint none -nstreams 1 -nthreads N -infer_precision f32 -t T
  litert       litert-benchmark --model M --num_threads 1 (its JSON is rounded to 0.01 ms, so the
               tool's own module is run with that rounding switched off: same code path, same loop)
  onnxruntime  a minimal loop of session.run(None, feed) timed with perf_counter_ns in a fresh
               Python process (intra_op=N, inter_op=1, sequential), 1 s warm-up

Models built here (small CNN, MobileNetV2 .tflite) go to --build (a temp folder
by default), never into the repository; ../shared/models is read in place.

Usage:
  .venv/bin/python benchmarks/fidelity.py --time 10 --rounds 2 --out /tmp/fidelity
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"
BIN = Path(sys.executable).parent

ORT_LOOP = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import onnxruntime as ort
    path, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    feed = {inp.name: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
    pc = time.perf_counter_ns
    end = pc() + 1_000_000_000
    while pc() < end:
        sess.run(None, feed)
    times = []
    end = pc() + int(seconds * 1e9)
    while pc() < end:
        t0 = pc()
        sess.run(None, feed)
        times.append(pc() - t0)
    print(json.dumps({"median_ms": float(np.median(times)) / 1e6, "n": len(times)}))
    """
)

LITERT_TOOL = textwrap.dedent(
    """
    import sys
    from ai_edge_litert.tools import benchmark_litert_model as tool
    tool.round = lambda value, ndigits=None: value  # keep full precision in --result_json
    sys.argv = ["litert-benchmark"] + sys.argv[1:]
    tool.main()
    """
)


LITERT_BARE = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=sys.argv[1], num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    invoke, pc, n = it.invoke, time.perf_counter_ns, 300_000
    for _ in range(n // 10):
        invoke()
    times = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = pc()
        invoke()
        times[i] = pc() - t0
    clock = np.empty(n // 10, dtype=np.int64)
    for i in range(n // 10):
        t0 = pc()
        clock[i] = pc() - t0
    print(json.dumps({"invoke_us": float(np.median(times)) / 1e3,
                      "clock_us": float(np.median(clock)) / 1e3}))
    """
)


def bare_invoke_us(model: Path) -> dict:
    """Median of invoke() alone (no copies), timed per call like edgekit: the interpreter's cost."""
    cmd = [sys.executable, "-c", LITERT_BARE, str(model)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(text.strip().splitlines()[-1])


def build_models(folder: Path) -> dict[str, Path]:
    """The small CNN and MobileNetV2 .tflite files (built once, reused from `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"small_cnn": folder / "small_cnn.tflite", "mobilenet_v2": folder / "mobilenet_v2.tflite"}
    if all(p.exists() for p in out.values()):
        return out
    import tensorflow as tf

    keras = tf.keras
    cnn = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    mnv2 = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    for name, net in (("small_cnn", cnn), ("mobilenet_v2", mnv2)):
        data = tf.lite.TFLiteConverter.from_keras_model(net).convert()
        out[name].write_bytes(data)
    return out


def run_edgekit(model: Path, runtime: str, threads: int, seconds: float, tmp: Path) -> dict:
    out = tmp / "edgekit.json"
    cmd = [
        sys.executable, "-m", "edgekit", "bench", str(model), "--runtime", runtime,
        "--threads", str(threads), "--min-time", str(seconds), "--max-time", str(3 * seconds),
        "--warmup", "1s", "--quiet", "--out", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)
    rep = json.loads(out.read_text())
    load = rep["environment"]["load_avg"]
    return {
        "median_ms": rep["latency_ms"]["median"],
        "n": rep["latency_ms"]["n"],
        "ci": [rep["latency_ms"]["median_ci"]["low"], rep["latency_ms"]["median_ci"]["high"]],
        "stop_reason": rep["protocol"]["stop_reason"],
        "load_avg_1min": load[0] if load else None,
    }


def run_benchmark_app(model: Path, threads: int, seconds: float) -> dict:
    cmd = [
        shutil.which("benchmark_app") or str(BIN / "benchmark_app"), "-m", str(model), "-api", "sync", "-hint", "none",
        "-nstreams", "1", "-nthreads", str(threads), "-infer_precision", "f32",
        "-t", str(int(round(seconds))),
    ]  # fmt: skip
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    med = re.search(r"Median:\s+([\d.]+) ms", text)
    count = re.search(r"Count:\s+(\d+) iterations", text)
    if not med:
        raise RuntimeError("benchmark_app printed no median:\n" + text[-2000:])
    return {"median_ms": float(med.group(1)), "n": int(count.group(1)) if count else None}


def run_litert_tool(model: Path, threads: int, runs: int, tmp: Path) -> dict:
    out = tmp / "litert.json"
    cmd = [
        sys.executable, "-c", LITERT_TOOL, "--model", str(model), "--num_threads", str(threads),
        "--num_runs", str(runs), "--warmup_runs", str(max(10, runs // 10)),
        "--result_json", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    lat = json.loads(out.read_text())["latency"]
    return {"median_ms": lat["median_ms"], "n": lat["num_runs"]}


def run_ort_loop(model: Path, threads: int, seconds: float) -> dict:
    cmd = [sys.executable, "-c", ORT_LOOP, str(model), str(threads), str(seconds)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(text.strip().splitlines()[-1])


def cases(shared: Path, runtimes: set[str], build: Path) -> list[dict]:
    resnet, squeeze = shared / "light_resnet50.onnx", shared / "light_squeezenet.onnx"
    out = []
    if "openvino" in runtimes:
        for m in (resnet, squeeze):
            for t in (1, 2):
                out.append(
                    {"model": m, "runtime": "openvino", "threads": t, "ref": "benchmark_app"}
                )
    if "litert" in runtimes:
        models = build_models(build)
        for m in (models["small_cnn"], models["mobilenet_v2"], shared / "hello_world_float.tflite"):
            out.append({"model": m, "runtime": "litert", "threads": 1, "ref": "litert-benchmark"})
    if "onnxruntime" in runtimes:
        for m in (resnet, squeeze):
            out.append(
                {"model": m, "runtime": "onnxruntime", "threads": 1, "ref": "session.run loop"}
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--time", type=float, default=10.0, help="seconds of steady state per run")
    ap.add_argument("--rounds", type=int, default=2, help="A/B pairs per case")
    ap.add_argument("--build", type=Path, help="folder for built models (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "edgekit-fidelity")
    ap.add_argument("--only", help="run only cases whose model name contains this")
    ap.add_argument("--runtimes", default="openvino,litert,onnxruntime", help="comma list")
    ap.add_argument("--models", type=Path, default=SHARED, help="folder of the shared models")
    args = ap.parse_args()
    if not args.models.is_dir():
        print(f"missing {args.models}; nothing to measure", file=sys.stderr)
        return 2
    build = args.build or Path(tempfile.gettempdir()) / "edgekit-fidelity-models"
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fidelity-"))
    results = []
    try:
        for case in cases(args.models, set(args.runtimes.split(",")), build):
            if args.only and args.only not in case["model"].name:
                continue
            a, b = [], []
            for _ in range(args.rounds):
                a.append(
                    run_edgekit(case["model"], case["runtime"], case["threads"], args.time, tmp)
                )
                if case["ref"] == "benchmark_app":
                    b.append(run_benchmark_app(case["model"], case["threads"], args.time))
                elif case["ref"] == "litert-benchmark":
                    runs = int(min(2_000_000, max(50, args.time * 1e3 / a[-1]["median_ms"])))
                    b.append(run_litert_tool(case["model"], case["threads"], runs, tmp))
                else:
                    b.append(run_ort_loop(case["model"], case["threads"], args.time))
            ek = statistics.median(r["median_ms"] for r in a)
            ref = statistics.median(r["median_ms"] for r in b)
            # each A/B pair ran back to back: their ratio cancels slow drifts in machine load
            paired = statistics.median(
                x["median_ms"] / y["median_ms"] for x, y in zip(a, b, strict=True)
            )
            row = {
                "model": case["model"].name,
                "runtime": case["runtime"],
                "threads": case["threads"],
                "reference": case["ref"],
                "edgekit_ms": ek,
                "reference_ms": ref,
                "ratio": ek / ref,
                "paired_ratio": paired,
                "edgekit_rounds": a,
                "reference_rounds": b,
            }
            results.append(row)
            print(
                f"{row['model']:28s} {row['runtime']:11s} t={row['threads']} "
                f"edgekit {ek:9.4f} ms  {row['reference']:17s} {ref:9.4f} ms  ratio {ek / ref:.3f}"
                f"  paired {paired:.3f}",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| model | runtime | threads | edgekit median (ms) | reference | reference median (ms) "
          "| ratio | paired ratio | within ±10% |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ok = (
            "n/a (< 1 ms)"
            if r["reference_ms"] < 1
            else ("yes" if abs(r["ratio"] - 1) <= 0.10 else "NO")
        )
        print(
            f"| {r['model']} | {r['runtime']} | {r['threads']} | {r['edgekit_ms']:.4f} | "
            f"{r['reference']} | {r['reference_ms']:.4f} | {r['ratio']:.3f} | "
            f"{r['paired_ratio']:.3f} | {ok} |"
        )
    hello = [r for r in results if r["model"] == "hello_world_float.tflite"]
    if hello:
        h = hello[0]
        bare = bare_invoke_us(args.models / "hello_world_float.tflite")
        h["bare_invoke"] = bare
        print(
            f"\nhello_world_float.tflite median per call: edgekit {h['edgekit_ms'] * 1e3:.2f} µs "
            f"(set_tensor + invoke + get_tensor + clock); LiteRT's own tool "
            f"{h['reference_ms'] * 1e3:.2f} µs (CompiledModel.run_by_name + clock); "
            f"Interpreter.invoke() alone {bare['invoke_us']:.2f} µs (+ clock); clock pair "
            f"{bare['clock_us']:.3f} µs. edgekit's own per-call overhead (input copy, output "
            f"copy, loop): {h['edgekit_ms'] * 1e3 - bare['invoke_us']:+.2f} µs"
        )
    (args.out / "fidelity.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults: {args.out / 'fidelity.json'}")
    os.sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
