"""The pass table: every pass as data (what it accepts, makes, and where it lives).

Help texts, choices, the flow's preconditions and error messages are made from
``PASSES``; nothing heavy is imported until a pass runs (Olive's pattern). This is a
leaf module: the rest of `edgekit.optimize` reads the table from here, so no module
imports the package ``__init__`` (which imports the flow) back.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from edgekit.vocab import INFERENCE_PRECISION_NAMES, PRECISIONS

INT8 = ("int8", "int8-float-fallback")
# Precisions that need calibration samples.
CALIBRATED = ("int8", "int8-float-fallback", "int16x8")
# Precisions that are only a runtime's compute precision for the fp32 model (bf16): no pass
# makes them; `optimize` compiles the fp32 model in them (`target.inference_precision`).
COMPUTE_ONLY = tuple(n for n in INFERENCE_PRECISION_NAMES.values() if n not in PRECISIONS)
# `--quantize`: one precision, "auto" (each the profile allows) or "none" (fp32 only).
QUANTIZE_CHOICES = ("auto", *(p for p in PRECISIONS if p != "fp32"), *COMPUTE_ONLY, "none")


@dataclass(frozen=True)
class PassInfo:
    """A pass as data: where it lives, which formats it takes, what it makes."""

    name: str
    target: str  # "module:Class", a subclass of edgekit.optimize.base.Pass
    accepts: tuple[str, ...]  # model formats the pass takes, its preferred input first
    produces: str | None  # format it writes (None: same as input)
    kind: str  # "prune", "quantize", "graph"
    precisions: tuple[str, ...] = ()
    needs_data: bool = False  # True: needs labelled training data (fine-tuning)
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The frameworks it imports: a missing one is a user error naming its extra.
    modules: tuple[str, ...] = ()

    def require(self) -> None:
        """Import the pass's frameworks, or raise MissingDependencyError naming the extra."""
        from edgekit.extras import require

        for module in self.modules:
            require(module)


PASSES: dict[str, PassInfo] = {
    p.name: p
    for p in (
        PassInfo("prune_magnitude", "edgekit.optimize.prune_magnitude:MagnitudePrune",
                 ("keras",), None, "prune", needs_data=True,
                 summary="unstructured magnitude pruning with fine-tuning",
                 extra={"in_memory": True}, modules=("keras",)),
        PassInfo("prune_structured", "edgekit.optimize.prune_structured:StructuredPrune",
                 ("keras",), None, "prune", needs_data=True,
                 summary="remove conv filters / dense units by L1 norm, rebuild, fine-tune",
                 extra={"structured": True, "in_memory": True}, modules=("keras",)),
        PassInfo("prune_torch_magnitude", "edgekit.optimize.prune_torch:TorchMagnitudePrune",
                 ("torch",), None, "prune", needs_data=True,
                 summary="torch.nn.utils.prune L1 unstructured pruning with fine-tuning",
                 modules=("torch",)),
        PassInfo("prune_torch_structured", "edgekit.optimize.prune_torch:TorchStructuredPrune",
                 ("torch",), None, "prune", needs_data=True,
                 summary="torch.nn.utils.prune L1 structured (output channels zeroed), fine-tune",
                 extra={"structured": True}, modules=("torch",)),
        PassInfo("prune_weights", "edgekit.optimize.prune_weights:WeightPrune",
                 ("onnx", "tflite"), None, "prune",
                 summary="zero small weights without training (compressed size only)"),
        PassInfo("quant_tflite", "edgekit.optimize.quantize.tflite:TFLiteQuantize",
                 ("keras", "savedmodel", "torch"), "tflite", "quantize", PRECISIONS,
                 summary="TFLite converter post-training quantization (PyTorch: litert-torch "
                 "PT2E)", modules=("tensorflow",)),
        PassInfo("quant_executorch", "edgekit.optimize.quantize.executorch:ExecuTorchQuantize",
                 ("torch",), "executorch", "quantize", ("int8", "fp32"),
                 summary="PT2E with ExecuTorch's XNNPACK quantizer, lowered to XNNPACK",
                 modules=("executorch",)),
        PassInfo("quant_onnx", "edgekit.optimize.quantize.onnx:ONNXQuantize",
                 ("onnx",), "onnx", "quantize", PRECISIONS,
                 summary="ONNX Runtime dynamic / static QDQ / QOperator quantization",
                 modules=("onnx", "onnxruntime")),
        PassInfo("quant_openvino", "edgekit.optimize.quantize.openvino:OpenVINOQuantize",
                 ("onnx", "openvino"), "openvino", "quantize",
                 tuple(p for p in PRECISIONS if p not in ("dynamic", "int16x8")),
                 summary="NNCF int8 and fp16 weight compression", modules=("openvino", "nncf")),
        PassInfo("graph_opt", "edgekit.optimize.graph_opt:GraphOpt",
                 ("onnx",), "onnx", "graph",
                 summary="ONNX Runtime offline graph optimization, kept when faster",
                 modules=("onnxruntime",)),
    )
}  # fmt: skip


def passes_for(fmt: str, kind: str | None = None) -> list[PassInfo]:
    """Passes that accept models of `fmt` (optionally of one kind), from the table."""
    return [p for p in PASSES.values() if fmt in p.accepts and (kind is None or p.kind == kind)]


def fine_tunes(fmt: str) -> bool:
    """Whether a pass that fine-tunes (and so works on the in-memory source) takes `fmt`."""
    return any(p.needs_data and fmt in p.accepts for p in PASSES.values())


def in_memory(fmt: str) -> bool:
    """Whether `fmt`'s fine-tuning passes work on the source loaded in memory (Keras) rather
    than on its file."""
    return any(p.extra.get("in_memory") and fmt in p.accepts for p in PASSES.values())


def quantizer_for(fmt: str) -> PassInfo | None:
    """The quantization pass that writes `fmt` models, or None when there is none."""
    return next((p for p in PASSES.values() if p.kind == "quantize" and p.produces == fmt), None)


def pass_class(name: str) -> type:
    """The class behind pass `name` (an `edgekit.optimize.base.Pass`), imported on first use."""
    module, attr = PASSES[name].target.split(":")
    return getattr(importlib.import_module(module), attr)


def get_pass(name: str) -> Any:
    """An instance of pass `name`, an `edgekit.optimize.base.Pass` (its module imported on
    first use)."""
    return pass_class(name)()
