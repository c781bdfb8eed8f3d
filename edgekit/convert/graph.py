"""The conversion graph: which Format -> Format edges exist, and the paths between formats.

Capabilities are data: ``EDGES`` is the one table of converters. Each edge names
the module that implements it (a module with ``run(src, out, options) -> Path``),
the tool it uses, and the pip package that provides that tool. Nothing is imported
until an edge runs, so listing edges or paths loads no framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.model import Model

# What each target format's output looks like on disk: a file suffix, or "" for a folder.
SUFFIX = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx", "openvino": ".xml",
          "executorch": ".pte"}  # fmt: skip
TARGETS = tuple(SUFFIX)


@dataclass(frozen=True)
class EdgeOptions:
    """Options every edge receives; an edge ignores the ones that do not apply to it."""

    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    opset: int | None = None
    precision: str = "fp32"  # fp32 or fp16: the precision the result is stored in
    # PyTorch image models: take and give 4-D tensors as NHWC on the device (litert-torch)
    channels_last: bool = False


@dataclass(frozen=True)
class Edge:
    """One converter: ``src`` -> ``dst`` through ``tool`` (implemented in ``module``)."""

    src: str
    dst: str
    tool: str
    module: (
        str  # edgekit.convert.<module>[:function], with run(src: Model, out: Path, opts) -> Path
    )
    package: str  # the pip package the tool comes from, for a missing-dependency error

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst} ({self.tool})"

    def runner(self) -> Callable[[Model, Path, EdgeOptions], Path]:
        module, _, function = self.module.partition(":")
        return getattr(importlib.import_module(f"edgekit.convert.{module}"), function or "run")


# Order matters: among paths of equal length, edges listed first are tried first.
EDGES: tuple[Edge, ...] = (
    Edge("keras", "savedmodel", "keras export", "keras_savedmodel", "tensorflow"),
    Edge("keras", "tflite", "TFLiteConverter", "tf_tflite", "tensorflow"),
    Edge("savedmodel", "tflite", "TFLiteConverter", "tf_tflite", "tensorflow"),
    Edge("keras", "onnx", "tf2onnx", "tf_onnx", "tf2onnx"),
    Edge("savedmodel", "onnx", "tf2onnx", "tf_onnx", "tf2onnx"),
    Edge("savedmodel", "openvino", "OpenVINO TensorFlow frontend", "openvino_frontend", "openvino"),
    Edge("onnx", "openvino", "OpenVINO ONNX frontend", "openvino_frontend", "openvino"),
    Edge("tflite", "openvino", "OpenVINO TFLite frontend", "openvino_frontend", "openvino"),
    Edge("tflite", "onnx", "tf2onnx", "tflite_onnx", "tf2onnx"),
    Edge("onnx", "tflite", "onnx2tf", "onnx_tflite", "onnx2tf"),
    Edge("onnx", "tflite", "onnx2torch + litert-torch", "onnx_torch_tflite", "onnx2torch"),
    Edge("onnx", "savedmodel", "onnx2tf", "onnx_savedmodel", "onnx2tf"),
    Edge("onnx", "onnx", "onnx.version_converter", "onnx_opset", "onnx"),
    Edge("torch", "onnx", "torch.onnx (dynamo)", "torch_onnx", "onnxscript"),
    # the TorchScript exporter: the fallback when the dynamo export fails or does not verify
    Edge("torch", "onnx", "torch.onnx (TorchScript)", "torch_onnx:run_torchscript", "torch"),
    Edge("torch", "tflite", "litert-torch", "torch_tflite", "litert-torch"),
    Edge("torch", "openvino", "OpenVINO PyTorch frontend", "torch_openvino", "openvino"),
    Edge("torch", "executorch", "ExecuTorch XNNPACK", "torch_executorch", "executorch"),
    Edge("onnx", "onnx", "onnxslim", "onnx_simplify", "onnxslim"),
)


def edges_from(src: str) -> list[Edge]:
    return [e for e in EDGES if e.src == src]


def find_paths(src: str, dst: str, max_hops: int = 3) -> list[list[Edge]]:
    """Every simple path from ``src`` to ``dst``, shortest first, then in table order.

    A same-format edge (onnx -> onnx, an opset change) is the whole path when
    ``src == dst``, and otherwise only ever the first hop: each path that leaves
    ``src`` is also tried after that edge, as a fallback for converters that
    need a newer opset than the source's.
    """
    paths: list[list[Edge]] = []
    loops = [e for e in EDGES if e.src == e.dst == src]
    if src == dst:
        return [[e] for e in loops]

    def walk(path: list[Edge], at: str, seen: set[str]) -> None:
        if at == dst and path:
            paths.append(path)
            return
        if len(path) == max_hops:
            return
        for e in edges_from(at):
            if e.dst not in seen:
                walk(path + [e], e.dst, seen | {e.dst})

    walk([], src, {src})
    for loop in loops:
        walk([loop], src, {src})
    order = {e: i for i, e in enumerate(EDGES)}
    return sorted(paths, key=lambda p: (len(p), [order[e] for e in p]))


def path_str(path: list[Edge]) -> str:
    """``tflite -> onnx -> openvino``."""
    return " -> ".join([path[0].src] + [e.dst for e in path]) if path else ""
