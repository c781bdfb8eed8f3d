"""ONNX to TFLite coverage: edgekit versus onnx2tf alone versus onnx2torch + litert-torch.

Models: every ``light_*.onnx`` the installed ``onnx`` package ships under
``onnx/backend/test/data/light/`` plus ``../shared/models/light_*.onnx``. Each is
converted by:

- "edgekit": ``edgekit.convert.convert(model, "tflite", out)`` (onnxslim, then onnx2tf in
  its tool environment; verification on);
- "onnx2tf": onnx2tf alone in the same tool environment (``onnx2tf -i m.onnx -o out -n``),
  its ``*_float32.tflite`` taken as it is;
- "onnx2torch": onnx2torch then litert-torch, when onnx2torch imports here;
- "edgekit-int8": ``edgekit.optimize.optimize(model, "rpi4", quantize="int8")`` (onnx2tf's
  SavedModel, quantized by the TFLite backend on generated calibration inputs).

One judge for all: ``edgekit.verify.compare_outputs`` of the result against the ONNX
source on ONNX Runtime on the same (seeded, generated) inputs, NCHW transposed for an
NHWC model, at the fp32 (or int8) tolerance. Outcomes: verified, wrong (converted,
outputs differ or do not run), failed (no .tflite), timeout. Every job runs in a child
process with a time limit, so one crash or hang costs only that job.

Also measured: the time and disk that creating the onnx2tf environment costs (first
use in a fresh folder, and reuse).

Usage: python benchmarks/onnx_tflite.py [--json benchmarks/results/onnx_tflite.json]
       [--only NAME ...] [--tools edgekit,onnx2tf,onnx2torch,edgekit-int8]
       [--timeout 900] [--env-cost]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("edgekit", "onnx2tf", "onnx2torch", "edgekit-int8")
# Measured 2026-12-02: onnx2torch 1.5.15 requires torchvision, which does not import beside
# this machine's torch 2.13.0; installed with --no-deps, its import stops at the first line
# that needs it.
BLOCKED = ("onnx2torch needs torchvision: installed with --no-deps, `import onnx2torch` "
           "fails at onnx2torch/node_converters/nms.py line 11 with ModuleNotFoundError: "
           "No module named 'torchvision'")  # fmt: skip


def models() -> list[Path]:
    import onnx

    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    shared = ROOT.parent / "shared" / "models"
    return sorted(light.glob("light_*.onnx")) + sorted(shared.glob("light_*.onnx"))


def _judge(src: Path, result: Path, precision: str) -> dict[str, Any]:
    from edgekit.model import load
    from edgekit.verify import compare_outputs

    try:
        p = compare_outputs(load(src), load(result), count=2, precision=precision)
    except Exception as exc:  # the result does not run, or has other shapes
        return {"outcome": "wrong", "error": str(exc)[:300]}
    return {"outcome": "verified" if p.passed else "wrong", "max_abs_error": p.max_abs_error,
            "cosine": p.cosine, "error": None if p.passed else p.reason}  # fmt: skip


def job(tool: str, src: Path, work: Path) -> dict[str, Any]:
    """One conversion in this (child) process; returns its outcome."""
    if tool == "edgekit":
        from edgekit.convert import convert
        from edgekit.errors import EdgekitError

        try:
            res = convert(src, "tflite", work / "m.tflite", verify=False)
        except EdgekitError as exc:
            return {"outcome": "failed", "error": str(exc)[:300]}
        return _judge(src, res.model.path, "fp32") | {"path": res.path}
    if tool == "onnx2tf":
        import numpy as np

        from edgekit.tools import run_tool

        np.save(work / "calibration_image_sample_data_20x128x128x3_float32.npy",
                np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))  # fmt: skip
        proc = run_tool("onnx2tf", ["-i", str(src), "-o", str(work / "out"), "-n"], cwd=work)
        made = sorted((work / "out").glob("*_float32.tflite"))
        if not made:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
            return {"outcome": "failed", "error": tail[0][:300]}
        return _judge(src, made[0], "fp32")
    if tool == "onnx2torch":
        try:
            import onnx2torch  # noqa: F401
        except Exception as exc:
            return {
                "outcome": "blocked",
                "error": f"{BLOCKED} (here: {type(exc).__name__}: {exc})",
            }
        import litert_torch
        import onnx
        import torch

        from edgekit.inputs import generate_inputs
        from edgekit.model import load

        module = onnx2torch.convert(onnx.load(str(src))).eval()
        feeds = generate_inputs(load(src).signature)[0]
        args = tuple(torch.from_numpy(v) for v in feeds.values())
        litert_torch.convert(module, args).export(str(work / "m.tflite"))
        return _judge(src, work / "m.tflite", "fp32")
    if tool == "edgekit-int8":
        from edgekit.errors import EdgekitError
        from edgekit.optimize import optimize

        try:
            res = optimize(src, "rpi4", out=work / "o", quantize="int8", measure=False)
        except EdgekitError as exc:
            return {"outcome": "failed", "error": str(exc)[:300]}
        if res.report["optimized"]["precision"] != "int8":
            return {"outcome": "failed", "error": "no int8 candidate"}
        return _judge(src, res.model_path, "int8")
    raise ValueError(tool)


def run_job(tool: str, src: Path, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ek-o2t-bench-") as tmp:
        cmd = [sys.executable, __file__, "--job", tool, str(src), tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            out = json.loads(lines[-1]) if lines else {
                "outcome": "failed", "error": f"crashed (exit {proc.returncode}): "
                f"{(proc.stderr.strip().splitlines() or [''])[-1][:200]}"}  # fmt: skip
        except subprocess.TimeoutExpired:
            out = {"outcome": "timeout", "error": f"over {timeout:.0f} s"}
    return out | {"seconds": round(time.monotonic() - started, 1)}


def env_cost() -> dict[str, Any]:
    """Create the onnx2tf environment in a fresh folder (pip cache as it is), then reuse it."""
    from edgekit.tools import TOOLS as SPECS

    with tempfile.TemporaryDirectory(prefix="ek-tools-", dir=Path.home() / ".cache") as tmp:
        env = {**os.environ, "EDGEKIT_TOOLS_DIR": tmp, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "edgekit", "tools", "install", "onnx2tf"]
        t0 = time.monotonic()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        first = time.monotonic() - t0
        t0 = time.monotonic()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        reuse = time.monotonic() - t0
        du = subprocess.run(["du", "-sb", str(Path(tmp) / SPECS["onnx2tf"].folder_name)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return {"first_use_s": round(first, 1), "reuse_s": round(reuse, 2),
            "disk_bytes": int(du.stdout.split()[0])}  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--job":
        print(json.dumps(job(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/onnx_tflite.json"))
    ap.add_argument("--only", nargs="*", help="model file stems to run (default: all)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--env-cost", action="store_true", help="also time a fresh onnx2tf env")
    args = ap.parse_args()
    tools = args.tools.split(",")
    found = [m for m in models() if not args.only or m.stem in args.only]
    results: dict[str, Any] = {"models": [], "tools": tools, "timeout_s": args.timeout}
    if args.env_cost:
        results["environment"] = env_cost()
    for m in found:
        row: dict[str, Any] = {"model": m.stem, "from": m.parent.name}
        for tool in tools:
            row[tool] = run_job(tool, m, args.timeout)
            print(f"{m.parent.name}/{m.stem} {tool}: {row[tool]['outcome']} "
                  f"({row[tool]['seconds']} s)", flush=True)  # fmt: skip
        results["models"].append(row)
    results["summary"] = {t: sum(r[t]["outcome"] == "verified" for r in results["models"])
                          for t in tools}  # fmt: skip
    results["summary"]["models"] = len(results["models"])
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["summary"]))


if __name__ == "__main__":
    main()
