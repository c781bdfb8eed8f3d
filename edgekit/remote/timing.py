#!/usr/bin/env python3
"""Time an edgekit bundle on the device it was pushed to; prints the raw samples as JSON.

    python edgekit_timing.py BUNDLE_DIR [--runs N] [--warmup N] [--threads N]

Standalone (stdlib, numpy and the bundle's runtime): the device has no edgekit.
The bundle's own run.py checks every file against manifest.json first and makes
the inputs, so what is timed is exactly what the bundle ships. Only the call into
the runtime is inside the clock. (In a later version this becomes the runner's
`--bench` mode.)
"""

import argparse
import importlib.util
import json
import os
import sys
import time


def load_runner(bundle):
    spec = importlib.util.spec_from_file_location(
        "edgekit_bundle_run", os.path.join(bundle, "run.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tflite_call(model_path, feeds, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter

    interp = Interpreter(model_path=model_path, num_threads=threads)
    for d, x in zip(interp.get_input_details(), feeds, strict=True):
        if tuple(d["shape"]) != tuple(x.shape):
            interp.resize_tensor_input(d["index"], list(x.shape))
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), feeds, strict=True):
        interp.set_tensor(d["index"], x)
    return interp.invoke, "Interpreter.invoke()"


def onnx_call(model_path, feeds, threads, providers):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    present = ort.get_available_providers()
    sess = ort.InferenceSession(
        model_path, so, providers=[p for p in providers if p in present] or ["CPUExecutionProvider"]
    )
    feed = dict(zip([i.name for i in sess.get_inputs()], feeds, strict=True))
    return (lambda: sess.run(None, feed)), "InferenceSession.run()"


def openvino_call(model_path, feeds, threads):
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
    compiled = core.compile_model(core.read_model(model_path), "CPU", config)
    req = compiled.create_infer_request()
    return (lambda: req.infer(feeds)), "InferRequest.infer()"


def runtime_version(fmt):
    from importlib.metadata import PackageNotFoundError, version

    names = {"tflite": ("ai-edge-litert", "tflite-runtime", "tensorflow"),
             "onnx": ("onnxruntime", "onnxruntime-gpu"), "openvino": ("openvino",)}  # fmt: skip
    for name in names.get(fmt, ()):
        try:
            return name, version(name)
        except PackageNotFoundError:
            continue
    return None, None


def main():
    ap = argparse.ArgumentParser(description="Time an edgekit bundle on this device.")
    ap.add_argument("bundle")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    runner = load_runner(args.bundle)
    with open(os.path.join(args.bundle, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    runner.check(manifest)  # exits 2 naming the file that does not match
    rt = manifest["runtime"]
    threads = args.threads if args.threads is not None else rt.get("threads")
    model_path = os.path.join(args.bundle, manifest["model"]["entry"])
    feeds = runner.make_inputs(manifest["signature"], None)
    fmt = manifest["format"]
    pc = time.perf_counter_ns
    t0 = pc()
    if fmt == "tflite":
        call, region = tflite_call(model_path, feeds, threads)
    elif fmt == "onnx":
        call, region = onnx_call(model_path, feeds, threads, rt.get("providers") or [])
    else:
        call, region = openvino_call(model_path, feeds, threads)
    load_ms = (pc() - t0) / 1e6
    t0 = pc()
    call()
    first_ms = (pc() - t0) / 1e6
    t0 = pc()
    for _ in range(args.warmup):
        call()
    warm_ms = (pc() - t0) / 1e6
    samples = []
    for _ in range(args.runs):
        t = pc()
        call()
        samples.append(pc() - t)
    package, ver = runtime_version(fmt)
    out = {
        "samples_ns": samples,
        "phases_ms": {"load": load_ms, "first_inference": first_ms, "warmup": warm_ms},
        "warmup_runs": args.warmup,
        "threads": threads,
        "timed_region": region,
        "runtime_package": package,
        "runtime_version": ver,
        "pid": os.getpid(),
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
