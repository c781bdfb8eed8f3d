"""The reference CNN's accuracy under every precision candidate (issue 12), per runtime.

The reference CNN (`edgekit.train` "cnn" on scikit-learn's digits, 8 epochs) goes through
`edgekit optimize --quantize auto --calib-data digits` for one profile per runtime: rpi4
(LiteRT), x86-avx2 (ONNX Runtime), x86-avx512 (OpenVINO, with its bf16 candidate). Each
candidate optimize made (fp32, bf16, int8, its alternatives, int8-where-it-pays) is
scored by optimize itself on the digits test split, and the table is read from its
report.json: accuracy, points lost against the fp32 baseline, within the 1-point budget
or not, and which one auto picked.

    .venv/bin/python benchmarks/reference_accuracy.py [--profiles rpi4,x86-avx2,x86-avx512]
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

PROFILES = ("rpi4", "x86-avx2", "x86-avx512")


def rows_of(rep: dict, profile: str) -> list[dict]:
    """One row per candidate of an optimize report (the baseline first)."""
    base = rep["baseline"]
    chosen = rep["optimized"]["name"]
    rows = [{"profile": profile, "runtime": rep["measurement"]["runtime"], "candidate": "baseline fp32",
             "accuracy": base["accuracy"], "drop": 0.0, "meets_budget": True, "auto_pick": False}]  # fmt: skip
    for c in rep["candidates"]:
        rows.append({
            "profile": profile, "runtime": rep["measurement"]["runtime"], "candidate": c["name"],
            "accuracy": c["accuracy"], "drop": c["accuracy_drop"], "meets_budget": c["meets_budget"],
            "auto_pick": c["name"] == chosen, "error": c["error"],
            # the candidate is another model, not the baseline again: its outputs differ
            "max_abs_error": (c["parity"] or {}).get("max_abs_error"),
            "cosine": (c["parity"] or {}).get("cosine"),
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/reference_accuracy.json")
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()

    from edgekit.optimize import optimize
    from edgekit.train import train

    started, load_start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.getloadavg()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ek-bench-refacc-") as tmp:
        work = Path(tmp)
        cnn = train("cnn", "digits", work / "train", epochs=args.epochs, progress=False).model_path
        for prof in args.profiles.split(","):
            print(f"{prof}: edgekit optimize --quantize auto --calib-data digits ...", flush=True)
            res = optimize(cnn, prof, out=work / prof, quantize="auto", calib_data="digits",
                           threads=1)  # fmt: skip
            rows += rows_of(res.report, prof)
            print(f"  data: {res.report['data']['source']}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started_utc": started, "load_average_start": load_start,
                               "load_average_end": os.getloadavg(), "rows": rows}, indent=2)
                   + "\n")  # fmt: skip
    print("\n| profile (runtime) | candidate | accuracy | points lost vs fp32 | within 1 point | "
          "max abs error vs fp32 | auto |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
        drop = "-" if r.get("error") else f"{r['drop']:.2f}"
        print(f"| {r['profile']} ({r['runtime']}) | {r['candidate']} | {acc} | {drop} | "
              f"{'yes' if r['meets_budget'] else 'NO'} | {r.get('max_abs_error', '-')} | "
              f"{'picked' if r['auto_pick'] else ''} |")  # fmt: skip


if __name__ == "__main__":
    main()
