"""ONNX to TFLite coverage: edgekit versus onnx2tf alone versus onnx2torch + litert-torch.

Models: every ``light_*.onnx`` the installed ``onnx`` package ships under
``onnx/backend/test/data/light/`` plus ``../shared/models/light_*.onnx``. Each is
converted by:

- "edgekit": ``edgekit.convert.convert(model, "tflite", out)`` (onnxslim, then onnx2tf in
  its tool environment, then onnx2torch + litert-torch: the first result that verifies);
- "onnx2tf": onnx2tf alone in the same tool environment (``onnx2tf -i m.onnx -o out -n``),
  its ``*_float32.tflite`` taken as it is;
- "onnx2torch": onnx2torch then litert-torch alone, in their tool environment
  (``edgekit tools install onnx2torch``; ``edgekit/tools/onnx2torch_tflite.py`` on the
  model as it is, traced on generated inputs);
- "edgekit-onnx2torch": edgekit's second path alone
  (``edgekit.convert.onnx_torch_tflite.run``: onnxslim, then onnx2torch + litert-torch);
- "edgekit-int8": ``edgekit.deploy.deploy(model, "rpi4", out, precision="int8")`` (onnx2tf's
  SavedModel, quantized by the TFLite backend on generated calibration inputs; deploy
  verifies the int8 result and refuses one that does not reproduce the source).

One judge for all: ``edgekit.verify.compare_outputs`` of the result against the ONNX
source on ONNX Runtime on the same (seeded, generated) inputs, NCHW transposed for an
NHWC model, at the fp32 (or int8) tolerance. Outcomes: verified, wrong (converted,
outputs differ or do not run), failed (no .tflite), timeout. Every job runs in a child
process with a time limit, so one crash or hang costs only that job.

Also measured: the time and disk that creating the onnx2tf environment costs (first
use in a fresh folder, and reuse).

Usage: python benchmarks/onnx_tflite.py [--json benchmarks/results/onnx_tflite.json]
       [--only NAME ...] [--tools onnx2tf,edgekit,edgekit-int8,onnx2torch,edgekit-onnx2torch]
       [--timeout 600] [--env-cost] [--fresh] [--redo blocked ...]

Resumable: each finished cell (model, tool) is written to --json at once; a rerun skips
the cells already there (``--fresh`` starts over, ``--redo OUTCOME`` reruns those).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("onnx2tf", "edgekit", "edgekit-int8", "onnx2torch", "edgekit-onnx2torch")


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
            res = convert(src, "tflite", work / "m.tflite")
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
        import numpy as np

        from edgekit.inputs import generate_inputs
        from edgekit.model import load
        from edgekit.tools import run_tool

        np.savez(work / "sample.npz", **generate_inputs(load(src).signature)[0])
        out = work / "m.tflite"
        proc = run_tool("onnx2torch", [str(src), str(work / "sample.npz"), str(out)], cwd=work)
        if not out.is_file():
            tail = proc.stderr.strip().splitlines()[-1:] or [""]
            return {"outcome": "failed", "error": tail[0][:300]}
        return _judge(src, out, "fp32")
    if tool == "edgekit-onnx2torch":
        from edgekit.convert.graph import EdgeOptions
        from edgekit.convert.onnx_torch_tflite import run
        from edgekit.errors import EdgekitError
        from edgekit.model import load

        # edgekit's second path on its own (onnxslim first, then onnx2torch + litert-torch),
        # as the conversion graph runs it when onnx2tf fails
        try:
            out = run(load(src), work / "m.tflite", EdgeOptions())
        except EdgekitError as exc:
            return {"outcome": "failed", "error": str(exc)[:300]}
        return _judge(src, out, "fp32")
    if tool == "edgekit-int8":
        from edgekit.deploy import deploy
        from edgekit.errors import EdgekitError

        # deploy, not optimize alone: it verifies the int8 result and refuses a wrong one,
        # as a user meets it; what it ships is judged again below.
        try:
            b = deploy(src, "rpi4", work / "b", precision="int8", measure=False)
        except EdgekitError as exc:
            return {"outcome": "failed", "error": str(exc)[:300]}
        return _judge(src, b.path / b.manifest["model"]["entry"], "int8")
    raise ValueError(tool)


def run_job(tool: str, src: Path, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ek-o2t-bench-") as tmp:
        cmd = [sys.executable, __file__, "--job", tool, str(src), tmp]
        # A session of its own, so a timeout ends the tool processes the job started too
        # (a killed job's onnx2tf would otherwise run on, orphaned, holding gigabytes).
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                start_new_session=True)  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
            out = json.loads(lines[-1]) if lines else {
                "outcome": "failed", "error": f"crashed (exit {proc.returncode}): "
                f"{(stderr.strip().splitlines() or [''])[-1][:200]}"}  # fmt: skip
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
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


def _save(path: Path, results: dict[str, Any]) -> None:
    """Write the results whole (to a temporary name, then renamed), with their summary."""
    rows, tools = results["models"], results["tools"]
    results["summary"] = {t: sum(r.get(t, {}).get("outcome") == "verified" for r in rows)
                          for t in tools} | {"models": len(rows)}  # fmt: skip
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--job":
        print(json.dumps(job(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/onnx_tflite.json"))
    ap.add_argument("--only", nargs="*", help="model file stems to run (default: all)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--timeout", type=float, default=600, help="seconds per job")
    ap.add_argument("--env-cost", action="store_true", help="also time a fresh onnx2tf env")
    ap.add_argument("--fresh", action="store_true", help="ignore the cells already in --json")
    ap.add_argument("--redo", nargs="*", default=[], help="outcomes to run again (blocked ...)")
    args = ap.parse_args()
    path, tools = Path(args.json), args.tools.split(",")
    # Resumable: every finished cell is written at once, and a restart skips those cells
    # (same model file, same tool), so a long run survives a kill and can grow a column.
    old = {} if args.fresh or not path.is_file() else json.loads(path.read_text())
    rows = {(r["from"], r["model"]): r for r in old.get("models", [])}
    results: dict[str, Any] = old | {"tools": list(dict.fromkeys([*old.get("tools", []), *tools])),
                                     "timeout_s": args.timeout}  # fmt: skip
    if args.env_cost:
        results["environment"] = env_cost()
    # Smallest models first; tool by tool, so a column fills for every model before the next.
    found = sorted((m for m in models() if not args.only or m.stem in args.only),
                   key=lambda m: m.stat().st_size)  # fmt: skip
    for m in found:
        rows.setdefault((m.parent.name, m.stem), {"model": m.stem, "from": m.parent.name})
    results["models"] = list(rows.values())
    for tool in tools:
        for m in found:
            row = rows[(m.parent.name, m.stem)]
            if tool in row and row[tool]["outcome"] not in args.redo:
                continue
            row[tool] = run_job(tool, m, args.timeout)
            _save(path, results)
            print(f"{m.parent.name}/{m.stem} {tool}: {row[tool]['outcome']} "
                  f"({row[tool]['seconds']} s)", flush=True)  # fmt: skip
    _save(path, results)
    print(json.dumps(results["summary"]))


if __name__ == "__main__":
    main()
