"""Conversion coverage from PyTorch: real architectures x {onnx, tflite, openvino}, edgekit
versus each raw exporter alone.

Models are built here with random weights (seed 0) and saved with `torch.export.save`:
a ResNet-18-style CNN with batch norm, a MobileNetV3-style model (hard-swish,
squeeze-excite), an LSTM classifier, a small Transformer encoder, and, when
`transformers` imports, two Hugging Face architectures from a config (BERT, ViT).

Each (model, target) pair ends in one of (as in `benchmarks/coverage.py`, whose
independent re-check is reused):

- verified: a file came out and reproduces PyTorch on 8 fresh seeded samples;
- wrong: a file came out, but it does not run or its outputs differ;
- failed: no file, with a one-sentence reason;
- crash: no file, and the exporter raised something that is not a clear reason.

"edgekit" is `edgekit.convert.convert` (fallback paths, verification). The raw
exporters run once on the ExportedProgram's module, as a user would call them:
``torch.onnx.export(..., dynamo=True)``, ``litert_torch.convert``, and
``openvino.convert_model``; their file is then re-checked the same way.

Usage: python benchmarks/torch_coverage.py [--json results.json] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import torch  # noqa: E402 - after the TF log level, which TF reads at import
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGETS = ("onnx", "tflite", "openvino")
RAW = {"onnx": "torch.onnx dynamo", "tflite": "litert_torch.convert",
       "openvino": "openvino.convert_model"}  # fmt: skip


def _coverage() -> Any:
    """benchmarks/coverage.py as a module (its name clashes with the coverage package)."""
    spec = importlib.util.spec_from_file_location("ek_coverage", HERE / "coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


# --- the architectures -------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """ResNet-18's layout ([2, 2, 2, 2] basic blocks, 64-512 channels), 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))  # fmt: skip
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp),
                                   nn.Hardswish(),
                                   nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False),
                                   nn.BatchNorm2d(exp), nn.Hardswish()]  # fmt: skip
        if se:
            layers.append(SqueezeExcite(exp))
        layers += [nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV3(nn.Module):
    """MobileNetV3-Small's first blocks: hard-swish, depthwise convs, squeeze-excite."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.Hardswish())  # fmt: skip
        cfg = [(16, 16, 16, 3, 2, True), (16, 72, 24, 3, 2, False), (24, 88, 24, 3, 1, False),
               (24, 96, 40, 5, 2, True), (40, 240, 40, 5, 1, True), (40, 120, 48, 5, 1, True)]  # fmt: skip
        self.blocks = nn.Sequential(*(InvertedResidual(*c) for c in cfg))
        self.head = nn.Sequential(nn.Linear(48, 128), nn.Hardswish(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


class TransformerClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(x).mean(dim=1))


class HFLogits(nn.Module):
    """A Hugging Face model's logits as one tensor (exporters take tensors, not ModelOutput)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def _hf_models() -> dict[str, tuple[Callable[[], nn.Module], tuple[torch.Tensor, ...]]]:
    try:
        import transformers as tr
    except ImportError:
        return {}
    bert = tr.BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=128, num_labels=10)  # fmt: skip
    vit = tr.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=128, num_labels=10)  # fmt: skip
    return {
        "hf_bert": (lambda: HFLogits(tr.BertForSequenceClassification(bert)),
                    (torch.randint(0, 1000, (1, 16)),)),
        "hf_vit": (lambda: HFLogits(tr.ViTForImageClassification(vit)),
                   (torch.randn(1, 3, 32, 32),)),
    }  # fmt: skip


def models() -> dict[str, tuple[Callable[[], nn.Module], tuple[torch.Tensor, ...]]]:
    """name -> (builder, example args)."""
    return {
        "resnet18": (ResNet18, (torch.randn(1, 3, 64, 64),)),
        "mobilenetv3": (MobileNetV3, (torch.randn(1, 3, 64, 64),)),
        "lstm": (LSTMClassifier, (torch.randn(1, 16, 32),)),
        "transformer": (TransformerClassifier, (torch.randn(1, 16, 64),)),
        **_hf_models(),
    }


