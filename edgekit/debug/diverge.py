"""The first node whose output diverges between an ONNX source and its converted result."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.model import Model

__all__ = ["Divergence", "first_divergence"]


@dataclass
class Divergence:
    """The first node whose output differs between a source and its result beyond tolerance."""

    node: str
    op: str
    output: str
    max_abs_error: float
    bound: float
    cosine: float
    index: int  # position of the node in the source's topological order
    compared: int  # values compared up to and including this one
    target_op: str = ""  # the result's op whose output stands for it, where names are not kept

    def sentence(self) -> str:
        where = f" (closest in the result: a {self.target_op} output)" if self.target_op else ""
        return (f"the first node that diverges is '{self.node}' ({self.op}), whose output "
                f"'{self.output}' differs by up to {self.max_abs_error:.3g} (bound "
                f"{self.bound:.3g}, cosine {self.cosine:.6f}){where}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load(m: Model | str | os.PathLike) -> Model:
    from edgekit.model import load

    return m if isinstance(m, Model) else load(m)


def _result_feeds(result: Model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [t.name for t in result.signature.inputs]
    if all(n in feeds for n in names):
        return {n: feeds[n] for n in names}
    return dict(zip(names, feeds.values(), strict=False))


def first_divergence(
    source: Model | str | os.PathLike,
    result: Model | str | os.PathLike,
    feeds: Sequence[Mapping[str, np.ndarray]] | None = None,
    *,
    precision: str = "fp32",
    tolerance: float | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Divergence | None:
    """The first node of ONNX `source` whose value in `result` is beyond tolerance, or None.

    `feeds` (keyed by the source's input names) default to one generated sample.
    Only values the result still names are compared; None means every compared
    value is within tolerance (or the result keeps no names to compare).
    """
    import onnx

    from edgekit.debug.marks import node_outputs, onnx_values, values_of
    from edgekit.inputs import generate_inputs
    from edgekit.verify import tolerance_for

    src, dst = _load(source), _load(result)
    if str(src.format) != "onnx":
        raise InputError(f"{src.path}: finding the diverging node needs an ONNX source, "
                         f"not {src.format}")  # fmt: skip
    if feeds is None:
        feeds = generate_inputs(src, count=1, seed=0, shapes=input_shapes)
    proto = onnx.load(str(src.path), load_external_data=False)
    order = node_outputs(proto)
    wanted = {o for _, _, o in order}
    tol = tolerance_for(precision, tolerance)

    def bound_of(a: np.ndarray) -> float:
        return (tol.atol or np.inf) * max(1.0, float(np.abs(a).max()) if a.size else 0.0)

    if str(dst.format) == "tflite":
        return _tflite_divergence(src, dst, feeds[0], proto, order, bound_of)
    pairs = []
    for f in feeds:
        pairs.append((onnx_values(src, f), values_of(dst, _result_feeds(dst, f), wanted)))
    compared = 0
    for index, (node, op, name) in enumerate(order):
        a_parts, b_parts = [], []
        for ref, got in pairs:
            if name not in ref or name not in got:
                break
            a, b = np.asarray(ref[name]), np.asarray(got[name])
            if a.dtype.kind not in "fiub" or a.size != b.size:
                break
            a_parts.append(a.astype(np.float64).ravel())
            b_parts.append(b.astype(np.float64).reshape(a.shape).ravel())
        else:
            if not a_parts:
                continue
            compared += 1
            a, b = np.concatenate(a_parts), np.concatenate(b_parts)
            err = float(np.max(np.abs(a - b))) if a.size else 0.0
            bound = bound_of(a)
            cos = _cosine(a, b)
            nan = bool(np.isnan(b).sum() > np.isnan(a).sum())
            if nan or err > bound or cos < tol.min_cosine:
                return Divergence(node, op, name, err, bound, cos, index, compared)
    return None


def _tflite_divergence(
    src: Model, dst: Model, feed: Mapping[str, np.ndarray], proto: Any, order: list, bound_of: Any
) -> Divergence | None:
    """`first_divergence` for a TFLite result (`edgekit.debug.tflite`), on one sample."""
    from edgekit.debug.marks import onnx_values
    from edgekit.debug.tflite import blame, tflite_tensors

    ref = onnx_values(src, feed)
    tensors = tflite_tensors(dst, _result_feeds(dst, feed))
    found = blame(order, ref, tensors, bound_of, proto)
    if found is None:
        return None
    index, err, tflite_op, got = found
    node, op, name = order[index]
    a = np.asarray(ref[name], np.float64).ravel()
    cos = _cosine(a, np.asarray(got, np.float64).ravel())
    return Divergence(node, op, name, err, bound_of(np.asarray(ref[name])), cos, index,
                      index + 1, tflite_op)  # fmt: skip


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0 or not np.isfinite(na * nb):
        return 0.0
    return float(np.dot(a, b) / (na * nb))
