#!/usr/bin/env python3
"""Run this edgekit bundle with only the target's runtime and numpy (no edgekit needed).

    python run.py [--input input.npz] [--output output.npz] [--model FILE]

Checks every file's sha256 against manifest.json, loads the model on the runtime
the manifest names, runs it once on the .npz inputs (or random ones) and writes
the outputs to a .npz file.

This file is `edgekit/deploy/runner.py`, copied into every bundle as `run.py`. It
runs where edgekit is not installed, so it imports only the standard library,
numpy and the target's runtime, and keeps its own copy of the little runtime
knowledge it needs (which interpreter to import, which device or provider is here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

# run.py also runs on the Pythons of older boards (3.8, 3.9): type aliases stay in annotations,
# and zip() has no strict= there (hence the B905 noqas).
if TYPE_CHECKING:
    Outputs = list[tuple[str, np.ndarray]]

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = "manifest.json"


def fail(msg: str) -> NoReturn:
    """One line on stderr and exit code 2: a problem with the bundle or the inputs."""
    sys.stderr.write("run.py: error: " + msg + "\n")
    raise SystemExit(2)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(folder: str) -> dict[str, Any]:
    """The bundle's manifest, after checking every file it lists against its sha256."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        fail(f"no {MANIFEST} in {folder}; not an edgekit bundle")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    check(manifest, folder)
    return manifest


def check(manifest: dict[str, Any], folder: str) -> None:
    """Fail unless every file the manifest lists is in `folder` with its recorded sha256."""
    for rel, digest in manifest["files"].items():
        path = os.path.join(folder, rel)
        if not os.path.isfile(path):
            fail(f"file {rel} listed in {MANIFEST} is missing")
        if sha256(path) != digest:
            fail(f"file {rel} does not match its sha256 in {MANIFEST}; refusing to run")


def make_inputs(signature: dict[str, Any], path: str | None) -> list[np.ndarray]:
    """One array per model input, in order: from the .npz at `path`, else seeded random data."""
    specs = signature["inputs"]
    if path:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if all(s["name"] in keys for s in specs):
                return [data[s["name"]] for s in specs]
            if len(specs) == 1 and len(keys) == 1:
                return [data[keys[0]]]
        fail(f"{path} holds {keys}; the model's inputs are {[s['name'] for s in specs]}")
    rng = np.random.default_rng(0)
    feeds = []
    for s in specs:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (s["shape"] or [1])]
        dt = np.dtype(s["dtype"])
        if dt.kind == "f":
            feeds.append(rng.uniform(-1, 1, shape).astype(dt))
        else:
            info = np.iinfo(dt)
            feeds.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(dt))
    return feeds


def to_model_layout(manifest: dict[str, Any], feeds: list[np.ndarray]) -> list[np.ndarray]:
    """Transpose NCHW inputs (the source's layout) for a model that takes NHWC.

    A model converted from ONNX by onnx2tf takes images channels-last; the manifest
    says so under conversion.input_layouts, and inputs given as the source took
    them (N, C, H, W) are fed (N, H, W, C).
    """
    layouts = manifest.get("conversion", {}).get("input_layouts") or {}
    out = []
    for s, x in zip(manifest["signature"]["inputs"], feeds):  # noqa: B905
        want = s["shape"] or []
        if layouts.get(s["name"]) == "nhwc" and x.ndim == 4 and len(want) == 4:
            t = x.transpose(0, 2, 3, 1)
            if list(x.shape) != list(want) and all(
                not isinstance(d, int) or d < 1 or d == n
                for d, n in zip(want, t.shape)  # noqa: B905
            ):
                x = t
        out.append(x)
    return out


