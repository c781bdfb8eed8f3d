"""The small abstract class each quantization backend implements (NNCF's pattern).

The algorithm (`edgekit.optimize.quantize.algorithm`) is written once: it wraps the
calibration data, checks the precision, ranks layers by error and keeps the worst
in float. A backend only says what its runtime's tools can make and how: its
precisions (from the pass table), its options dataclass, `quantize` and
`layer_errors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import UnsupportedModelError


class Calibration:
    """Calibration samples, checked once: float32 batches of one sample each."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, np.float32)

    @classmethod
    def wrap(cls, x: Any, tool: str, precision: str) -> Calibration:
        """`x` as Calibration; UnsupportedModelError (one sentence) when there is none."""
        if isinstance(x, Calibration):
            return x
        if x is None or len(x) == 0:
            raise UnsupportedModelError(
                f"{tool} {precision} quantization needs calibration samples; pass --calib-data."
            )
        return cls(x)

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int) -> Calibration:
        """The first `n` samples."""
        return Calibration(self.x[:n])

    def samples(self) -> Iterator[np.ndarray]:
        """Each sample as a batch of one."""
        for i in range(len(self.x)):
            yield self.x[i : i + 1]


@dataclass(frozen=True)
class QuantOptions:
    """Knobs every backend has; each backend's options subclass adds its own.
    ``None`` means the backend picks for this CPU."""

    keep_float: tuple[str, ...] = ()  # layers (TFLite tensors, ONNX/OpenVINO nodes) left float
    keep_float_types: tuple[str, ...] = ()  # op types left float (each format's own names)

    def with_float(self, *names: str) -> QuantOptions:
        """These options with `names` kept float as well."""
        return replace(self, keep_float=tuple(dict.fromkeys((*self.keep_float, *names))))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class LayerError:
    """How much quantization damages one layer's output (bigger is worse)."""

    name: str  # what a backend takes in ``keep_float`` to keep it in float
    op: str
    error: float
    metric: str  # "rmse/scale" (TFLite), "noise/signal" (ONNX), "relative rmse" (OpenVINO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "error": float(f"{self.error:.6g}"),
            "metric": self.metric,
        }


class QuantBackend(ABC):
    """One runtime's quantization tools.

    `format` is the format it writes (its row in `PASSES` gives its precisions),
    `tool` names it in messages, `Options` is its options dataclass.
    """

    format: ClassVar[str]
    tool: ClassVar[str]
    # Op types whose int8 kernels are the point of quantizing: never kept float for speed.
    compute_types: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type[QuantOptions]] = QuantOptions

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this backend makes, from the pass table."""
        from edgekit.optimize.passes import quantizer_for

        info = quantizer_for(self.format)
        return info.precisions if info is not None else ()

    def own(self, options: QuantOptions | None) -> QuantOptions:
        """`options` as this backend's `Options` (the base class's fields carried over)."""
        if isinstance(options, self.Options):
            return options
        if options is None:
            return self.Options()
        return self.Options(
            keep_float=options.keep_float, keep_float_types=options.keep_float_types
        )

    def options_for(self, profile: Any) -> QuantOptions:
        """This backend's options as a profile sets them (default: none set)."""
        return self.Options()

    def alternatives(self, options: QuantOptions) -> list[tuple[str, QuantOptions]]:
        """Other int8 settings worth measuring in auto mode, as (label, options); the
        measurement decides between them and the default."""
        return []

    @abstractmethod
    def quantize(
        self,
        model: Any,
        precision: str,
        calib: Calibration | None,
        options: QuantOptions,
        out: Path,
    ) -> Path:
        """Write `model` at `precision` to `out` (its folder exists); `calib` is set for
        calibrated precisions and `options` is an instance of `Options`."""

    @abstractmethod
    def layer_errors(
        self, model: Any, calib: Calibration, options: QuantOptions
    ) -> list[LayerError]:
        """Each layer's int8 error as this runtime's tools measure it (any order)."""
