"""`edgekit debug reduce`: bisect an ONNX graph to the smallest subgraph whose conversion still fails.

A candidate is the nodes ``start..end`` of the source's topological order, cut
out with `onnx.utils.Extractor`: its outputs are node ``end``'s outputs, its
inputs every value that those nodes read from before ``start`` (graph inputs
included). Each candidate is fed the values the source computes there on one
generated sample, converted to the target without edgekit's own verification,
and compared with the source's values; it fails when the converter refuses it
or its outputs are beyond tolerance. The end is bisected first (the first
prefix that fails), then the start (the shortest suffix of that prefix that
still fails), assuming that a failure, once it appears, stays in larger cuts.

Example::

    from edgekit.debug.bisect import reduce
    r = reduce("model.onnx", "openvino", "model.reduced.onnx")
    print(r.sentence())
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError, InputError
from edgekit.model import Model

__all__ = ["Reduction", "reduce"]


@dataclass
class Reduction:
    """The smallest failing subgraph that `reduce` found and saved."""

    source: str
    output: str
    target: str
    nodes_before: int
    nodes_after: int
    first_node: str
    last_node: str
    ops: list[str]
    reason: str  # why its conversion fails
    tries: int

    def sentence(self) -> str:
        return (f"saved {self.output}: {self.nodes_after} of {self.nodes_before} nodes "
                f"('{self.first_node}' to '{self.last_node}': {', '.join(self.ops)}) still fail "
                f"to convert to {self.target} ({self.reason})")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Cutter:
    """Cuts subgraphs out of one ONNX graph and checks whether their conversion fails."""

    def __init__(self, src: Model, to: str, work: Path, values: Mapping[str, np.ndarray],
                 tolerance: float | None) -> None:  # fmt: skip
        import onnx
        from onnx.utils import Extractor

        self.src, self.to, self.work, self.values = src, to, work, values
        self.tolerance = tolerance
        self.proto = onnx.load(str(src.path))
        self.nodes = list(self.proto.graph.node)
        self.graph_inputs = [i.name for i in self.proto.graph.input]
        self.extractor = Extractor(self.proto)
        self.tries = 0

    def inputs_of(self, start: int, end: int) -> list[str]:
        produced = {o for n in self.nodes[:start] for o in n.output}
        inits = {t.name for t in self.proto.graph.initializer}
        read = [i for n in self.nodes[start : end + 1] for i in n.input if i and i not in inits]
        made_inside = {o for n in self.nodes[start : end + 1] for o in n.output}
        names = [i for i in dict.fromkeys(read)
                 if i not in made_inside and (i in produced or i in self.graph_inputs)]  # fmt: skip
        return names

    def cut(self, start: int, end: int) -> Path | None:
        import onnx

        outputs = [o for o in self.nodes[end].output if o]
        inputs = self.inputs_of(start, end)
        for name in (*inputs, *outputs):
            # A value shape inference cannot type (a custom-domain op's output) is still a cut.
            self.extractor.value_infos.setdefault(name, onnx.ValueInfoProto(name=name))
        try:
            sub = self.extractor.extract_model(inputs, outputs)
        except Exception:  # noqa: BLE001 - a cut the extractor cannot type: not a candidate
            return None
        path = self.work / f"cut_{start}_{end}.onnx"
        onnx.save(sub, str(path))
        return path

    def failure(self, path: Path) -> str | None:
        """Why converting the subgraph at `path` fails, or None when it converts and matches."""
        from edgekit.convert import convert
        from edgekit.convert.reference import check_precision
        from edgekit.model import load
        from edgekit.verify import compare_outputs

        self.tries += 1
        sub = load(path)
        feeds = {t.name: np.asarray(self.values[t.name]) for t in sub.signature.inputs}
        want = [np.asarray(self.values[t.name]) for t in sub.signature.outputs]
        out = path.with_name(path.stem + "_out")
        try:
            res = convert(sub, self.to, out, verify=False)
            # The same bounds convert checks at (float64 sources at float64's); else the default.
            precision, atol = check_precision(self.src, "fp32", self.tolerance)
            parity = compare_outputs(sub, res.model, [feeds], reference=[want],
                                     precision=precision if precision == "fp64" else None,
                                     tolerance=atol)  # fmt: skip
        except EdgekitError as exc:
            return str(exc).replace(f"{path}: ", "")[:300]
        return None if parity.passed else parity.reason


def reduce(
    model: Model | str | os.PathLike,
    to: str,
    out: str | os.PathLike,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    tolerance: float | None = None,
) -> Reduction:
    """Save at `out` the smallest subgraph of ONNX `model` whose conversion to `to` still fails.

    Raises InputError when `model` is not ONNX or its conversion does not fail.
    """
    from edgekit.debug.marks import onnx_values
    from edgekit.inputs import generate_inputs
    from edgekit.model import load
    from edgekit.outputs import atomic_write_bytes

    src = model if isinstance(model, Model) else load(model)
    if str(src.format) != "onnx":
        raise InputError(f"{src.path}: debug reduce bisects ONNX graphs, not {src.format} models; "
                         "convert it to ONNX first")  # fmt: skip
    dest = Path(out)
    if dest.suffix.lower() != ".onnx":
        dest = Path(f"{dest}.onnx")
    feeds = generate_inputs(src, count=1, seed=0, shapes=input_shapes)[0]
    values = {**feeds, **onnx_values(src, feeds)}
    with tempfile.TemporaryDirectory(prefix="edgekit-reduce-") as tmp:
        cutter = _Cutter(src, to, Path(tmp), values, tolerance)
        n = len(cutter.nodes)
        if n == 0:
            raise InputError(f"{src.path}: the graph has no nodes to reduce")

        def fails(start: int, end: int) -> str | None:
            path = cutter.cut(start, end)
            return None if path is None else cutter.failure(path)

        whole = cutter.failure(src.path)
        if whole is None:
            raise InputError(
                f"{src.path}: converts to {to} and matches its source, so there is nothing to reduce"
            )
        end, reason = _first(lambda e: fails(0, e), 0, n - 1)
        if end is None:  # no single-output prefix fails: keep the whole graph
            start, end, best, reason = 0, n - 1, src.path, whole
        else:
            start, why = _last(lambda s: fails(s, end), 0, end)
            reason = why or reason
            best = cutter.cut(start, end)
        assert best is not None
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, Path(best).read_bytes())
        nodes = cutter.nodes[start : end + 1]
        kept = load(dest).op_histogram
        return Reduction(
            str(src.path), str(dest), to, n, sum(kept.values()),
            nodes[0].name or nodes[0].op_type, nodes[-1].name or nodes[-1].op_type,
            sorted(kept), reason, cutter.tries,
        )  # fmt: skip


def _first(fails: Any, lo: int, hi: int) -> tuple[int | None, str]:
    """The smallest i in [lo, hi] with fails(i) (bisected), and its reason."""
    found, reason = None, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        why = fails(mid)
        if why is not None:
            found, reason, hi = mid, why, mid - 1
        else:
            lo = mid + 1
    return found, reason


def _last(fails: Any, lo: int, hi: int) -> tuple[int, str | None]:
    """The largest i in [lo, hi] with fails(i) (bisected); lo, known to fail, when none is."""
    found, reason = lo, None
    lo += 1
    while lo <= hi:
        mid = (lo + hi) // 2
        why = fails(mid)
        if why is not None:
            found, reason, lo = mid, why, mid + 1
        else:
            hi = mid - 1
    return found, reason
