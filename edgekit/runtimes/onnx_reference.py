"""The ONNX specification's own Python implementation (`onnx.reference`), as a reference runtime.

`onnx.reference.ReferenceEvaluator` implements every opset of the standard ops
in numpy, including the old versions ONNX Runtime has dropped (Gemm-6,
Upsample-7, ...). It is slow and is used to check results, never to benchmark
them, so it is `reference_only`: never listed, chosen by default or benchmarked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError, first_line
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session
from edgekit.vocab import RUNTIME_FORMATS


class ReferenceSession(Session):
    runtime = "onnx-reference"
    device = "CPU"
    threads = 1
    timed_region = "ReferenceEvaluator.run in numpy (a reference, not a performance figure)"

    def __init__(self, model: Model, evaluator: Any) -> None:
        super().__init__(model, model.signature)
        self.evaluator = evaluator
        self._out_names = [t.name for t in model.signature.outputs]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self.evaluator.run(None, feeds)
        except Exception as exc:  # the reference raises whatever numpy or an op raises
            raise UnsupportedModelError(
                f"{self.model.path}: the ONNX reference evaluator failed to run the model: "
                f"{first_line(exc)}"
            ) from None
        return {n: np.asarray(o) for n, o in zip(self._out_names, outs, strict=True)}

    def run_all(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every intermediate value by name, not only the graph outputs (for debugging)."""
        from edgekit.runtimes.base import check_feeds

        checked = check_feeds(self.signature, feeds, self.model)
        try:
            values = self.evaluator.run(None, checked, intermediate=True)
        except Exception as exc:
            raise UnsupportedModelError(
                f"{self.model.path}: the ONNX reference evaluator failed to run the model: "
                f"{first_line(exc)}"
            ) from None
        return {k: np.asarray(v) for k, v in values.items() if v is not None}

    def close(self) -> None:
        self.evaluator = None


class OnnxReference(Runtime):
    """`onnx.reference.ReferenceEvaluator`: every standard opset, numpy speed, CPU only."""

    name = "onnx-reference"
    formats = RUNTIME_FORMATS[name]
    package = "onnx"
    module = "onnx"
    extra = "onnx"
    reference_only = True

    @classmethod
    def open(
        cls,
        model: Model,
        *,
        device: str | None = None,
        threads: int | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Session:
        cls.require()
        cls.check_format(model)
        if device not in (None, "CPU", "cpu"):
            raise UnsupportedModelError(
                f"the onnx-reference runtime runs on the CPU only, not on {device}"
            )
        import onnx
        from onnx.reference import ReferenceEvaluator

        model.signature  # noqa: B018 - a damaged file is a ModelError before the evaluator sees it
        try:
            proto = onnx.load(str(model.path))
            evaluator = ReferenceEvaluator(proto)
        except Exception as exc:  # an op the reference does not implement, a bad graph
            raise UnsupportedModelError(
                f"{model.path}: the ONNX reference evaluator cannot run this model: "
                f"{first_line(exc)}"
            ) from None
        return ReferenceSession(model, evaluator)
