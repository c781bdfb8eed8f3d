"""torch -> openvino: `openvino.convert_model` on the ExportedProgram (or TorchScript module).

The input shapes are given from the model's signature, so static dimensions stay
static and dynamic ones dynamic (OpenVINO would otherwise leave every spatial
dimension of an ExportedProgram open); `--input-shape` fixes them. fp32 keeps the
weights as they are (`save_model` compresses to fp16 by default).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from edgekit.convert._common import captured_logs, reason, require
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model


def _shapes(src: Model, opts: EdgeOptions) -> list[Any] | None:
    import openvino as ov

    shapes = []
    for t in src.signature.inputs:
        if t.name in opts.input_shapes:
            shapes.append(ov.PartialShape(list(opts.input_shapes[t.name])))
        elif t.shape is None:
            return None
        else:
            shapes.append(ov.PartialShape([d if isinstance(d, int) else -1 for d in t.shape]))
    return shapes


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    require("openvino", "openvino")
    import openvino as ov

    from edgekit.formats.torch import PT2, check_shapes, example_args, load_torch

    check_shapes(src, opts.input_shapes)
    loaded = load_torch(src)
    kwargs: dict[str, Any] = {}
    shapes = _shapes(src, opts)
    if shapes is not None:
        kwargs["input"] = shapes
    if loaded.kind != PT2:  # TorchScript needs example inputs to trace shapes and types
        kwargs["example_input"] = example_args(src, opts.input_shapes)
    try:
        with captured_logs("openvino", "torch"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ov_model = ov.convert_model(loaded.obj, **kwargs)
    except Exception as exc:  # OpConversionFailure, RuntimeError, torch errors
        raise UnsupportedModelError(
            f"{src.path}: OpenVINO's PyTorch frontend cannot convert this model: {reason(exc)}"
        ) from None
    out = out.with_suffix(".xml")
    ov.save_model(ov_model, str(out), compress_to_fp16=opts.precision == "fp16")
    return out
