"""Bench an ONNX model on ONNX Runtime's GPU providers against its CPU, through edgekit's harness.

Cases: CPU fp32, CUDA fp32, CUDA fp16 (the model converted with
onnxconverter_common's float16 when importable, else edgekit's own cast
rewrite below), TensorRT fp32 and fp16 when the TensorRT provider loads.
Every case runs in its own try/except: a provider that fails is printed with
its reason and the others still run. Needs onnxruntime-gpu for the GPU cases.

Device synchronization: sessions are fed host (numpy) arrays, so each timed
`session.run` includes the host-to-device copy, the kernels and the
device-to-host copy of the outputs, and returns only when the device is done
(stated in each report's protocol.timed_region).

Usage:
  python benchmarks/gpu.py ../shared/models/light_resnet50.onnx --out gpu-results [--time 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def to_fp16(src: Path, dst: Path) -> str:
    """Write an fp16 copy of `src` (fp32 inputs and outputs kept); returns the method used."""
    import onnx

    model = onnx.load(str(src))
    try:
        from onnxconverter_common import float16

        converted = float16.convert_float_to_float16(model, keep_io_types=True)
        onnx.save(converted, str(dst))
        return "onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)"
    except ImportError:
        pass
    onnx.save(_cast_rewrite(model), str(dst))
    return "edgekit cast rewrite (initializers, constants and Casts to fp16; fp32 I/O via Cast)"


def _cast_rewrite(model: object) -> object:
    """fp16 graph with fp32 I/O, using onnx alone: the fallback without onnxconverter_common."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph  # type: ignore[attr-defined]
    f32, f16 = TensorProto.FLOAT, TensorProto.FLOAT16
    for init in g.initializer:
        if init.data_type == f32:
            init.CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
            )
    for node in g.node:
        for attr in node.attribute:
            if attr.name == "to" and node.op_type == "Cast" and attr.i == f32:
                attr.i = f16
            if attr.type == attr.TENSOR and attr.t.data_type == f32:
                arr = numpy_helper.to_array(attr.t).astype(np.float16)
                attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
    head, tail = [], []
    for vi in g.input:
        if vi.type.tensor_type.elem_type == f32:
            inner = vi.name + "_fp16"
            for node in g.node:
                node.input[:] = [inner if i == vi.name else i for i in node.input]
            head.append(helper.make_node("Cast", [vi.name], [inner], to=f16))
    for vi in g.output:
        if vi.type.tensor_type.elem_type == f32:
            inner = vi.name + "_fp16"
            for node in g.node:
                node.output[:] = [inner if o == vi.name else o for o in node.output]
            tail.append(helper.make_node("Cast", [inner], [vi.name], to=f32))
    nodes = head + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "model", type=Path, help="an ONNX model, e.g. ../shared/models/light_resnet50.onnx"
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for the JSON reports")
    ap.add_argument("--time", type=float, default=10.0, help="seconds of steady state per case")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for the CPU case")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from edgekit.bench import benchmark

    print(f"python {platform.python_version()} on {platform.node()}")
    try:
        import onnxruntime as ort

        print(f"onnxruntime {ort.__version__}; providers: {ort.get_available_providers()}")
    except ImportError:
        print("onnxruntime is not installed; nothing to measure")
        return 2
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        print(smi.stdout.strip())

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-gpu-"))
    fp16_path, fp16_how = None, None
    try:
        fp16_path = tmp / (args.model.stem + "_fp16.onnx")
        fp16_how = to_fp16(args.model, fp16_path)
        print(f"fp16 model: {fp16_how}")
    except Exception as exc:  # any converter failure: the fp16 cases are reported as failed
        print(f"fp16 conversion failed: {type(exc).__name__}: {exc}")
        fp16_path = None

    quick = {"min_time": args.time, "max_time": 3 * args.time + 30, "warmup": "2s"}
    cases = [
        ("CPU fp32", args.model, {"provider": "cpu", "threads": args.threads}),
        ("CUDA fp32", args.model, {"provider": "cuda"}),
        ("CUDA fp16", fp16_path, {"provider": "cuda"}),
        ("TensorRT fp32", args.model, {"provider": "tensorrt"}),
        ("TensorRT fp16", args.model,
         {"provider": "tensorrt", "options": {"provider_options": {"trt_fp16_enable": True}}}),
    ]  # fmt: skip
    rows = []
    for name, model, kwargs in cases:
        print(f"-- {name} ...", flush=True)
        if model is None:
            rows.append({"case": name, "ok": False, "error": "no fp16 model (conversion failed)"})
            continue
        try:
            report = benchmark(model, runtime="onnxruntime", **kwargs, **quick)
            path = args.out / (name.lower().replace(" ", "_") + ".json")
            report.save(path)
            lat = report.latency_ms
            # a provider can silently fall back to CPU: say which ran
            rows.append({
                "case": name, "ok": True, "median_ms": lat["median"], "p99_ms": lat["p99"],
                "ci": [lat["median_ci"]["low"], lat["median_ci"]["high"]], "n": lat["n"],
                "load_ms": report["phases_ms"]["load"], "provider": report["runtime"]["provider"],
                "report": str(path), "warnings": report.warnings,
            })  # fmt: skip
        except Exception as exc:  # each provider may fail in its own way; keep going
            rows.append({"case": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            traceback.print_exc(limit=2)
    cpu = next((r for r in rows if r["case"] == "CPU fp32" and r["ok"]), None)
    print()
    print("| case | median ms [95% CI] | p99 ms | speed-up vs CPU | load ms | note |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["ok"]:
            speed = f"{cpu['median_ms'] / r['median_ms']:.2f}x" if cpu else "n/a"
            print(f"| {r['case']} | {r['median_ms']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | "
                  f"{r['p99_ms']:.3f} | {speed} | {r['load_ms']:.0f} | {r['provider']} |")  # fmt: skip
        else:
            print(f"| {r['case']} | failed | | | | {r['error'][:150]} |")
    summary = {"model": str(args.model), "fp16_conversion": fp16_how, "time_s": args.time,
               "cases": rows}  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {args.out / 'summary.json'}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if any(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
