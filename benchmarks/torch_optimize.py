"""The PyTorch reference CNN, trained on digits, through `edgekit optimize` to int8.

The CNN recipe is trained with `edgekit.train(..., framework="torch")` (a `.pt2`) and
optimized for each profile with the same call a Keras model gets. Every figure comes
from optimize's own report: the accuracy of the int8 model on the digits test split
(against PyTorch's fp32 accuracy of the same split, from `train`), the size of the
int8 model over the fp32 baseline's in the profile's format, and the speedup of
int8 over that fp32 baseline on the profile's runtime, from the one interleaved
measurement optimize makes (median ratio with its bootstrap interval). A profile
whose optimize fails is recorded with edgekit's one-sentence reason.

    .venv/bin/python benchmarks/torch_optimize.py [--out benchmarks/results/torch_optimize.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROFILES = ("x86-avx512", "x86-avx2", "rpi4")


def _row(profile: str, torch_acc: float, rep: dict) -> dict:
    b, o = rep["baseline"], rep["optimized"]
    ci = rep.get("speedup_ci") or {}
    return {
        "profile": profile,
        "format": o["format"],
        "runtime": rep["measurement"]["runtime"],
        "precision": o["precision"],
        "torch_fp32_accuracy": torch_acc,
        "baseline_accuracy": b.get("accuracy"),
        "int8_accuracy": o.get("accuracy"),
        "drop_vs_torch_points": None
        if o.get("accuracy") is None
        else round(100 * (torch_acc - o["accuracy"]), 2),
        "fp32_bytes": b["size_bytes"],
        "int8_bytes": o["size_bytes"],
        "size_ratio": rep.get("size_ratio"),  # int8 / fp32, as optimize states it
        "fp32_median_ms": b["latency_ms"]["median"],
        "int8_median_ms": o["latency_ms"]["median"],
        "speedup": rep.get("speedup"),
        "speedup_ci": [ci.get("low"), ci.get("high")] if ci else None,
        "parity_top1": (rep.get("parity") or {}).get("top1_agreement"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/torch_optimize.json"))
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (recipe default)")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES))
    parser.add_argument("--verbose", action="store_true", help="show the frameworks' output")
    args = parser.parse_args()

    from edgekit.cli import quiet_frameworks

    quiet_frameworks()
    from edgekit.errors import EdgekitError
    from edgekit.optimize import optimize
    from edgekit.train import train

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="torch-optimize-") as tmp:
        work = Path(tmp)
        trained = train("cnn", "digits", work / "cnn", epochs=args.epochs, framework="torch",
                        progress=False)  # fmt: skip
        torch_acc = trained.test_accuracy
        print(f"torch fp32: {torch_acc:.2%} after {trained.epochs_run} epochs", flush=True)
        for profile in args.profiles:
            try:
                result = optimize(trained.model_path, profile, out=work / profile)
            except EdgekitError as exc:
                rows.append({"profile": profile, "error": str(exc)})
                print(f"{profile}: failed: {exc}", flush=True)
                continue
            rows.append(_row(profile, torch_acc, result.report))
            print(json.dumps(rows[-1]), flush=True)
    record = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "epochs": trained.epochs_run,
        "torch_fp32_accuracy": torch_acc,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("| profile | format (runtime) | PyTorch fp32 | int8 | drop (points) | size fp32 -> int8 "
          "| speedup (95% CI) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['profile']} | failed: {r['error']} | | | | | |")
            continue
        ci = r["speedup_ci"] or [None, None]
        ci_text = f" ({ci[0]:.2f}-{ci[1]:.2f})" if None not in ci else ""
        speed = f"{r['speedup']:.2f}x{ci_text}" if r["speedup"] else "n/a"
        print(
            f"| {r['profile']} | {r['format']} ({r['runtime']}) | {r['torch_fp32_accuracy']:.2%} "
            f"| {r['int8_accuracy']:.2%} | {r['drop_vs_torch_points']:+.2f} "
            f"| {r['fp32_bytes'] / 1024:.0f} -> {r['int8_bytes'] / 1024:.0f} KiB "
            f"(x{r['size_ratio']:.2f}) | {speed} |"
        )
    return 0


if __name__ == "__main__":
    from edgekit.cli._quiet import quiet_output

    # the frameworks' own output stays off the terminal (replayed if the run fails)
    with quiet_output("--verbose" in sys.argv):
        sys.exit(main())
