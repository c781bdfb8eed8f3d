"""Which values an ONNX graph's inputs must take to run: indices in range, shapes that fit.

Random integers are fine for most inputs, but not for one that a Gather indexes a
table with (an index past the table's end is an error in every runtime) or one that
an Expand or Reshape reads as a shape. Each integer input is followed through the
ops that pass values on unchanged (Cast, Identity, Squeeze, ...) to the ops that
read it, and each such op says what it accepts, from the shapes that ONNX shape
inference gives once the inputs' shapes are fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgekit.signature import InputRule

__all__ = ["input_rules"]

# Ops whose output holds the same values as their first input (in another shape or type).
_PASS_THROUGH = {"Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Reshape"}

Shape = tuple[int, ...]


def _axis(node: Any, rank: int) -> int:
    from onnx import helper

    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
    return int(axis) + rank if int(axis) < 0 else int(axis)


def _indexing(node: Any, shape_of: Callable[[str], Shape | None]) -> InputRule | None:
    """Gather / GatherElements / Scatter*: indices within the data's indexed dimension."""
    data = shape_of(node.input[0])
    if not data:
        return None
    if node.op_type in ("GatherND", "ScatterND"):
        dim = min(data)  # each index addresses a leading dimension; the smallest bounds all
    else:
        dim = data[_axis(node, len(data))]
    if dim <= 0:
        return None
    return InputRule(0, dim - 1, reason=f"indices of {node.op_type} '{node.name}' over {dim}")


def _expand_shape(data: Shape, length: int) -> Shape:
    """A shape of `length` dims that `data` broadcasts to: its own dims, 1s widened to 2."""
    pad = max(0, length - len(data))
    dims = ([1] * pad + list(data))[-length:]
    return tuple(2 if d == 1 and i >= pad else d for i, d in enumerate(dims))


def _reshape_shape(data: Shape, length: int) -> Shape:
    """A shape of `length` dims holding `data`'s elements (the rest folded into -1)."""
    if length == len(data):
        return tuple(data)
    if length > len(data):
        return (*data, *([1] * (length - len(data))))
    return (*data[: length - 1], -1)


def _shaping(node: Any, shape_of: Callable[[str], Shape | None], length: int) -> InputRule | None:
    """Expand / Reshape / Tile / ConstantOfShape: a shape input the op accepts."""
    where = f"the shape of {node.op_type} '{node.name}'"
    if node.op_type == "ConstantOfShape":
        return InputRule(1, 3, reason=where)
    if node.op_type == "Tile":
        return InputRule(1, 2, reason=f"the repeats of Tile '{node.name}'")
    data = shape_of(node.input[0])
    if data is None:
        return None
    make = _expand_shape if node.op_type == "Expand" else _reshape_shape
    return InputRule(value=make(data, length), reason=where)


# (op type, input index) -> how that input's valid values are read from the graph.
_INDEXED = {("Gather", 1), ("GatherElements", 1), ("GatherND", 1), ("Scatter", 1),
            ("ScatterElements", 1), ("ScatterND", 1)}  # fmt: skip
_SHAPED = {("Expand", 1), ("Reshape", 1), ("Tile", 1), ("ConstantOfShape", 0)}


def _shapes(proto: Any, fixed: Mapping[str, Shape]) -> dict[str, Shape]:
    """Every value's static shape that shape inference finds with the inputs fixed."""
    import onnx

    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    for vi in proto.graph.input:
        if vi.name in fixed and vi.type.HasField("tensor_type"):
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in fixed[vi.name]:
                dims.add().dim_value = int(d)
    try:
        proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # noqa: BLE001 - an op inference does not know: use what is declared
        pass
    out: dict[str, Shape] = {t.name: tuple(int(d) for d in t.dims) for t in proto.graph.initializer}
    for vi in (*proto.graph.value_info, *proto.graph.output, *proto.graph.input):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            if all(d is not None for d in dims):
                out.setdefault(vi.name, tuple(int(d) for d in dims))  # type: ignore[arg-type]
    out.update({k: tuple(v) for k, v in fixed.items()})
    return out


def input_rules(proto: Any, shapes: Mapping[str, Shape]) -> dict[str, InputRule]:
    """The rule for each input of `proto` (shapes fixed to `shapes`) that an op constrains.

    Where two ops constrain one input, index ranges intersect and a shape value wins.
    """
    inits = {t.name for t in proto.graph.initializer}
    readers: dict[str, list[tuple[Any, int]]] = {}
    for node in proto.graph.node:
        for k, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, k))
    known = _shapes(proto, shapes)
    rules: dict[str, InputRule] = {}
    for vi in proto.graph.input:
        if vi.name in inits or vi.name not in shapes:
            continue
        rule: InputRule | None = None
        seen, todo = set(), [vi.name]
        while todo:
            name = todo.pop()
            for node, k in readers.get(name, []):
                if node.op_type in _PASS_THROUGH and k == 0:
                    for o in node.output:
                        if o not in seen:
                            seen.add(o)
                            todo.append(o)
                    continue
                got = None
                if (node.op_type, k) in _INDEXED:
                    got = _indexing(node, known.get)
                elif (node.op_type, k) in _SHAPED and name == vi.name and len(shapes[name]) == 1:
                    got = _shaping(node, known.get, shapes[name][0])
                rule = _merge(rule, got)
        if rule is not None:
            rules[vi.name] = rule
    return rules


def _merge(a: InputRule | None, b: InputRule | None) -> InputRule | None:
    if a is None or b is None:
        return a or b
    if a.value is not None or b.value is not None:
        return a if a.value is not None else b
    low, high = max(a.low or 0, b.low or 0), min(a.high or 0, b.high or 0)
    return InputRule(low, max(low, high), reason=f"{a.reason}; {b.reason}")
