"""One reader per model format: signature, operator histogram and parameter count.

A reader is a module with `read(model) -> ModelInfo`; a new format is a new
module plus one line in `_READERS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.model import Format, Signature

_READERS = {
    "tflite": "edgekit.formats.tflite",
    "onnx": "edgekit.formats.onnx",
    "openvino": "edgekit.formats.openvino",
    "keras": "edgekit.formats.keras",
    "savedmodel": "edgekit.formats.savedmodel",
    "torch": "edgekit.formats.torch",
}


@dataclass(frozen=True)
class ModelInfo:
    """What a reader learns from a model without running it."""

    signature: Signature
    ops: dict[str, int]
    params: int


def reader_for(fmt: Format | str) -> ModuleType:
    return importlib.import_module(_READERS[str(fmt)])
