"""One reader per model format: detection from content, signature, ops and parameters.

A reader is a `FormatReader` subclass in its own module; a new format is that
module plus one line in `READERS`. Reader modules are imported on first use, and
import their frameworks only inside the methods that need them.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.errors import ModelError
from edgekit.formats.base import FormatReader, ModelInfo
from edgekit.vocab import Format

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["READERS", "FormatReader", "ModelInfo", "detect_format", "reader_for", "readers"]

# Format -> "module:class". Detection asks the readers in this order: cheap, certain
# checks (magic bytes, archive layout, XML root) first, ONNX's protobuf parse last.
READERS: dict[str, str] = {
    "tflite": "edgekit.formats.tflite:TFLiteReader",
    "executorch": "edgekit.formats.executorch:ExecuTorchReader",
    "torch": "edgekit.formats.torch:TorchReader",  # before keras: it names a refused pickle
    "keras": "edgekit.formats.keras:KerasReader",
    "savedmodel": "edgekit.formats.savedmodel:SavedModelReader",
    "openvino": "edgekit.formats.openvino:OpenVINOReader",
    "onnx": "edgekit.formats.onnx:ONNXReader",
}


@cache
def reader_for(fmt: Format | str) -> FormatReader:
    """The reader registered for `fmt`."""
    module, cls = READERS[str(fmt)].split(":")
    return getattr(importlib.import_module(module), cls)()


def readers() -> Iterator[FormatReader]:
    """Every registered reader, in detection order."""
    return (reader_for(name) for name in READERS)


def detect_format(path: str | os.PathLike) -> tuple[Format, list[Path]]:
    """Return the format of the model at `path` and the files that make it up."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file or folder")
    if p.is_file() and p.stat().st_size == 0:
        raise ModelError(f"{p}: the file is empty (0 bytes), not a model")
    for reader in readers():
        if reader.sniff(p):
            return Format(reader.name), reader.files(p)
    for reader in readers():
        reason = reader.refusal(p)
        if reason:
            raise ModelError(f"{p}: {reason}")
    raise ModelError(
        f"{p}: not a model edgekit recognizes (expected a TFLite flatbuffer, an ONNX protobuf, "
        "an OpenVINO IR .xml with its .bin, a SavedModel folder, a .keras/.h5 file, or a "
        "PyTorch .pt2 or TorchScript archive, or an ExecuTorch .pte program); the file may be corrupt or truncated"
    )
