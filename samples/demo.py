"""edgekit's main job on the built-in sample, end to end.

1. Train the reference CNN recipe on scikit-learn's bundled digits (real data, no download).
2. Optimize it for one CPU profile per format: x86-avx512 (OpenVINO IR int8),
   x86-avx2 (ONNX Runtime int8) and rpi4 (LiteRT int8; measured here on the host).
3. The same for PyTorch: the recipe trained with `--framework torch` (a .pt2), optimized
   for x86-avx512 and x86-avx2 with the same commands, verified against PyTorch.
4. Print the before/after table: size, accuracy, parity, median latency, speedup.

Run: make demo   (or .venv/bin/python samples/demo.py [--out build/demo] [--epochs N])
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

PROFILES = ("x86-avx512", "x86-avx2", "rpi4")
TORCH_PROFILES = ("x86-avx512", "x86-avx2")  # torch -> OpenVINO IR and torch -> ONNX


def _median(latency: Any) -> float | None:
    if isinstance(latency, dict):
        return latency.get("median")
    return latency


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("build/demo"))
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (recipe default)")
    parser.add_argument("--verbose", action="store_true", help="show the frameworks' output")
    args = parser.parse_args()

    from edgekit.cli import quiet_frameworks

    quiet_frameworks()
    warnings.filterwarnings("ignore")  # converters' deprecation chatter; errors still raise
    from rich.console import Console
    from rich.table import Table

    from edgekit.errors import EdgekitError
    from edgekit.optimize import optimize
    from edgekit.train import train

    console = Console(width=None if sys.stdout.isatty() else 132)
    run = args.out / f"run-{__import__('time').strftime('%Y%m%d-%H%M%S')}"
    try:
        rows = []
        # (framework, profiles, the step numbers of its training and of its optimizing)
        stages = (("keras", PROFILES, "1", "2"), ("torch", TORCH_PROFILES, "3a", "3b"))
        for framework, profiles, train_step, optimize_step in stages:
            console.rule(f"{train_step}. train the reference CNN on digits ({framework})")
            trained = train("cnn", "digits", run / f"cnn-{framework}", epochs=args.epochs,
                            seed=0, framework=framework)  # fmt: skip
            console.print(
                f"test accuracy {trained.test_accuracy:.2%} after {trained.epochs_run} epochs "
                f"in {trained.wall_time_s:.0f} s -> {trained.model_path}"
            )
            for profile in profiles:
                console.rule(f"{optimize_step}. optimize for {profile} ({framework})")
                result = optimize(trained.model_path, profile, out=run / f"{profile}-{framework}")
                rows.append((profile, framework, result.report))
                console.print(f"-> {result.model_path}  (report: {result.markdown_path})")
    except EdgekitError as exc:
        console.print(f"[red]edgekit: error:[/red] {exc}")
        return 2

    table = Table(title="4. before -> after (baseline is the fp32 model in the profile's format)")
    for col in ("profile", "source", "format", "precision", "size", "accuracy", "top-1 agree",
                "median ms", "speedup"):  # fmt: skip
        left = col in ("profile", "source", "format")
        table.add_column(col, justify="left" if left else "right")
    for profile, framework, rep in rows:
        b, o, p = rep["baseline"], rep["optimized"], rep.get("parity") or {}
        bm, om = _median(b["latency_ms"]), _median(o["latency_ms"])
        acc = (f"{b['accuracy']:.2%} -> {o['accuracy']:.2%}"
               if b.get("accuracy") is not None and o.get("accuracy") is not None else "unproven")  # fmt: skip
        agree = p.get("top1_agreement")
        table.add_row(
            profile,
            framework,
            o["format"],
            f"{b['precision']} -> {o['precision']}",
            f"{b['size_bytes'] / 1024:.0f} -> {o['size_bytes'] / 1024:.0f} KiB",
            acc,
            "n/a" if agree is None else f"{agree:.1%}",
            "n/a" if not (bm and om) else f"{bm:.3f} -> {om:.3f}",
            "n/a" if not (bm and om) else f"{bm / om:.2f}x",
        )
    console.print(table)
    console.print(f"everything is in {run}; rpi4 is measured on this host, not on a Pi")
    return 0


if __name__ == "__main__":
    from edgekit.cli._quiet import quiet_output

    # the frameworks' own output stays off the terminal (replayed if the demo fails)
    with quiet_output("--verbose" in sys.argv):
        sys.exit(main())
