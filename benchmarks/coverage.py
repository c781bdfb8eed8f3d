"""Conversion coverage: every model x every target format, edgekit versus each converter alone.

Models: everything in ``../shared/models`` plus the train recipes (cnn, lstm,
transformer) built untrained with `edgekit.train.recipes`. Targets: tflite, onnx,
openvino (a model is not converted to its own format).

Each (model, target) pair ends in one of:

- verified: converted, and the result reproduces the source on generated inputs
  (an independent re-check with other seeds and more samples than convert uses);
- wrong: a file came out, but it does not run or its outputs differ;
- failed: no file, with a one-sentence reason (an edgekit error);
- crash: no file, and the converter raised something that is not a clear reason.

"edgekit" is `edgekit.convert.convert` (all paths, fallback, verification).
"tf2onnx alone" and "OpenVINO frontend alone" run that one converter directly on
the source, without edgekit's fallback paths or its TFLite axis repair; pairs the
converter does not take at all count as failed ("not supported").

Usage: python benchmarks/coverage.py [--json results.json] [--models DIR] [--to onnx ...]
       [--no-recipes]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("tflite", "onnx", "openvino")
OUTCOMES = ("verified", "wrong", "failed", "crash")


def build_recipes(folder: Path) -> list[Path]:
    """The train recipes as untrained Keras models (the conversions do not depend on training)."""
    import keras

    from edgekit.train.recipes import RECIPES, Regularization

    shapes = {"nhwc": (28, 28, 1), "sequence": (28, 28)}
    out = []
    for name, recipe in RECIPES.items():
        keras.utils.set_random_seed(0)
        model = recipe.build(shapes[recipe.layout], 10, Regularization())
        path = folder / f"recipe_{name}.keras"
        model.save(path)
        out.append(path)
    return out


def recheck(src: Any, result: Any, precision: str) -> tuple[bool, str]:
    """Independent parity: other seed, 8 samples, the default tolerance of `precision`."""
    from edgekit.errors import EdgekitError
    from edgekit.verify import compare_outputs

    try:
        p = compare_outputs(src, result, count=8, seed=12345, precision=precision)
    except EdgekitError as exc:
        return False, f"result does not run: {exc}"
    return p.passed, p.reason


def run_edgekit(src: Any, to: str, work: Path) -> tuple[str, str]:
    from edgekit.convert import convert
    from edgekit.errors import EdgekitError
    from edgekit.verify import model_precision

    try:
        res = convert(src, to, work / f"ek_{to}")
    except EdgekitError as exc:
        return "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - counting unclear failures is the point
        return "crash", f"{type(exc).__name__}: {exc}"
    ok, why = recheck(src, res.model, model_precision(src))
    return ("verified", res.path_str) if ok else ("wrong", why)


def run_alone(tool: str, src: Any, to: str, work: Path) -> tuple[str, str]:
    """One converter, once, on the source as it is: no fallback, no repair."""
    import edgekit.verify as verify
    from edgekit.convert import openvino_frontend, tf_onnx, tflite_onnx
    from edgekit.convert.graph import EdgeOptions
    from edgekit.errors import EdgekitError
    from edgekit.model import load
    from edgekit.verify import model_precision

    fmt = str(src.format)
    if tool == "tf2onnx":
        if to != "onnx" or fmt not in ("keras", "savedmodel", "tflite"):
            return "failed", "not supported by tf2onnx"
        run = tflite_onnx.run if fmt == "tflite" else tf_onnx.run
        out = work / f"{tool}.onnx"
    else:
        if to != "openvino" or fmt not in ("savedmodel", "onnx", "tflite"):
            return "failed", "not supported by OpenVINO's frontends"
        run = openvino_frontend.run
        out = work / f"{tool}.xml"
    saved = verify.repaired_tflite
    verify.repaired_tflite = lambda *a, **k: None  # the converter alone sees the file as it is
    try:
        made = load(run(src, out, EdgeOptions()))
    except EdgekitError as exc:
        return "failed", str(exc)
    except Exception as exc:  # noqa: BLE001
        return "crash", f"{type(exc).__name__}: {exc}"
    finally:
        verify.repaired_tflite = saved
    ok, why = recheck(src, made, model_precision(src))
    return ("verified", "") if ok else ("wrong", why)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--json", default=None, help="write every pair's outcome here")
    ap.add_argument("--to", nargs="*", choices=TARGETS, default=TARGETS, help="target formats")
    ap.add_argument("--no-recipes", action="store_true", help="only the models in --models")
    args = ap.parse_args()

    from edgekit.model import load

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-coverage-"))
    try:
        shared = Path(args.models)
        sources = sorted(p for p in shared.iterdir() if p.suffix in (".tflite", ".onnx")) \
            if shared.is_dir() else []  # fmt: skip
        if not args.no_recipes:
            sources += build_recipes(tmp)
        rows: list[dict[str, Any]] = []
        for path in sources:
            src = load(path)
            for to in args.to:
                if str(src.format) == to:
                    continue
                t0 = time.time()
                row: dict[str, Any] = {"model": path.name, "to": to}
                for tool, fn in (("edgekit", run_edgekit),
                                 ("tf2onnx", lambda s, t, w: run_alone("tf2onnx", s, t, w)),
                                 ("openvino", lambda s, t, w: run_alone("openvino", s, t, w))):  # fmt: skip
                    work = tmp / f"{path.stem}_{to}_{tool}"
                    work.mkdir()
                    outcome, detail = fn(src, to, work)
                    row[tool] = {"outcome": outcome, "detail": detail[:400]}
                    shutil.rmtree(work, ignore_errors=True)
                row["seconds"] = round(time.time() - t0, 1)
                rows.append(row)
                print(f"{path.name:32s} -> {to:9s} edgekit={row['edgekit']['outcome']:9s} "
                      f"tf2onnx={row['tf2onnx']['outcome']:9s} "
                      f"openvino={row['openvino']['outcome']:9s} {row['edgekit']['detail'][:90]}",
                      flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| model | to | edgekit | tf2onnx alone | OpenVINO frontend alone |")
    print("|---|---|---|---|---|")
    for r in rows:
        ek = r["edgekit"]["outcome"] + (f" ({r['edgekit']['detail']})"
                                        if r["edgekit"]["outcome"] == "verified" else "")  # fmt: skip
        cells = [ek] + [
            "n/a" if r[t]["detail"].startswith("not supported") else r[t]["outcome"]
            for t in ("tf2onnx", "openvino")
        ]
        print(f"| {r['model']} | {r['to']} | " + " | ".join(cells) + " |")
    print()
    print("| converter | pairs | in its scope | verified | converted-but-wrong "
          "| failed (clear reason) | crash |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    totals = {}
    for tool in ("edgekit", "tf2onnx", "openvino"):
        c = Counter(r[tool]["outcome"] for r in rows)
        totals[tool] = c
        scope = sum(not r[tool]["detail"].startswith("not supported") for r in rows)
        label = {"edgekit": "edgekit (all paths, verified)", "tf2onnx": "tf2onnx alone",
                 "openvino": "OpenVINO frontend alone"}[tool]  # fmt: skip
        print(f"| {label} | {len(rows)} | {scope} | {c['verified']} | {c['wrong']} "
              f"| {c['failed']} | {c['crash']} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return summarize(totals)


def summarize(totals: dict[str, Counter]) -> int:
    best_single = max(totals["tf2onnx"]["verified"], totals["openvino"]["verified"])
    ok = totals["edgekit"]["verified"] >= best_single and totals["edgekit"]["wrong"] == 0
    print(f"\nedgekit verified {totals['edgekit']['verified']} pairs, best single converter "
          f"{best_single}; converted-but-wrong {totals['edgekit']['wrong']}: "
          + ("OK" if ok else "REGRESSION"))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
