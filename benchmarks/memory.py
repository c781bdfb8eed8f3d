"""Peak memory of `edgekit eval` and `edgekit optimize` on the default digits data and on a
large npz.

    .venv/bin/python benchmarks/memory.py [--samples 100000] [--out benchmarks/results/memory.json]

Makes, in a temp folder, a tiny ONNX classifier for 28x28x1 images (Flatten, MatMul,
Softmax; built with onnx.helper, no download) and an uncompressed npz of `--samples`
random 28x28x1 float32 images with labels (100,000 samples: 314 MB of x), then runs

    /usr/bin/time -v python -m edgekit eval MODEL --dataset digits --runtime onnxruntime
    /usr/bin/time -v python -m edgekit eval MODEL --dataset npz:big.npz --runtime onnxruntime
    /usr/bin/time -v python -m edgekit optimize MODEL --profile x86-avx2 --quantize int8 \
        --calib-data D --out OUT      (D: digits, then npz:big.npz)

each in a fresh process and reports the "Maximum resident set size" of each, and the
size of the npz's x. A dataset that is streamed costs about the same as digits plus
one batch; one that is loaded whole costs at least the size of x, and more for every
copy the pipeline makes (splits, preprocessing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((784, 10)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ],
        "mnist_linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def make_npz(path: Path, samples: int) -> int:
    """Write x (samples, 28, 28, 1) float32 and y in chunks-free, uncompressed npz; returns x bytes."""
    rng = np.random.default_rng(0)
    x = rng.random((samples, 28, 28, 1), dtype=np.float32)
    y = (np.arange(samples) % 10).astype(np.int64)
    np.savez(path, x=x, y=y)
    return x.nbytes


def peak_rss_mb(args: list[str]) -> tuple[float, float, int]:
    """Run `python -m edgekit ARGS` under /usr/bin/time -v: (peak RSS MB, seconds, exit code)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "edgekit", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - started
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if proc.returncode != 0 or m is None:
        sys.stderr.write(proc.stderr[-3000:])
    return (int(m.group(1)) / 1024 if m else float("nan")), wall, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=None, help="Write the figures as JSON here.")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgekit-memory-") as tmp:
        d = Path(tmp)
        model = make_model(d / "mnist_linear.onnx")
        x_bytes = make_npz(d / "big.npz", opts.samples)
        rows = []
        commands = {
            "eval": lambda data: ["eval", str(model), "--dataset", data, "--runtime",
                                  "onnxruntime", "--json"],
            "optimize": lambda data: ["optimize", str(model), "--profile", "x86-avx2",
                                      "--quantize", "int8", "--calib-data", data, "--out",
                                      str(d / f"opt-{len(rows)}"), "--json"],
        }  # fmt: skip
        for command, args in commands.items():
            for name, dataset in (
                ("digits", "digits"),
                (f"npz {opts.samples}", f"npz:{d / 'big.npz'}"),
            ):
                rss, wall, rc = peak_rss_mb(args(dataset))
                rows.append({"command": command, "dataset": name, "peak_rss_mb": round(rss, 1),
                             "wall_s": round(wall, 1), "exit_code": rc})  # fmt: skip
                print(f"{command:>8} {name:>14}: peak RSS {rss:8.1f} MB  ({wall:5.1f} s, "
                      f"exit {rc})", flush=True)  # fmt: skip
    result = {
        "samples": opts.samples,
        "npz_x_mb": round(x_bytes / 2**20, 1),
        "runs": rows,
        "python": sys.version.split()[0],
    }
    print(f"npz x is {result['npz_x_mb']} MB")
    if opts.out:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
