"""onnx -> onnx at another opset: `onnx.version_converter`, then the ONNX checker.

The edge `edgekit convert m.onnx --to onnx --opset 17` takes, and the first hop
the conversion graph tries (after the direct paths) for a target whose
converter needs a newer opset than the source's.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.convert._common import onnx_to_fp16, reason, require
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import UnsupportedModelError
from edgekit.model import Model

# The opset an upgrade goes to when the user names none.
DEFAULT_OPSET = 17
# The default-domain opsets the installed onnx (1.23) defines; `--opset` accepts these.
# Kept as numbers so that `--help` need not import onnx; a test checks them against onnx.
OPSETS = (1, 28)


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    """Write `src` at opset `opts.opset` (DEFAULT_OPSET when None) to `out`."""
    require("onnx", "onnx")
    import onnx
    from onnx import version_converter

    proto = onnx.load(str(src.path))
    current = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    target = opts.opset or DEFAULT_OPSET
    # Unasked (a first hop before another edge), the edge only ever upgrades.
    if current == target or (opts.opset is None and current is not None and current > target):
        raise UnsupportedModelError(
            f"{src.path}: is already at opset {current}, so the opset converter has nothing to do"
        )
    try:
        converted = version_converter.convert_version(proto, target)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises RuntimeError/ValidationError with C++ text
        raise UnsupportedModelError(
            f"{src.path}: onnx.version_converter cannot take this model from opset {current} "
            f"to {target}: {reason(exc)}"
        ) from None
    onnx.save(converted, str(out))
    if opts.precision == "fp16":
        onnx_to_fp16(out, out)
    return out