def run_tflite(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any]) -> Outputs:
    """LiteRT, else tflite_runtime, else TensorFlow's interpreter; on the CPU."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite import Interpreter
            except ImportError:
                fail("no TFLite interpreter; run: pip install -r requirements.txt")
    interp = Interpreter(model_path=model_path, num_threads=manifest["runtime"].get("threads"))
    for d, x in zip(interp.get_input_details(), feeds):  # noqa: B905
        if tuple(d["shape"]) != tuple(x.shape):
            interp.resize_tensor_input(d["index"], list(x.shape))
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), feeds):  # noqa: B905
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [(d["name"], interp.get_tensor(d["index"])) for d in interp.get_output_details()]


def run_onnx(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any]) -> Outputs:
    """ONNX Runtime on the first of the target's execution providers present here, else CPU."""
    try:
        import onnxruntime as ort
    except ImportError:
        fail("onnxruntime is not installed; run: pip install -r requirements.txt")
    rt = manifest["runtime"]
    so = ort.SessionOptions()
    if rt.get("threads"):
        so.intra_op_num_threads = rt["threads"]
    present = ort.get_available_providers()
    use = [p for p in rt.get("providers") or [] if p in present] or ["CPUExecutionProvider"]
    sess = ort.InferenceSession(model_path, so, providers=use)
    names = [i.name for i in sess.get_inputs()]
    outs = sess.run(None, dict(zip(names, feeds)))  # noqa: B905
    return list(zip([o.name for o in sess.get_outputs()], outs))  # noqa: B905


def run_openvino(model_path: str, feeds: list[np.ndarray], manifest: dict[str, Any]) -> Outputs:
    """OpenVINO on the target's device when present here, else on the CPU."""
    try:
        import openvino as ov
    except ImportError:
        fail("openvino is not installed; run: pip install -r requirements.txt")
    rt = manifest["runtime"]
    core = ov.Core()
    device = rt.get("device") or "CPU"
    if device not in core.available_devices:
        sys.stderr.write(f"run.py: {device} not present, running on CPU\n")
        device = "CPU"
    config: dict[str, Any] = {}
    if device == "CPU":
        if rt.get("threads"):
            config["INFERENCE_NUM_THREADS"] = rt["threads"]
        if manifest.get("precision") == "fp32":
            # The CPU plugin computes in bf16 on CPUs with AVX-512 BF16 or AMX unless told.
            config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(core.read_model(model_path), device, config)
    res = compiled.create_infer_request().infer(feeds)
    out = []
    for i, port in enumerate(compiled.outputs):
        try:
            name = port.get_any_name()
        except RuntimeError:
            name = f"output_{i}"
        out.append((name, np.array(res[port])))
    return out


# The bundle's model format -> the function that runs it.
RUNNERS: dict[str, Callable[[str, list[np.ndarray], dict[str, Any]], Outputs]] = {
    "tflite": run_tflite,
    "onnx": run_onnx,
    "openvino": run_openvino,
}


def run(folder: str, input_path: str | None = None, model: str | None = None) -> Outputs:
    """Check the bundle in `folder` and run its model (or `model`, e.g. a compiled one) once.

    Returns ``[(name, array)]`` in the signature's output order, named as the
    manifest's signature names them.
    """
    manifest = load_manifest(folder)
    model_path = model or os.path.join(folder, manifest["model"]["entry"])
    feeds = to_model_layout(manifest, make_inputs(manifest["signature"], input_path))
    runner = RUNNERS.get(manifest["format"])
    if runner is None:
        fail(f"this run.py cannot run {manifest['format']} models")
    outs = runner(model_path, feeds, manifest)
    names = [o["name"] for o in manifest["signature"]["outputs"]]
    if len(names) != len(outs):
        names = [n for n, _ in outs]
    return [(n, a) for n, (_, a) in zip(names, outs)]  # noqa: B905


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run this edgekit bundle.")
    ap.add_argument("--input", help=".npz with one array per model input")
    ap.add_argument("--output", default="output.npz", help=".npz to write the outputs to")
    ap.add_argument("--model", help="model file to run instead of the manifest's (e.g. compiled)")
    args = ap.parse_args(argv)
    outs = run(HERE, args.input, args.model)
    tmp = args.output + ".tmp.npz"
    np.savez(tmp, **dict(outs))
    os.replace(tmp, args.output)
    for n, a in outs:
        print(f"{n} {list(a.shape)} {a.dtype}")
    print("wrote " + args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
