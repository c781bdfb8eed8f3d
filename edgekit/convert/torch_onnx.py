"""torch -> onnx: `torch.onnx.export`, the dynamo exporter first, the TorchScript one second.

Two edges of the conversion graph share this module: `run` (dynamo=True, on the
ExportedProgram, needs onnxscript) and `run_torchscript` (dynamo=False, tracing
the module). The graph tries them in that order and verifies each result against
PyTorch, so a dynamo export that fails or computes something else (its issue
tracker has silently wrong graphs) falls back to the TorchScript exporter.
Dynamic dimensions of a `.pt2` stay dynamic unless `--input-shape` fixes them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from edgekit.convert._common import captured_logs, onnx_to_fp16, reason
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import EdgekitError, UnsupportedModelError
from edgekit.extras import require as require_extra
from edgekit.model import Model

# The TorchScript exporter's default; the dynamo exporter picks its own (18 or later).
TORCHSCRIPT_OPSET = 17


def _export(src: Model, tool: str, call: Any) -> None:
    """Run one export call quietly; any failure becomes one sentence naming the exporter."""
    try:
        with captured_logs("torch.onnx", "torch.export", "onnxscript"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except EdgekitError:
        raise
    except Exception as exc:  # torch raises TorchExportError, OnnxExporterError, RuntimeError...
        raise UnsupportedModelError(
            f"{src.path}: {tool} cannot export this model: {reason(exc)}"
        ) from None


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    """The dynamo exporter on the model's ExportedProgram."""
    require_extra("onnxscript")  # names edgekit[torch] when absent
    import torch

    from edgekit.formats.torch import TORCHSCRIPT, check_shapes, example_args, exported, load_torch

    check_shapes(src, opts.input_shapes)
    if load_torch(src).kind == TORCHSCRIPT:
        program: Any = load_torch(src).module()
        args = example_args(src, opts.input_shapes)
    else:
        program, args = exported(src, opts.input_shapes), ()
    _export(src, "torch.onnx (dynamo)", lambda: torch.onnx.export(
        program, args, str(out), dynamo=True, opset_version=opts.opset, verbose=False,
        external_data=False,
    ))  # fmt: skip
    if opts.precision == "fp16":
        onnx_to_fp16(out, out)
    return out


def run_torchscript(src: Model, out: Path, opts: EdgeOptions) -> Path:
    """The TorchScript exporter (dynamo=False) tracing the model's module."""
    import torch

    from edgekit.formats.torch import check_shapes, example_args, load_torch

    check_shapes(src, opts.input_shapes)
    sig = src.signature
    module = load_torch(src).module()
    args = example_args(src, opts.input_shapes)
    dynamic = {}
    if not opts.input_shapes:
        for t in sig.inputs:
            axes = {i: str(d) for i, d in enumerate(t.shape or ()) if not isinstance(d, int)}
            if axes:
                dynamic[t.name] = axes
    _export(src, "torch.onnx (TorchScript)", lambda: torch.onnx.export(
        module, args, str(out), dynamo=False, opset_version=opts.opset or TORCHSCRIPT_OPSET,
        input_names=[t.name for t in sig.inputs],
        output_names=[t.name for t in sig.outputs] if len(set(t.name for t in sig.outputs))
        == len(sig.outputs) else None,
        dynamic_axes=dynamic or None,
    ))  # fmt: skip
    if opts.precision == "fp16":
        onnx_to_fp16(out, out)
    return out
