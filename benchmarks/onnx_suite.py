"""ONNX's own backend test models to OpenVINO IR: edgekit versus OpenVINO's frontend alone.

The models ship inside the installed ``onnx`` package
(``onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}``), each with
``test_data_set_0`` holding its inputs and expected outputs as TensorProto files.
Each model is converted two ways and the IR is run on the suite's inputs on CPU at
f32 inference precision, then compared with the suite's expected outputs:

- "edgekit": ``edgekit.convert.convert(model, "openvino", out)`` (its paths, its
  verification and references), the IR run through edgekit's OpenVINO session;
- "edgekit-feeds": the same, verified on the suite's own inputs (written to a .npz and
  passed as ``edgekit convert --input FILE.npz`` does) instead of generated ones;
- "raw": ``openvino.convert_model`` + ``compile_model(CPU, INFERENCE_PRECISION_HINT=f32)``.

Each result is one of: correct (every output within ``--rtol``/``--atol`` of the
expected one), wrong (converted, but an output differs, does not run, or has another
shape), failed (no IR: edgekit refused, or the frontend raised). The suite's own data
is the judge here, never edgekit's reference: that is what makes "wrong" honest.

With ``--to tflite`` the target is TFLite instead, each model converted by
``edgekit.convert.convert(model, "tflite", out)`` ("edgekit", onnx2tf in its tool
environment, verified) and by ``onnx2tf -i model.onnx -o out -n`` alone ("onnx2tf"), the
.tflite run on the suite's inputs through edgekit's TFLite session (inputs and outputs
moved between channels-first and channels-last where only that fits, as onnx2tf
transposes them); "edgekit-feeds" (``--tools edgekit-feeds``) verifies on the suite's
inputs as the OpenVINO one does. Each of those jobs runs in a child process under ``--timeout``.

Models run one after another (OpenVINO: in this process); progress is appended to
``--json``'s ``.partial`` file so that a crash (a segfault in a framework) or a stop
resumes with the next row and the one in flight counted as failed (crash).

Usage: python benchmarks/onnx_suite.py [--json benchmarks/results/onnx_suite.json]
       [--only NAME ...] [--tools edgekit,raw] [--to tflite --tools edgekit,onnx2tf]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SUITES = ("pytorch-converted", "pytorch-operator", "simple")
OUTCOMES = ("correct", "wrong", "failed")


def suite_models() -> list[Path]:
    """Every backend test model folder of the installed onnx package that has data set 0."""
    import onnx

    root = Path(onnx.__file__).parent / "backend" / "test" / "data"
    found = []
    for suite in SUITES:
        for d in sorted((root / suite).iterdir()):
            if (d / "model.onnx").is_file() and (d / "test_data_set_0").is_dir():
                found.append(d)
    return found


def load_case(d: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The suite's inputs and expected outputs for data set 0, in graph order."""
    import onnx
    from onnx import numpy_helper

    def read(prefix: str) -> list[np.ndarray]:
        files = sorted((d / "test_data_set_0").glob(f"{prefix}_*.pb"),
                       key=lambda p: int(p.stem.split("_")[1]))  # fmt: skip
        out = []
        for f in files:
            t = onnx.TensorProto()
            t.ParseFromString(f.read_bytes())
            out.append(numpy_helper.to_array(t))
        return out

    return read("input"), read("output")


def judge(got: list[np.ndarray], want: list[np.ndarray], rtol: float, atol: float) -> str | None:
    """None when every output matches; else why not."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        g = np.asarray(g)
        if g.shape != w.shape:
            if g.size != w.size:
                return f"output {k} has shape {list(g.shape)}, expected {list(w.shape)}"
            g = g.reshape(w.shape)
        if w.dtype.kind in "fc":
            if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True):  # fmt: skip
                err = float(np.nanmax(np.abs(g.astype(np.float64) - w.astype(np.float64))))
                return f"output {k} differs by up to {err:.3g}"
        elif not np.array_equal(g, w.astype(g.dtype) if g.dtype != w.dtype else w):
            return f"output {k} differs"
    return None


def _run_ir(xml: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    res = compiled.create_infer_request().infer(list(inputs))
    return [np.array(res[o]) for o in compiled.outputs]


def run_raw(d: Path, work: Path, rtol: float, atol: float) -> dict[str, Any]:
    """OpenVINO's ONNX frontend alone: convert_model, compile on CPU at f32, run."""
    import openvino as ov

    inputs, want = load_case(d)
    try:
        ov_model = ov.convert_model(str(d / "model.onnx"))
        xml = work / "raw.xml"
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
    except Exception as exc:  # the frontend's own exception types
        return {"outcome": "failed", "why": _line(exc)}
    try:
        got = _run_ir(xml, inputs)
    except Exception as exc:
        return {"outcome": "wrong", "why": f"does not run: {_line(exc)}"}
    why = judge(got, want, rtol, atol)
    return {"outcome": "wrong" if why else "correct", "why": why}


