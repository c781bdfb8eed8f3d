"""torch -> tflite: litert-torch (`litert_torch.convert`) on the model's module.

TFLite takes static shapes here: dynamic dimensions are fixed (the batch to 1,
others to 1, or as `--input-shape` says) and the module is exported again at
those shapes. With `channels_last` (`--channels-last`), 4-D inputs and outputs
are taken and given as NHWC (`litert_torch.to_channel_last_io`), the layout
image models on TFLite devices expect; the parity check transposes to compare.
fp16 stores weights in float16 through TensorFlow's converter flags.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from edgekit.convert._common import captured_logs, quiet_tensorflow, reason
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import EdgekitError, UnsupportedModelError
from edgekit.extras import require as require_extra
from edgekit.model import Model


def static_shapes(
    src: Model, input_shapes: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """`input_shapes` plus a concrete shape for every other input with a dynamic dimension."""
    from edgekit.inputs import concrete_shape

    fixed = dict(input_shapes)
    for t in src.signature.inputs:
        if t.name not in fixed and t.is_dynamic:
            fixed[t.name] = concrete_shape(t)
    return fixed


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    require_extra("litert_torch")  # names edgekit[torch] when absent
    quiet_tensorflow()
    from edgekit.formats.torch import check_shapes, example_args, exported, program_module

    check_shapes(src, opts.input_shapes)
    shapes = static_shapes(src, opts.input_shapes)
    module = program_module(exported(src, shapes))
    args = example_args(src, shapes)
    try:
        with captured_logs("litert_torch", "torch", "absl"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch

            if opts.channels_last:
                module, args = _channels_last(litert_torch, module, args, src)
            flags: dict[str, Any] = {}
            if opts.precision == "fp16":
                import tensorflow as tf

                flags = {"optimizations": [tf.lite.Optimize.DEFAULT],
                         "target_spec.supported_types": [tf.float16]}  # fmt: skip
            edge = litert_torch.convert(module, args, _litert_converter_flags=flags or None)
            edge.export(str(out))
    except EdgekitError:
        raise
    except Exception as exc:  # litert-torch raises torch export errors, MLIR and TF errors
        raise UnsupportedModelError(
            f"{src.path}: litert-torch cannot convert this model: {reason(exc)}"
        ) from None
    return out


def _channels_last(litert_torch: Any, module: Any, args: tuple, src: Model) -> tuple[Any, tuple]:
    """Wrap `module` to take and give its 4-D tensors as NHWC; the example args follow."""
    four_d_in = [i for i, a in enumerate(args) if a.dim() == 4]
    four_d_out = [i for i, t in enumerate(src.signature.outputs) if t.shape and len(t.shape) == 4]
    wrapped = litert_torch.to_channel_last_io(module, args=four_d_in, outputs=four_d_out)
    nhwc = tuple(a.permute(0, 2, 3, 1).contiguous() if i in four_d_in else a
                 for i, a in enumerate(args))  # fmt: skip
    return wrapped, nhwc
