"""TFLite from a PyTorch model: litert-torch's PT2E quantization (`torchao`'s
``prepare_pt2e`` / ``convert_pt2e`` with litert-torch's ``PT2EQuantizer``), then
``litert_torch.convert`` with that quantizer's config.

This is the route litert-torch documents for quantized TFLite from PyTorch: the
quantizer annotates the exported graph, observers calibrate on the user's samples, and
the converter lowers the quantize/dequantize pairs to int8 TFLite kernels. Static int8
gives a full-integer model whose inputs and outputs are int8 (the parity check and the
bundle's runner quantize and dequantize them with the tensors' own scales). The
alternative, torch -> ONNX -> onnx2tf SavedModel -> TFLite converter, needs onnx2tf's
tool environment and two more conversions, each a chance to drift from PyTorch.

The result is checked against PyTorch itself on the calibration samples before it is
returned: a quantized model that does not track PyTorch's own outputs is an error here,
not a candidate. Only when PT2E fails on a precision it makes (litert-torch cannot
lower the graph, or its result does not track PyTorch) does the TFLite backend fall back
to that longer route (`savedmodel_route`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, UnsupportedModelError, VerificationError
from edgekit.optimize.quantize.backend import Calibration

# Precisions made here: int8-float-fallback is static PT2E too (ops the quantizer does not
# annotate stay float), dynamic is PT2E's dynamic config, fp16/fp32 the plain edge.
PT2E = {"int8": False, "int8-float-fallback": False, "dynamic": True}


def is_torch(model: Any) -> bool:
    """Whether `model` (a Model or a path) is a PyTorch model."""
    from edgekit.model import Format, Model, load

    if isinstance(model, str | Path):
        if not Path(model).is_file():  # a SavedModel folder
            return False
        model = load(model)
    return isinstance(model, Model) and model.format == Format.TORCH


def quantize(model: Any, precision: str, calib: Calibration | None, io_dtype: str | None,
             keep_float: tuple[str, ...], out: Path) -> Path:  # fmt: skip
    """Write the PyTorch `model` (a Model or a .pt2 path) as a `precision` TFLite file."""
    from edgekit.convert.graph import EdgeOptions
    from edgekit.convert.torch_tflite import run as convert_edge
    from edgekit.model import Model, load

    src = model if isinstance(model, Model) else load(model)
    if precision in ("fp32", "fp16"):
        return convert_edge(src, out, EdgeOptions(precision=precision))
    if precision not in PT2E:
        raise UnsupportedModelError(
            f"litert-torch's PT2E quantizer makes int8 and dynamic-range TFLite models, not "
            f"{precision}; choose int8, int8-float-fallback, dynamic or fp16."
        )
    if keep_float:
        raise UnsupportedModelError(
            "litert-torch's PT2E quantizer cannot keep chosen layers in float."
        )
    if io_dtype not in (None, "int8"):
        raise UnsupportedModelError(
            f"litert-torch's int8 models take and give int8, not {io_dtype}; this profile "
            f"needs {io_dtype} I/O, which edgekit makes only from a Keras or SavedModel source."
        )
    assert calib is not None or PT2E[precision]  # the algorithm wraps it for int8
    try:
        _pt2e(src, PT2E[precision], calib, out)
        if calib is not None:
            check_against_torch(src, out, calib)
    except (UnsupportedModelError, VerificationError) as exc:
        raise PT2EFailed(str(exc)) from None
    return out


class PT2EFailed(EdgekitError):
    """PT2E could not make a precision it makes for this model (the fallback's cue);
    its message is the failure's one sentence."""


def savedmodel_route(src: Any, calib: Calibration | None, work: Path) -> tuple[Path, Any]:
    """The fallback's source: `src` as a SavedModel (torch -> ONNX -> onnx2tf, verified
    by `edgekit.convert`) and the calibration samples in the layout it takes (onnx2tf
    turns NCHW image inputs into NHWC)."""
    from edgekit.convert import convert
    from edgekit.convert.layout import NCHW_TO_NHWC

    res = convert(src, "savedmodel", work / "pt2e-fallback-savedmodel")
    if calib is not None and res.layouts:
        calib = Calibration(calib.x.transpose(NCHW_TO_NHWC))
    return Path(res.model.path), calib


def _pt2e(src: Any, dynamic: bool, calib: Calibration | None, out: Path) -> None:
    from edgekit.convert._common import captured_logs, quiet_tensorflow, reason
    from edgekit.extras import require
    from edgekit.formats.torch import example_args, exported, program_module

    require("litert_torch")  # names edgekit[torch] when absent
    quiet_tensorflow()
    import torch

    name = src.signature.inputs[0].name
    shapes = {name: (1, *calib.x.shape[1:])} if calib is not None else {}
    args = example_args(src, shapes or None)
    try:
        with captured_logs("litert_torch", "torch", "absl"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch
            from litert_torch.quantize import pt2e_quantizer as pq
            from litert_torch.quantize.quant_config import QuantConfig

            module = program_module(exported(src, shapes or None))
            # A static shape export again: PT2E annotates the graph of one fixed shape.
            graph = torch.export.export(module, args).module()
            config = pq.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
            quantizer = pq.PT2EQuantizer().set_global(config)
            graph = calibrate_pt2e(graph, quantizer, calib, args, fold_quantize=False)
            edge = litert_torch.convert(graph, args,
                                        quant_config=QuantConfig(pt2e_quantizer=quantizer))  # fmt: skip
            edge.export(str(out))
    except EdgekitError:
        raise
    except Exception as exc:  # torch export, observer, MLIR and TFLite errors alike
        raise UnsupportedModelError(
            f"{src.path}: litert-torch cannot quantize this model: {reason(exc)}"
        ) from None


def calibrate_pt2e(graph: Any, quantizer: Any, calib: Calibration | None, args: tuple,
                   fold_quantize: bool = True) -> Any:  # fmt: skip
    """`graph` (a static-shape export's module) annotated by `quantizer`, its observers run
    on each calibration sample (on `args` when there are none: dynamic ranges), converted
    to quantize/dequantize pairs: PT2E's prepare, calibrate, convert."""
    import torch
    from torchao.quantization.pt2e import quantize_pt2e

    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for x in calib.samples() if calib is not None else [a.numpy() for a in args]:
            graph(torch.from_numpy(x))
    return quantize_pt2e.convert_pt2e(graph, fold_quantize=fold_quantize)


def check_against_torch(src: Any, out: Path, calib: Calibration, count: int = 32,
                        kind: str = "TFLite") -> None:  # fmt: skip
    """VerificationError unless the `kind` file at `out` tracks PyTorch's own outputs on the
    calibration samples (int8 tolerance: direction and top-1, as `edgekit.verify` judges)."""
    from edgekit.model import load
    from edgekit.verify import compare_outputs

    name = src.signature.inputs[0].name
    feeds = [{name: x} for x in calib.head(count).samples()]
    parity = compare_outputs(src, load(out), feeds, precision="int8")
    if not parity.passed:
        out.unlink(missing_ok=True)
        raise VerificationError(
            f"{src.path.name}: the PT2E int8 {kind} model does not track PyTorch on the "
            f"calibration samples: {parity.reason}"
        )
