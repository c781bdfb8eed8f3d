"""Models, their formats and signatures.

A `Model` is a file or folder in one `Format`. The format is detected from the
content (magic bytes, archive members, XML root), never from the extension
alone, and each format's reader in `edgekit.formats` fills in the `Signature`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from edgekit.formats import detect_format, reader_for
from edgekit.signature import Dim, InputRule, Quantization, Signature, TensorSpec
from edgekit.vocab import FORMAT_NAMES, Format

# Re-exported: the vocabulary and the signature types lived here before vocab.py and
# signature.py; existing `from edgekit.model import ...` lines keep working.
__all__ = [
    "FORMAT_NAMES",
    "MAX_TENSOR_ELEMENTS",
    "Dim",
    "Format",
    "InputRule",
    "Model",
    "Quantization",
    "Signature",
    "TensorSpec",
    "detect_format",
    "load",
    "sha256_file",
]

# A declared tensor larger than this is refused before anything is allocated.
MAX_TENSOR_ELEMENTS = 2**31


@dataclass
class Model:
    """A model on disk. Heavy facts (signature, ops) are read on first use."""

    path: Path
    format: Format
    files: list[Path] = field(default_factory=list)
    trust_model: bool = False

    @cached_property
    def _info(self) -> Any:
        return reader_for(self.format).read(self)

    @property
    def signature(self) -> Signature:
        return self._info.signature

    def input_rules(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, InputRule]:
        """Values the inputs must take to run, read from the graph (`FormatReader.input_rules`)."""
        return reader_for(self.format).input_rules(self, shapes)

    @property
    def op_histogram(self) -> dict[str, int]:
        return self._info.ops

    @property
    def param_count(self) -> int:
        return self._info.params

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    @cached_property
    def sha256(self) -> str:
        """sha256 of the file, or of every file in order (name and bytes) for multi-file models."""
        if len(self.files) == 1 and self.files[0] == self.path:
            return sha256_file(self.path)
        h = hashlib.sha256()
        for p in self.files:
            h.update(str(p.relative_to(self.path.parent)).encode())
            h.update(bytes.fromhex(sha256_file(p)))
        return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(
    path: str | os.PathLike,
    *,
    trust_model: bool = False,
    example_input: str | list[str] | tuple[str, ...] | None = None,
) -> Model:
    """Open the model at `path`, detecting its format from its content.

    `path` may also be a PyTorch factory, `file.py:make_model` or `package.module:make_model`,
    run (only with `trust_model`) on `example_input` (SHAPE[:DTYPE] strings or an .npz) and
    exported to a temporary `.pt2`.
    """
    from edgekit.formats.torch_factory import export_factory, is_factory

    if is_factory(str(path)):
        path = export_factory(str(path), example_input, trust_model)
    p = Path(path)
    fmt, files = detect_format(p)
    return Model(path=p, format=fmt, files=files, trust_model=trust_model)
