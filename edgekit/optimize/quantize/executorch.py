"""ExecuTorch backend: int8 `.pte` programs from a PyTorch model, through PT2E with
ExecuTorch's `XNNPACKQuantizer`, lowered to XNNPACK.

ExecuTorch quantizes before it lowers, so the source is the PyTorch model (as for
litert-torch, `tflite_torch`), not a `.pte`. The quantizer's symmetric per-channel
config annotates the static-shape export, observers calibrate on the user's samples
(`tflite_torch.calibrate_pt2e`, shared), and the XNNPACK partitioner takes the
quantize/dequantize pairs into its int8 kernels (`convert.torch_executorch.lower`).
Inputs and outputs stay float32: the program quantizes at its edge. The result is
checked against PyTorch on the calibration samples before it is returned.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from edgekit.errors import UnsupportedModelError
from edgekit.optimize.quantize.algorithm import QuantizePass
from edgekit.optimize.quantize.backend import Calibration, LayerError, QuantBackend, QuantOptions


class ExecuTorchBackend(QuantBackend):
    """ExecuTorch programs from a PyTorch model: fp32, and PT2E int8 for XNNPACK."""

    format = "executorch"
    tool = "ExecuTorch"

    def quantize(
        self,
        model: Any,
        precision: str,
        calib: Calibration | None,
        options: QuantOptions,
        out: Path,
    ) -> Path:
        from edgekit.convert.graph import EdgeOptions
        from edgekit.convert.torch_executorch import lower, run
        from edgekit.model import Model, load
        from edgekit.optimize.quantize.tflite_torch import check_against_torch, is_torch

        if not is_torch(model):
            raise UnsupportedModelError(
                "ExecuTorch programs are made from a PyTorch model (.pt2), not from "
                f"{getattr(model, 'format', model)}"
            )
        src = model if isinstance(model, Model) else load(model)
        if precision == "fp32":
            return run(src, out, EdgeOptions())
        if options.keep_float or options.keep_float_types:
            raise UnsupportedModelError(
                "edgekit's ExecuTorch int8 route quantizes every op XNNPACK's quantizer "
                "annotates; it cannot keep chosen layers in float."
            )
        assert calib is not None  # the algorithm wraps it for int8
        graph, args = _quantized_graph(src, calib)
        lower(src, graph, args, out, "quantize")
        check_against_torch(src, out, calib, kind="ExecuTorch")
        return out

    def layer_errors(
        self, model: Any, calib: Calibration, options: QuantOptions
    ) -> list[LayerError]:
        raise UnsupportedModelError(
            "per-layer int8 error is not measured for ExecuTorch programs (their XNNPACK "
            "subgraphs are opaque to ExecuTorch's Python runtime)"
        )


def _quantized_graph(src: Any, calib: Calibration) -> tuple[Any, tuple]:
    """The source's static-shape graph with PT2E quantize/dequantize pairs, calibrated."""
    from edgekit.convert._common import captured_logs, reason
    from edgekit.extras import require
    from edgekit.formats.torch import example_args, exported, program_module
    from edgekit.optimize.quantize.tflite_torch import calibrate_pt2e

    require("executorch")
    import torch

    shapes = {src.signature.inputs[0].name: (1, *calib.x.shape[1:])}
    args = example_args(src, shapes)
    try:
        with captured_logs("executorch", "torch", "torchao"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer,
                get_symmetric_quantization_config,
            )

            module = program_module(exported(src, shapes))
            graph = torch.export.export(module, args).module()
            quantizer = XNNPACKQuantizer().set_global(
                get_symmetric_quantization_config(is_per_channel=True)
            )
            return calibrate_pt2e(graph, quantizer, calib, args), args
    except Exception as exc:  # torch.export, annotation and observer errors alike
        raise UnsupportedModelError(
            f"{src.path}: ExecuTorch's XNNPACK quantizer cannot quantize this model: {reason(exc)}"
        ) from None


class ExecuTorchQuantize(QuantizePass):
    """The ``quant_executorch`` pass."""

    name = "quant_executorch"
    backend = ExecuTorchBackend()
