"""Signatures: the ordered inputs and outputs of a model, as plain data.

A leaf module (it imports nothing from edgekit), so format readers, runtimes and
reports can all describe tensors without importing `edgekit.model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Dim", "InputRule", "Quantization", "Signature", "TensorSpec"]

Dim = int | str | None  # int: static; str: a named symbol; None: unknown/dynamic


@dataclass(frozen=True)
class InputRule:
    """The values one input must take for its model to run, as its graph says.

    Indices index a dimension (`low`..`high`, inclusive); a shape input must be a shape
    its op accepts (`value`). `reason` names the op that imposes it, for messages.
    """

    low: int | None = None
    high: int | None = None
    value: tuple[int, ...] | None = None
    reason: str = ""


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = (q - zero_point) * scale."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"scale": list(self.scale), "zero_point": list(self.zero_point), "axis": self.axis}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, shape (dynamic dims as None or a symbol), dtype, quantization."""

    name: str
    shape: tuple[Dim, ...] | None
    dtype: str
    quantization: Quantization | None = None

    @property
    def is_dynamic(self) -> bool:
        return self.shape is None or any(not isinstance(d, int) for d in self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": None if self.shape is None else list(self.shape),
            "dtype": self.dtype,
            "quantization": self.quantization.to_dict() if self.quantization else None,
        }


@dataclass(frozen=True)
class Signature:
    """Ordered inputs and outputs of a model."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }
