"""onnx -> onnx, simplified: constant folding and graph cleanup with onnxslim.

Many real models compute their weights at run time (``ConstantOfShape`` feeding
``Reshape``) or come from an old IR whose initializers are also graph inputs;
converters such as onnx2tf and ONNX Runtime's calibrator stumble on both. Folding
them into plain initializers first makes the graph what those tools expect. The
result is checked against the source on ONNX Runtime before it is used.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.convert._common import onnx_to_fp16, reason, require
from edgekit.convert.graph import EdgeOptions
from edgekit.errors import EdgekitError, UnsupportedModelError
from edgekit.model import Model

# onnxslim (like onnx's shape inference) refuses IR < 4, where every initializer had to be
# a graph input too; IR 4 only relaxed that rule, so raising the number changes no meaning.
_MIN_IR = 4


def needs_simplify(path: Path) -> bool:
    """Whether the graph has what trips converters and calibrators: an IR older than 4,
    or weights computed at run time from constants (ConstantOfShape on an initializer)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    constants = {t.name for t in proto.graph.initializer}
    return proto.ir_version < _MIN_IR or any(
        n.op_type == "ConstantOfShape" and n.input and n.input[0] in constants
        for n in proto.graph.node
    )


def simplify(src: Model, out: Path, verify: bool = True) -> Path:
    """Write `src` constant-folded and simplified to `out`; with `verify`, check it on ORT.

    Raises UnsupportedModelError when onnxslim cannot take the model, finds nothing to
    fold, or its result does not reproduce the source's outputs.
    """
    require("onnxslim", "onnxslim")
    import onnx
    import onnxslim

    from edgekit.formats.onnx import load_proto

    proto = load_proto(src, load_external_data=True)
    before = len(proto.graph.node)
    proto.ir_version = max(proto.ir_version, _MIN_IR)
    initializers = {t.name for t in proto.graph.initializer}
    data_inputs = [v for v in proto.graph.input if v.name not in initializers]
    if len(data_inputs) != len(proto.graph.input):
        # Old IR listed initializers as inputs too; they are constants, not data.
        del proto.graph.input[:]
        proto.graph.input.extend(data_inputs)
    try:
        slim = onnxslim.slim(proto)
    except Exception as exc:  # onnxslim raises whatever its passes raise
        raise UnsupportedModelError(
            f"{src.path}: onnxslim cannot simplify it: {reason(exc)}"
        ) from None
    if slim is None:
        raise UnsupportedModelError(f"{src.path}: onnxslim returned no model")
    onnx.save(slim, str(out))
    if verify:
        _verify(src, out, before, len(slim.graph.node))
    return out


def _verify(src: Model, out: Path, before: int, after: int) -> None:
    from edgekit.model import load
    from edgekit.verify import compare_outputs

    try:
        parity = compare_outputs(src, load(out), count=2, precision="fp32")
    except EdgekitError as exc:
        raise UnsupportedModelError(f"the simplified model ({before} -> {after} nodes) "
                                    f"cannot be checked: {exc}") from None  # fmt: skip
    if not parity.passed:
        raise UnsupportedModelError(
            f"onnxslim's result ({before} -> {after} nodes) differs from the source: {parity.reason}"
        )


def run(src: Model, out: Path, opts: EdgeOptions) -> Path:
    """The edge: simplify (verified by the conversion itself, so not twice here)."""
    if opts.opset is not None:
        # An asked-for opset is the opset edge's job; this edge would silently ignore it.
        raise UnsupportedModelError(f"{src.path}: onnxslim does not change opsets")
    simplify(src, out, verify=False)
    if _same_graph(src.path, out):
        # Every path through this edge would repeat a shorter one on the same graph.
        out.unlink()
        raise UnsupportedModelError(
            f"{src.path}: onnxslim finds nothing to simplify, so the paths through it would "
            "repeat the direct ones"
        )
    if opts.precision == "fp16":
        onnx_to_fp16(out, out)
    return out


def _same_graph(a: Path, b: Path) -> bool:
    """Whether onnxslim left the graph as it was: the same IR version, input and output
    types and shapes, constants and ops (names may differ, and the shapes it infers for
    intermediate values are no change; a folded constant, a removed node or a fixed input
    dimension is)."""
    import onnx

    pa, pb = (onnx.load(str(p), load_external_data=False) for p in (a, b))

    def shape(p: onnx.ModelProto) -> tuple:
        g = p.graph
        io = [v.type.SerializeToString() for v in (*g.input, *g.output)]
        return (p.ir_version, io, len(g.initializer), sorted(n.op_type for n in g.node))

    return shape(pa) == shape(pb)
