"""ExecuTorch XNNPACK next to LiteRT and ONNX Runtime, fp32 and int8, on the same PyTorch models.

(Named so that it does not shadow the `executorch` package: a script's folder is first on
sys.path.)

Two models: the PyTorch reference CNN (the `cnn` recipe trained on digits with
`edgekit.train(..., framework="torch")`) and a MobileNetV2-style network built here
(inverted residual blocks, random weights, 3x96x96 input). Each is converted by edgekit
from its `.pt2` (every conversion verified against PyTorch): ExecuTorch `.pte` lowered to
XNNPACK (fp32, and int8 through PT2E with the XNNPACK quantizer), LiteRT `.tflite`
(litert-torch fp32, and its PT2E int8) and ONNX (torch.onnx fp32, and ONNX Runtime's
static int8). All six of a model are timed in ONE interleaved measurement
(`edgekit.bench.interleaved`) on 1 thread, and each ratio to ExecuTorch fp32 comes from
it with its bootstrap interval. Times are this host's CPU (x86), not a phone's.

    .venv/bin/python benchmarks/executorch_xnnpack.py [--out benchmarks/results/executorch.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (label, runtime, format, precision), in the order they are measured; the first is the base.
VARIANTS = (
    ("executorch fp32", "executorch", "executorch", "fp32"),
    ("executorch int8", "executorch", "executorch", "int8"),
    ("litert fp32", "litert", "tflite", "fp32"),
    ("litert int8", "litert", "tflite", "int8"),
    ("onnxruntime fp32", "onnxruntime", "onnx", "fp32"),
    ("onnxruntime int8", "onnxruntime", "onnx", "int8"),
)


def mobilenet_v2_style(size: int, width: float = 0.5) -> object:
    """A MobileNetV2-shaped network (stem, inverted residuals with ReLU6, 1x1 head, pooling,
    classifier), seeded random weights; BatchNorm statistics set by a few forward passes."""
    import torch
    from torch import nn

    def ch(c: int) -> int:
        return max(8, int(c * width + 4) // 8 * 8)

    class Inverted(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            mid = cin * expand
            self.skip = stride == 1 and cin == cout
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
                nn.ReLU6(), nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x) if self.skip else self.body(x)

    # (expansion, channels, repeats, stride): MobileNetV2's table
    table = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
    layers: list[nn.Module] = [nn.Conv2d(3, ch(32), 3, 2, 1, bias=False), nn.BatchNorm2d(ch(32)),
                               nn.ReLU6()]  # fmt: skip
    cin = ch(32)
    for t, c, n, s in table:
        for i in range(n):
            layers.append(Inverted(cin, ch(c), s if i == 0 else 1, t))
            cin = ch(c)
    layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, 100)]  # fmt: skip
    torch.manual_seed(0)
    net = nn.Sequential(*layers)
    net.train()
    with torch.no_grad():  # BatchNorm running statistics from data, as a trained net has
        for _ in range(4):
            net(torch.randn(16, 3, size, size))
    return net.eval()


def variants(pt2: Path, calib: np.ndarray, work: Path) -> dict[str, Path]:
    """Each variant of `pt2`, made and verified by edgekit."""
    from edgekit.convert import convert
    from edgekit.optimize.quantize import quantize

    paths: dict[str, Path] = {}
    for label, _, fmt, precision in VARIANTS:
        out = work / label.replace(" ", "_")
        if precision == "fp32":
            paths[label] = convert(pt2, fmt, out).model.path
        elif fmt == "onnx":  # ONNX Runtime quantizes the fp32 ONNX model
            paths[label] = quantize(paths["onnxruntime fp32"], "onnx", "int8", out.with_suffix(".onnx"),
                                    calib)  # fmt: skip
        else:  # ExecuTorch and litert-torch quantize from the PyTorch model (PT2E)
            suffix = ".pte" if fmt == "executorch" else ".tflite"
            paths[label] = quantize(pt2, fmt, "int8", out.with_suffix(suffix), calib)
        print(f"  made {label}: {paths[label].stat().st_size / 1024:.0f} KiB", flush=True)
    return paths


def measure(model: str, paths: dict[str, Path], x: np.ndarray, rounds: int) -> list[dict]:
    from edgekit.bench.interleaved import measure_interleaved, ratios

    labels = [v[0] for v in VARIANTS]
    runtimes = [v[1] for v in VARIANTS]
    lats = measure_interleaved([paths[n] for n in labels], x, runtime=runtimes, threads=1,
                               rounds=rounds, min_time=2.0)  # fmt: skip
    rows = []
    for (label, rt, fmt, precision), lat, r in zip(VARIANTS, lats, ratios(lats), strict=True):
        rows.append({
            "model": model, "variant": label, "runtime": rt, "format": fmt,
            "precision": precision, "size_bytes": paths[label].stat().st_size,
            "median_ms": round(float(lat["median"]), 4),
            # speedup: ExecuTorch fp32's median / this median, with its interval, same run
            "vs_executorch_fp32": None if r is None else round(r["speedup"], 3),
            "ci": None if r is None else [round(r["speedup_low"], 3), round(r["speedup_high"], 3)],
        })  # fmt: skip
    return rows


def digits_cnn(work: Path, epochs: int | None) -> tuple[Path, np.ndarray, float]:
    """The reference CNN trained on digits, and its test split preprocessed as it was trained."""
    from edgekit.data.dataset import load_dataset
    from edgekit.data.preprocess import Preprocess
    from edgekit.train import train

    trained = train("cnn", "digits", work / "cnn", epochs=epochs, framework="torch", progress=False)
    pre = Preprocess.load(trained.out_dir / "preprocess.json")
    data = load_dataset("digits", pre, splits=("test",))
    return trained.model_path, np.asarray(data.x_test, np.float32), trained.test_accuracy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/executorch.json"))
    ap.add_argument("--size", type=int, default=96, help="MobileNetV2-style input height/width")
    ap.add_argument("--rounds", type=int, default=4, help="harness runs per variant")
    ap.add_argument("--epochs", type=int, default=None, help="CNN training epochs")
    ap.add_argument("--verbose", action="store_true", help="show the frameworks' output")
    args = ap.parse_args()

    import torch

    from edgekit.cli import quiet_frameworks
    from edgekit.devices import cpu

    quiet_frameworks()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    rows: list[dict] = []
    notes: dict = {}
    with tempfile.TemporaryDirectory(prefix="executorch-bench-") as tmp:
        work = Path(tmp)
        pt2, x, acc = digits_cnn(work, args.epochs)
        notes["cnn_torch_fp32_test_accuracy"] = acc
        print(f"cnn: trained, PyTorch fp32 test accuracy {acc:.2%}", flush=True)
        shape = "x".join(str(d) for d in x.shape[1:])
        rows += measure(f"cnn (digits, 1x{shape})", variants(pt2, x[:64], work / "cnn-v"), x,
                        args.rounds)  # fmt: skip
        net = mobilenet_v2_style(args.size)
        example = torch.randn(1, 3, args.size, args.size)
        mb = work / "mobilenet_v2_style.pt2"
        torch.export.save(torch.export.export(net, (example,)), mb)
        xm = np.random.default_rng(0).standard_normal((64, 3, args.size, args.size))
        xm = xm.astype(np.float32)
        rows += measure(f"mobilenet_v2-style (x0.5, 1x3x{args.size}x{args.size})",
                        variants(mb, xm[:32], work / "mb-v"), xm, args.rounds)  # fmt: skip
    record = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpu": cpu()["model"],
        "threads": 1,
        **notes,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("| model | variant | size | median ms | vs ExecuTorch fp32 (95% CI) |")
    print("|---|---|---|---|---|")
    for r in rows:
        ci = r["ci"] or [None, None]
        ratio = "n/a" if r["vs_executorch_fp32"] is None else f"{r['vs_executorch_fp32']:.2f}x"
        if None not in ci:
            ratio += f" ({ci[0]:.2f}-{ci[1]:.2f})"
        print(f"| {r['model']} | {r['variant']} | {r['size_bytes'] / 1024:.0f} KiB "
              f"| {r['median_ms']:.4f} | {ratio} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    from edgekit.cli._quiet import quiet_output

    with quiet_output("--verbose" in sys.argv):
        sys.exit(main())
