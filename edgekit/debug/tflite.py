"""The first ONNX node that a TFLite result stops reproducing.

The interpreter keeps every tensor (``experimental_preserve_all_tensors=True``). A
tensor is mapped to an ONNX value by name where the converter kept the ONNX name
(a part of its ';'-joined name); onnx2tf names tensors after its TensorFlow ops and
fuses layers (MatMul + Add + Relu become one FULLY_CONNECTED), so otherwise a tensor
maps to the ONNX value of its shape (channels moved, as onnx2tf moves them) that it
reproduces within tolerance. The first node to blame is then the earliest, in
topological order, whose value and whose descendants' values no tensor reproduces:
a fused value whose consumer is reproduced is not a divergence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError, first_line
from edgekit.model import Model


def tflite_tensors(model: Model, feeds: Mapping[str, np.ndarray]) -> list[tuple[str, str, Any]]:
    """(tensor name, op type that made it, value) of every tensor an op computes, in run order."""
    import warnings

    from edgekit.runtimes.litert import _interpreter_module
    from edgekit.verify import fit_layout

    _, mod = _interpreter_module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "for debugging purposes only": that is the point
            interp = mod.Interpreter(model_path=str(model.path),
                                     experimental_preserve_all_tensors=True)  # fmt: skip
        interp.allocate_tensors()
        for detail, value in zip(interp.get_input_details(), feeds.values(), strict=False):
            arr = fit_layout(np.asarray(value), list(detail["shape"]))
            interp.set_tensor(detail["index"], arr.astype(detail["dtype"]))
        interp.invoke()
    except (ValueError, RuntimeError) as exc:  # the interpreter's own errors
        raise UnsupportedModelError(
            f"{model.path}: LiteRT cannot run it with every tensor kept: {first_line(exc)}"
        ) from None
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    out = []
    for op in interp._get_ops_details():  # noqa: SLF001 - the only listing of ops and outputs
        for i in op["outputs"]:
            if i >= 0:
                out.append((names.get(i, str(i)), op["op_name"], interp.get_tensor(i)))
    return out


def _fits(ref: np.ndarray, got: np.ndarray) -> np.ndarray | None:
    """`got` in `ref`'s shape (as is, or with the channel axis moved), or None."""
    if got.size != ref.size:
        return None
    for g in (got, *((np.moveaxis(got, -1, 1),) if got.ndim >= 3 else ())):
        if g.shape == ref.shape:
            return g
    return got.reshape(ref.shape) if got.ndim != ref.ndim else None


def blame(
    order: list[tuple[str, str, str]],
    ref: Mapping[str, np.ndarray],
    tensors: list[tuple[str, str, Any]],
    bound_of: Any,
    proto: Any,
) -> tuple[int, float, str, np.ndarray] | None:
    """(index in `order`, error, TFLite op, closest tensor) of the first ONNX value that no
    tensor reproduces.

    `bound_of(a)` is the error bound for ONNX value `a`. None when every value some
    tensor could stand for is reproduced.
    """
    reproduced: set[str] = set()
    closest: dict[str, tuple[float, str, np.ndarray]] = {}
    for tname, op, value in tensors:
        parts = {p.split(":")[0] for p in tname.split(";")}
        named = [o for _, _, o in order if o in parts]
        for _, _, oname in order:
            if named and oname not in named:
                continue
            a = np.asarray(ref.get(oname)) if oname in ref else None
            if a is None or a.dtype.kind not in "fiub":
                continue
            b = _fits(a, np.asarray(value))
            if b is None:
                continue
            err = (
                float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                if a.size
                else 0.0
            )
            if err <= bound_of(a):
                reproduced.add(oname)
            if oname not in closest or err < closest[oname][0]:
                closest[oname] = (err, op, b)
    # Descendants of each value, through the graph.
    readers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)

    def downstream_reproduced(name: str) -> bool:
        seen, todo = set(), [name]
        while todo:
            v = todo.pop()
            for node in readers.get(v, []):
                for o in node.output:
                    if o in reproduced:
                        return True
                    if o not in seen:
                        seen.add(o)
                        todo.append(o)
        return False

    for index, (_, _, oname) in enumerate(order):
        if oname in reproduced or oname not in closest or downstream_reproduced(oname):
            continue
        return (index, *closest[oname])
    return None