def build(name: str, make: Callable[[], nn.Module], args: tuple, folder: Path) -> Path:
    torch.manual_seed(0)
    module = make().eval()
    for m in module.modules():  # non-trivial batch-norm statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    path = folder / f"{name}.pt2"
    torch.export.save(torch.export.export(module, args), str(path))
    return path


# --- the raw exporters alone -------------------------------------------------------------


def export_alone(src: Any, to: str, work: Path) -> Path:
    """One raw exporter, once, on the program's module (no fallback, no repair)."""
    from edgekit.formats.torch import example_args, exported, program_module

    ep = exported(src)
    args = example_args(src)
    if to == "onnx":
        out = work / "raw.onnx"
        torch.onnx.export(ep, args, str(out), dynamo=True)
    elif to == "tflite":
        import litert_torch

        out = work / "raw.tflite"
        litert_torch.convert(program_module(ep), args).export(str(out))
    else:
        import openvino as ov

        out = work / "raw.xml"
        ov.save_model(ov.convert_model(ep), str(out), compress_to_fp16=False)
    return out


def run_raw(src: Any, to: str, work: Path, recheck: Callable) -> tuple[str, str]:
    from edgekit.model import load

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            made = load(export_alone(src, to, work))
    except Exception as exc:  # noqa: BLE001 - the exporter's own error is the result
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", f"{type(exc).__name__}: {first}"
    ok, why = recheck(src, made, "fp32")
    return ("verified", "") if ok else ("wrong", why)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None, help="write every pair's outcome here")
    ap.add_argument("--only", nargs="*", default=None, help="model names to run")
    args = ap.parse_args()

    from edgekit.model import load

    cov = _coverage()
    table = models()
    names = args.only or list(table)
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-torch-coverage-"))
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            make, example = table[name]
            src = load(build(name, make, example, tmp))
            for to in TARGETS:
                t0 = time.time()
                row: dict[str, Any] = {"model": name, "to": to}
                for tool in ("edgekit", "raw"):
                    work = tmp / f"{name}_{to}_{tool}"
                    work.mkdir()
                    with contextlib.redirect_stdout(io.StringIO()):
                        outcome, detail = (cov.run_edgekit(src, to, work) if tool == "edgekit"
                                           else run_raw(src, to, work, cov.recheck))  # fmt: skip
                    row[tool] = {"outcome": outcome, "detail": detail[:300]}
                    shutil.rmtree(work, ignore_errors=True)
                row["seconds"] = round(time.time() - t0, 1)
                rows.append(row)
                print(f"{name:12s} -> {to:9s} edgekit={row['edgekit']['outcome']:9s} "
                      f"raw={row['raw']['outcome']:9s} {row['edgekit']['detail'][:70]} | "
                      f"{row['raw']['detail'][:70]}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def report(rows: list[dict[str, Any]]) -> None:
    print("\n| model | to | edgekit | raw exporter alone |")
    print("|---|---|---|---|")
    for r in rows:
        cells = []
        for tool in ("edgekit", "raw"):
            o, d = r[tool]["outcome"], r[tool]["detail"]
            cells.append(o if (o == "verified" and tool == "raw") else f"{o} ({d[:120]})")
        label = f"{RAW[r['to']]}: {cells[1]}"
        print(f"| {r['model']} | {r['to']} | {cells[0]} | {label} |")
    print("\n| converter | pairs | verified | converted-but-wrong | failed | crash |")
    print("|---|---|---|---|---|---|")
    for tool, label in (("edgekit", "edgekit (all paths, verified)"), ("raw", "raw exporters")):
        c = Counter(r[tool]["outcome"] for r in rows)
        print(f"| {label} | {len(rows)} | {c['verified']} | {c['wrong']} | {c['failed']} "
              f"| {c['crash']} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
