"""int8 where it pays (issue 12): fp32, bf16 (OpenVINO), plain int8, int8-where-it-pays,
what `--quantize auto` picks, and int8 made by hand with each raw tool, on LiteRT (rpi4),
ONNX Runtime (x86-avx2) and OpenVINO (x86-avx512), single thread, batch 1.

Models: MobileNetV2, EfficientNetB0, MobileNetV3Large, MobileNetV3Small
(`keras.applications` architectures, ``weights=None``, logits out, --size x --size input).
With --data digits (the default) each is trained --epochs here on scikit-learn's digits
upsampled to the input size (`candidates.trained`), and optimize is given that data:
calibration from its training part, accuracy on its 359 test samples, so the budget
(--max-drop, 1 point) is real accuracy. (A random-weight model's logits are near-tied: top-1
flips under any rounding, and a budget says nothing; --data generated measures those.)
Every variant is calibrated on the very samples optimize calibrates on
(`edgekit.optimize.data.resolve_data`), verified against fp32 (cosine of the logits, top-1
agreement) and scored on the test samples.

For each model and profile: `edgekit.optimize` runs first (--quantize auto) and gives its
pick and the op types its int8-where-it-pays candidate kept float; then fp32, bf16 on
OpenVINO, plain int8 (edgekit), int8 with those types float (the same toolchain
denylists), the pick (with the runtime options it chose) and the hand-made int8 are timed
in ONE interleaved `edgekit.bench` run (--rounds short runs each, every other round
reversed), and every ratio comes from it.

    .venv/bin/python benchmarks/auto_precision.py [--size 128] [--models mobilenetv3large]
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
from benchmarks.candidates import (  # noqa: E402 - the same models, inputs and checks
    MODELS,
    build,
    optimize_inputs,
    parity,
    trained,
)
from benchmarks.optimize import hand_int8  # noqa: E402 - the raw tools, as their docs show

PROFILES = {"rpi4": "tflite", "x86-avx2": "onnx", "x86-avx512": "openvino"}


def variants(km, rep: dict, pick: Path, calib: np.ndarray, prof: str, d: Path) -> dict:
    """{variant: (path, runtime options)} of one model in `prof`'s format, all made from the
    same Keras model; auto's pick keeps the runtime options optimize chose (bf16 is an
    option). "int8" is edgekit's quantizer with the profile's settings (what `--quantize
    int8` makes); where those differ from the backend's defaults for this machine, the
    defaults are a row of their own."""
    from dataclasses import replace

    from edgekit.optimize.flow import convert_fp32
    from edgekit.optimize.quantize import backend, quantize
    from edgekit.profiles import load_profile
    from edgekit.runtimes import get_runtime

    fmt = PROFILES[prof]

    notes: list[str] = []
    onnx_fp32 = convert_fp32(km, "onnx", d / "onnx", notes)
    if fmt == "tflite":
        src, fp32 = km, quantize(km, "tflite", "fp32", d / "fp32.tflite")
    elif fmt == "onnx":
        src = fp32 = onnx_fp32
    else:
        src = fp32 = convert_fp32(km, "openvino", d / "ov", notes)
    suffix = fp32.suffix
    out = {"fp32": (fp32, None)}
    if fmt == "openvino":
        out["bf16"] = (fp32, get_runtime("openvino").precision_options("bf16"))
    settings = backend(fmt).options_for(load_profile(prof))
    out["int8"] = (quantize(src, fmt, "int8", d / f"int8{suffix}", calib, settings), None)
    if settings != backend(fmt).Options():
        host = quantize(src, fmt, "int8", d / f"int8-host{suffix}", calib)
        out["int8, this machine's defaults"] = (host, None)
    kept = (rep.get("int8_where_it_pays") or {}).get("kept_float") or []
    if kept:
        opts = replace(backend(fmt).Options(), keep_float_types=tuple(kept))
        sel = quantize(src, fmt, "int8", d / f"sel{suffix}", calib, opts)
        out["int8-where-it-pays"] = (sel, None)
    out["auto's pick"] = (pick, rep["optimized"].get("runtime_options") or None)
    out["int8 by hand"] = (hand_int8(km, onnx_fp32, calib, d / "hand")[fmt], None)
    return out


def measure(paths: dict, x: np.ndarray, runtime: str, rounds: int) -> list[dict]:
    from edgekit.bench.interleaved import measure_interleaved, ratios

    names = list(paths)
    lats = measure_interleaved([paths[n][0] for n in names], x, runtime=runtime, threads=1,
                               options=[paths[n][1] for n in names], rounds=rounds,
                               min_time=2.0)  # fmt: skip
    rows = []
    for n, lat, r in zip(names, lats, ratios(lats), strict=True):
        check = None if n == "fp32" else parity(paths["fp32"][0], paths[n][0], x, runtime,
                                                 paths[n][1])  # fmt: skip
        rows.append({
            "variant": n, "median_ms": round(float(lat["median"]), 4),
            "computed_in": (lat.get("inference_precision") or {}).get("ran"),
            # speedup: fp32 median / this median, with its interval, from the same run
            "speedup": None if r is None else round(r["speedup"], 4),
            "ci": None if r is None else [round(r["speedup_low"], 4), round(r["speedup_high"], 4)],
            "verdict": None if r is None else r["verdict"],
            "cosine": None if check is None else check["cosine"],
            "top1_agreement": None if check is None else check["top1_agreement"],
        })  # fmt: skip
    return rows


def accuracy(path: Path, options: dict | None, x: np.ndarray, y: np.ndarray, rt: str) -> float:
    """Top-1 accuracy (%) of `path` on `x`, one sample at a time, as the variants are timed."""
    from edgekit.bench.interleaved import sample_feeds
    from edgekit.model import load
    from edgekit.runtimes import open_session

    spec = load(path).signature.inputs[0]
    with open_session(path, rt, threads=1, options=options) as session:
        scores = [next(iter(session.run(f).values())) for f in sample_feeds(x, spec, 1)]
    return 100.0 * float(np.mean(np.argmax(np.concatenate(scores), axis=-1) == y))


def prepare(key: str, args: argparse.Namespace, d: Path) -> tuple[object, Path, dict]:
    """The Keras model, its saved file and optimize's data arguments, for --data."""
    if args.data == "digits":
        km, npz = trained(key, args.size, Path(args.cache), args.epochs)
        data = {"calib_data": f"npz:{npz}", "eval_data": f"npz:{npz}"}
    else:
        km, data = build(key, args.size), {}
    src = d / "model.keras"
    src.parent.mkdir(parents=True)
    km.save(src)
    return km, src, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/auto_precision.json")
    ap.add_argument("--size", type=int, default=128, help="input height and width")
    ap.add_argument("--rounds", type=int, default=3, help="harness runs per variant")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--profiles", nargs="*", default=list(PROFILES), choices=list(PROFILES))
    ap.add_argument("--data", choices=("digits", "generated"), default="digits",
                    help="digits: each model trained --epochs on upsampled digits, optimize "
                         "given that data; generated: random weights, generated inputs")  # fmt: skip
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cache", default="build/bench-models", help="trained models and data")
    ap.add_argument("--max-drop", type=float, default=1.0, help="optimize's accuracy budget")
    ap.add_argument("--max-float-layers", type=int, default=2, help="optimize's recovery loop")
    ap.add_argument("--calib", type=int, default=32)
    args = ap.parse_args()

    from edgekit.devices import cpu
    from edgekit.model import load
    from edgekit.optimize import optimize
    from edgekit.optimize.data import resolve_data

    out = Path(args.out)
    results: dict = {"cpu": cpu()["model"], "size": args.size, "threads": 1, "data": args.data,
                     "rows": []}  # fmt: skip
    if out.exists():  # resumable: a long run killed half-way keeps what it measured
        results = json.loads(out.read_text())
    done = {(r["model"], r["profile"]) for r in results["rows"]}
    with tempfile.TemporaryDirectory(prefix="ek-bench-auto-") as tmp:
        for key in args.models:
            if all((key, p) in done for p in args.profiles):
                continue
            km, src, data = prepare(key, args, Path(tmp) / key)
            if data:  # exactly the samples optimize calibrates and evaluates on
                d = resolve_data(load(src), data["calib_data"], data["eval_data"], args.calib,
                                 [], seed=0)  # fmt: skip
                calib, x_eval, y_eval = d.calib, d.x_eval, d.y_eval
            else:
                calib = x_eval = optimize_inputs(src, args.calib)
                y_eval = None
            for prof in args.profiles:
                if (key, prof) in done:
                    continue
                t0 = time.time()
                print(f"{key} on {prof}: edgekit optimize --quantize auto ...", flush=True)
                res = optimize(src, prof, out=Path(tmp) / key / prof, quantize="auto",
                               calib_samples=args.calib, threads=1, **data,
                               max_accuracy_drop=args.max_drop,
                               max_float_layers=args.max_float_layers)  # fmt: skip
                rep = res.report
                paths = variants(
                    km, rep, res.model_path, calib, prof, Path(tmp) / key / f"v-{prof}"
                )
                rt = rep["measurement"]["runtime"]
                rows = measure(paths, x_eval[:16], rt, args.rounds)
                if y_eval is not None:
                    for row in rows:
                        path, opts = paths[row["variant"]]
                        row["accuracy"] = round(accuracy(path, opts, x_eval, y_eval, rt), 2)
                results["rows"].append({
                    "model": key, "profile": prof, "runtime": rt, "variants": rows,
                    "auto_chose": rep["optimized"]["name"], "meets_budget": rep["meets_budget"],
                    "where_it_pays": rep.get("int8_where_it_pays"),
                    "optimize_candidates": [
                        {k: c[k] for k in ("name", "kept_float", "accuracy_drop", "error")}
                        | {"vs_baseline": (c["vs_baseline"] or {}).get("latency_ratio")}
                        for c in rep["candidates"]
                    ],
                    "elapsed_s": round(time.time() - t0, 1),
                    "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
                    "load_average_end": os.getloadavg(),
                })  # fmt: skip
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=2) + "\n")
                print_rows(results["rows"][-1], flush=True)


def print_rows(r: dict, flush: bool = False) -> None:
    """One model x profile as markdown rows."""
    for v in r["variants"]:
        ci = "" if not v["ci"] else f" ({v['ci'][0]:.2f}-{v['ci'][1]:.2f})"
        ratio = "-" if v["speedup"] is None else f"{v['speedup']:.2f}x{ci}"
        name = v["variant"] + (f" = {r['auto_chose']}" if v["variant"] == "auto's pick" else "")
        print(f"| {r['model']} | {r['runtime']} | {name} | {v['median_ms']:.3f} | {ratio} | "
              f"{v['cosine'] if v['cosine'] is not None else '-'} | "
              f"{v.get('top1_agreement', '-')} | {v.get('accuracy', '-')} |",
              flush=flush)  # fmt: skip
    kept = (r["where_it_pays"] or {}).get("why") or [(r["where_it_pays"] or {}).get("note")]
    print(f"|  |  | kept float: {'; '.join(str(k) for k in kept)} |  |  |  |", flush=flush)


if __name__ == "__main__":
    main()
