"""Microcontroller and NPU targets through their real runtime and compiler.

    .venv/bin/python benchmarks/targets.py [--models ../shared/models] [--out benchmarks/results/targets.json]

For every .tflite in `--models` and the reference CNN (`edgekit.train` "cnn" on digits,
quantized to full int8 by `edgekit.optimize` for ethos-u55-128): whether TFLite Micro
runs it (or the op it has no kernel for, named), the arena TFLM's planner needs against
edgekit's previous estimate (`deploy.limits.estimate_arena_bytes`), and for every
Ethos-U profile Vela's NPU/CPU op split, SRAM, flash (or DRAM) and estimated inference
time. Vela's figures are the compiler's estimates; the arena is TFLM's own figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ETHOS = ("ethos-u55-128", "ethos-u65-256", "ethos-u85-256")
ROOT = Path(__file__).resolve().parents[1]


def reference_cnn(work: Path) -> Path:
    from edgekit.optimize import optimize
    from edgekit.train import train

    trained = train("cnn", "digits", work / "train", epochs=8, progress=False).model_path
    return optimize(trained, "ethos-u55-128", out=work / "opt", quantize="int8").model_path


def tflm_row(path: Path) -> dict[str, Any]:
    from edgekit.deploy import estimate_arena_bytes
    from edgekit.errors import EdgekitError
    from edgekit.model import load
    from edgekit.runtimes import open_session

    model = load(path)
    row: dict[str, Any] = {"arena_estimate_bytes": estimate_arena_bytes(model)}
    try:
        with open_session(model, "tflite-micro") as s:
            row.update(tflm="ok", arena_bytes=s.arena_bytes, arena_used_bytes=s.arena_used_bytes)
    except EdgekitError as exc:
        row.update(tflm=str(exc).replace(str(path.parent) + "/", ""))
    return row


def vela_row(path: Path, profile: str) -> dict[str, Any]:
    from edgekit.compilers import run_compiler
    from edgekit.errors import EdgekitError
    from edgekit.profiles import load_profile

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / "model.tflite")
        try:
            fig = run_compiler(load_profile(profile), Path(tmp), "model.tflite", [])["figures"]
        except EdgekitError as exc:
            return {"error": str(exc)}
    keep = ("tflite_ops", "npu_ops", "cpu_ops", "cpu_op_types", "vela_npu_ops", "cpu_operators", "sram_bytes", "flash_bytes", "dram_bytes",
            "macs", "cycles_total", "inference_ms", "system_config", "memory_mode")  # fmt: skip
    return {k: fig[k] for k in keep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=ROOT.parent / "shared" / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "targets.json")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgekit.runtimes import get_runtime

    rows = []
    with tempfile.TemporaryDirectory() as w:
        models = sorted(args.models.glob("*.tflite"))
        models.append(reference_cnn(Path(w)))
        for path in models:
            name = "reference_cnn_int8" if path.parent.name == "opt" else path.stem
            row = {"model": name, "size_bytes": path.stat().st_size, **tflm_row(path),
                   "vela": {p: vela_row(path, p) for p in ETHOS}}  # fmt: skip
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "vela"}))
    from edgekit.compilers import find_tool

    vela = find_tool("vela")
    result = {
        "tflite_micro": get_runtime("tflite-micro").version(),
        "vela": None if vela is None else os.popen(f"{vela} --version").read().strip(),
        "note": "arena_bytes: smallest arena (16-byte steps) TFLM plans the model in; "
                "vela figures are Vela's estimates at each profile's system config",
        "models": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(markdown(rows))


def _kib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table: one line per model and Ethos-U profile."""
    out = ["| model | TFLM | arena KiB (TFLM / estimate) | profile | NPU/CPU ops | SRAM KiB "
           "| flash+DRAM KiB | est. ms |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        tflm = "ok" if r["tflm"] == "ok" else r["tflm"].split(": ", 1)[-1][:60]
        arena = f"{_kib(r.get('arena_bytes'))} / {_kib(r['arena_estimate_bytes'])}"
        for prof, v in r["vela"].items():
            if "error" in v:
                cells = ["Vela refuses: " + v["error"].split(": ", 2)[-1][:50], "", "", ""]
            else:
                cells = [f"{v['npu_ops']}/{v['cpu_ops']}", _kib(v["sram_bytes"]),
                         _kib(v["flash_bytes"] + v["dram_bytes"]), f"{v['inference_ms']:.3f}"]  # fmt: skip
            out.append(f"| {r['model']} | {tflm} | {arena} | {prof} | " + " | ".join(cells) + " |")
            tflm = arena = ""
    return "\n".join(out)


if __name__ == "__main__":
    main()