def _suite_npz(d: Path, work: Path) -> Path:
    """The suite's inputs of model `d` as a user's .npz: one array per input name."""
    from edgekit.model import load

    names = [t.name for t in load(d / "model.onnx").signature.inputs]
    path = work / "inputs.npz"
    np.savez(path, **dict(zip(names, load_case(d)[0], strict=True)))
    return path


def run_edgekit(
    d: Path, work: Path, rtol: float, atol: float, own_inputs: bool = False
) -> dict[str, Any]:
    """edgekit.convert.convert to openvino; the IR run through edgekit's OpenVINO session.

    With `own_inputs`, verification runs on the suite's inputs, written to a .npz named by
    input and passed as ``edgekit convert --input FILE.npz`` passes it
    (``convert(feeds=path)``), instead of inputs generated from the signature.
    """
    from edgekit.convert import convert
    from edgekit.errors import EdgekitError
    from edgekit.runtimes import open_session

    inputs, want = load_case(d)
    feeds = _suite_npz(d, work) if own_inputs else None
    try:
        res = convert(d / "model.onnx", "openvino", work / "ek.xml", feeds=feeds)
    except EdgekitError as exc:
        return {"outcome": "failed", "why": _refusal(exc)}
    info = res.to_dict()
    extra = {"path": info["path"], "reference": info.get("reference"),
             "verified": info.get("verified", info["parity"] is not None)}  # fmt: skip
    try:
        with open_session(res.model) as sess:
            feeds = {t.name: x for t, x in zip(sess.signature.inputs, inputs, strict=True)}
            got = list(sess.run(feeds).values())
    except Exception as exc:
        return {"outcome": "wrong", "why": f"does not run: {_line(exc)}", **extra}
    why = judge(got, want, rtol, atol)
    return {"outcome": "wrong" if why else "correct", "why": why, **extra}


def run_edgekit_own_inputs(d: Path, work: Path, rtol: float, atol: float) -> dict[str, Any]:
    return run_edgekit(d, work, rtol, atol, own_inputs=True)


TOOLS = {"edgekit": run_edgekit, "edgekit-feeds": run_edgekit_own_inputs, "raw": run_raw}


def _fit(arr: np.ndarray, shape: tuple | list | None) -> np.ndarray:
    """`arr` as is, or with its channel axis moved (onnx2tf's NC... <-> N...C), to fit `shape`."""
    if shape is None or len(shape) != arr.ndim or arr.ndim < 3:
        return arr
    for a in (arr, np.moveaxis(arr, 1, -1), np.moveaxis(arr, -1, 1)):
        if all(
            not isinstance(d, int) or d < 0 or d == n for d, n in zip(shape, a.shape, strict=True)
        ):
            return a
    return arr


def _judge_tflite(d: Path, tflite: Path, rtol: float, atol: float) -> dict[str, Any]:
    """Run a .tflite made from suite model `d` on the suite's inputs, against its outputs."""
    from edgekit.model import load
    from edgekit.runtimes import open_session
    from edgekit.verify import match_inputs

    inputs, want = load_case(d)
    try:
        src = load(d / "model.onnx")
        with open_session(load(tflite)) as sess:
            order = match_inputs(src.signature, sess.signature)
            feeds = {t.name: _fit(inputs[j], t.shape)
                     for t, j in zip(sess.signature.inputs, order, strict=True)}  # fmt: skip
            got = list(sess.run(feeds).values())
    except Exception as exc:
        return {"outcome": "wrong", "why": f"does not run: {_line(exc)}"}
    # A channels-last output of a square shape fits as it is too: either layout may match.
    as_is = judge(got, want, rtol, atol)
    moved = [np.moveaxis(np.asarray(g), -1, 1) if np.ndim(g) >= 3 else g for g in got]
    why = as_is and judge([_fit(np.asarray(g), w.shape) for g, w in zip(got, want, strict=False)],
                          want, rtol, atol) and judge(moved, want, rtol, atol)  # fmt: skip
    return {"outcome": "wrong" if why else "correct", "why": why}


def run_edgekit_tflite(
    d: Path, work: Path, rtol: float, atol: float, own_inputs: bool = False
) -> dict[str, Any]:
    """edgekit.convert.convert to tflite (verified), judged on the suite's data; with
    `own_inputs` verified on the suite's inputs as `run_edgekit` does."""
    from edgekit.convert import convert
    from edgekit.errors import EdgekitError

    feeds = _suite_npz(d, work) if own_inputs else None
    try:
        res = convert(d / "model.onnx", "tflite", work / "ek.tflite", feeds=feeds)
    except EdgekitError as exc:
        return {"outcome": "failed", "why": _refusal(exc)}
    info = res.to_dict()
    return {**_judge_tflite(d, res.model.path, rtol, atol), "path": info["path"],
            "reference": info.get("reference")}  # fmt: skip


