"""torch -> executorch: `torch.export`, lowered to XNNPACK, written as a `.pte` program.

The route ExecuTorch documents for Arm and x86 CPUs: `to_edge_transform_and_lower` with
the `XnnpackPartitioner` hands every subgraph XNNPACK supports to its delegate (the
rest stays on ExecuTorch's portable kernels), then `.to_executorch()` plans memory
and serializes the program. ExecuTorch plans memory for fixed shapes, so dynamic
dimensions are fixed first (batch 1, or as `--input-shape` says), as for TFLite.
`lower` is shared with the int8 quantizer (`edgekit.optimize.quantize.executorch`),
which lowers its PT2E-quantized graph the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from edgekit.convert._common import captured_logs, reason
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import EdgekitError, UnsupportedModelError
from edgekit.extras import require
from edgekit.model import Model

__all__ = ["lower", "run"]


def lower(src: Model, module: Any, args: tuple, out: Path, what: str = "convert") -> Path:
    """Export `module` on `args`, lower it to XNNPACK and write the program to `out`
    (atomically: a failed lowering leaves nothing there)."""
    require("executorch")
    import torch

    try:
        with captured_logs("executorch", "torch", "torchao"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
                XnnpackPartitioner,
            )
            from executorch.exir import to_edge_transform_and_lower

            program = torch.export.export(module, args)
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            buffer = edge.to_executorch().buffer
    except EdgekitError:
        raise
    except Exception as exc:  # torch.export, EXIR verifier and partitioner errors alike
        raise UnsupportedModelError(
            f"{src.path}: ExecuTorch cannot {what} this model: {reason(exc)}"
        ) from None
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(buffer)
    tmp.replace(out)
    return out


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    require("executorch")
    from edgekit.convert.torch_tflite import static_shapes
    from edgekit.formats.torch import check_shapes, example_args, exported, program_module

    if opts.precision != "fp32":
        raise UnsupportedModelError(
            f"edgekit writes ExecuTorch programs in fp32 or, through `optimize --quantize int8`, "
            f"int8; not {opts.precision}"
        )
    check_shapes(src, opts.input_shapes)
    shapes = static_shapes(src, opts.input_shapes)
    module = program_module(exported(src, shapes))
    return lower(src, module, example_args(src, shapes), out.with_suffix(".pte"))