def run_onnx2tf(d: Path, work: Path, rtol: float, atol: float) -> dict[str, Any]:
    """onnx2tf alone in edgekit's tool environment: `onnx2tf -i model.onnx -o out -n`."""
    from edgekit.tools import run_tool

    # onnx2tf fetches this sample file from GitHub for 3-channel inputs; no network here.
    np.save(work / "calibration_image_sample_data_20x128x128x3_float32.npy",
            np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))  # fmt: skip
    proc = run_tool("onnx2tf", ["-i", str(d / "model.onnx"), "-o", str(work / "out"), "-n"],
                    cwd=work)  # fmt: skip
    made = sorted((work / "out").glob("*_float32.tflite"))
    if not made:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "rror" in ln] or lines or ["no .tflite written"]
        return {"outcome": "failed", "why": errors[-1].strip()[:300]}
    return _judge_tflite(d, made[0], rtol, atol)


def run_edgekit_tflite_own_inputs(d: Path, work: Path, rtol: float, atol: float) -> dict[str, Any]:
    return run_edgekit_tflite(d, work, rtol, atol, own_inputs=True)


TFLITE_TOOLS = {"edgekit": run_edgekit_tflite, "edgekit-feeds": run_edgekit_tflite_own_inputs,
                "onnx2tf": run_onnx2tf}  # fmt: skip


def _child(tool: str, d: Path, rtol: float, atol: float, timeout: float) -> dict[str, Any]:
    """One TFLite job in a child process (a hung or crashing converter stops only its row)."""
    with tempfile.TemporaryDirectory(prefix="onnx-suite-") as tmp:
        cmd = [sys.executable, __file__, "--job", tool, str(d), tmp, "--rtol", str(rtol),
               "--atol", str(atol)]  # fmt: skip
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"outcome": "failed", "why": f"timeout: over {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
        return {"outcome": "failed", "why": f"crashed (exit {proc.returncode}): {tail}"}
    return json.loads(lines[-1])


def _refusal(exc: BaseException) -> str:
    """edgekit's refusal, kept whole where short: its start names the path, converter and op,
    its end the next step (a long one keeps both ends, so the record shows each)."""
    msg = str(exc)
    return msg if len(msg) <= 900 else f"{msg[:500]} ... {msg[-400:]}"


def _line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _environment() -> dict[str, Any]:
    import onnx
    import onnxruntime
    import openvino

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                capture_output=True, text=True).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__, "edgekit_commit": commit}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/onnx_suite.json"))
    ap.add_argument("--only", nargs="*", default=None, help="model folder names to run")
    ap.add_argument("--tools", default=None, help="default: edgekit,raw (tflite: edgekit,onnx2tf)")
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--to", choices=("openvino", "tflite"), default="openvino")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per TFLite job")
    ap.add_argument("--job", nargs=3, metavar=("TOOL", "MODEL_DIR", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.job:  # one TFLite job, in the child process `_child` started
        tool, d, work = args.job
        print(json.dumps(TFLITE_TOOLS[tool](Path(d), Path(work), args.rtol, args.atol),
                         default=str))  # fmt: skip
        return 0
    tools = (args.tools or ("edgekit,onnx2tf" if args.to == "tflite" else "edgekit,raw")).split(",")
    models = suite_models()
    if args.only:
        models = [d for d in models if d.name in set(args.only)]
    partial = args.json.with_suffix(".partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, str], dict] = {}
    started: set[tuple[str, str]] = set()
    if partial.exists():
        for line in partial.read_text().splitlines():
            rec = json.loads(line)
            key = (rec["model"], rec["tool"])
            if rec.get("outcome") == "started":
                started.add(key)
            else:
                done[key] = rec
    with partial.open("a") as log:
        for d in models:
            name = f"{d.parent.name}/{d.name}"
            for tool in tools:
                key = (name, tool)
                if key in done:
                    continue
                if key in started:  # the process died on it last time
                    rec = {"model": name, "tool": tool, "outcome": "failed", "why": "crashed"}
                else:
                    log.write(
                        json.dumps({"model": name, "tool": tool, "outcome": "started"}) + "\n"
                    )
                    log.flush()
                    work = Path(tempfile.mkdtemp(prefix="onnx-suite-"))
                    t0 = time.perf_counter()
                    try:
                        if args.to == "tflite":
                            got = _child(tool, d, args.rtol, args.atol, args.timeout)
                        else:
                            got = TOOLS[tool](d, work, args.rtol, args.atol)
                        rec = {"model": name, "tool": tool, **got}
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                    rec["seconds"] = round(time.perf_counter() - t0, 2)
                log.write(json.dumps(rec, default=str) + "\n")
                log.flush()
                done[key] = rec
                print(f"{tool:8s} {rec['outcome']:8s} {name}  {rec.get('why') or ''}"[:200],
                      flush=True)  # fmt: skip
    results = [done[(f"{d.parent.name}/{d.name}", t)] for d in models for t in tools
               if (f"{d.parent.name}/{d.name}", t) in done]  # fmt: skip
    summary = {t: dict(Counter(r["outcome"] for r in results if r["tool"] == t)) for t in tools}
    for t in tools:
        summary[t] = {o: summary[t].get(o, 0) for o in OUTCOMES}
    out = {"schema_version": 1, "to": args.to, "rtol": args.rtol, "atol": args.atol, "models": len(models),
           "environment": _environment(), "summary": summary, "results": results}  # fmt: skip
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=str))
    os.replace(tmp, args.json)
    partial.unlink(missing_ok=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
