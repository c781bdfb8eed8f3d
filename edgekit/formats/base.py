"""The base of every format reader: recognize a model by its content, then describe it.

A reader is a small class with a `name` (a `Format` value), the `suffixes` its files
usually carry (for messages and output names, never for detection), and four
methods. `detect_format` asks each registered reader in turn; a new format is one
module with a `FormatReader` subclass plus one line in `edgekit.formats.READERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from edgekit.signature import InputRule, Signature

__all__ = ["FormatReader", "ModelFile", "ModelInfo", "read_head"]


class ModelFile(Protocol):
    """What a reader needs of a model: where it is and its files.

    `edgekit.model.Model` satisfies it; readers name this instead of `Model`, so that
    `formats` does not import `model` (which imports `formats`) even for type checking.
    """

    path: Path
    files: list[Path]
    trust_model: bool


@dataclass(frozen=True)
class ModelInfo:
    """What a reader learns from a model without running it."""

    signature: Signature
    ops: dict[str, int]
    params: int


def read_head(path: Path, n: int = 64) -> bytes:
    """The first `n` bytes of a file (b"" for a folder), for magic-number checks."""
    if not path.is_file():
        return b""
    with open(path, "rb") as fh:
        return fh.read(n)


class FormatReader:
    """One model format: detection from content, the files a model is made of, and reading."""

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()

    def sniff(self, path: Path) -> bool:
        """Whether the file or folder at `path` is, by its content, a model of this format.

        Looks at magic bytes, archive layout, XML root or protobuf fields, never at the
        extension alone; reads as little as it can and imports no framework unless
        the format cannot be told apart without one.
        """
        raise NotImplementedError

    def files(self, path: Path) -> list[Path]:
        """The files that make up the model at `path` (which `sniff` accepted), model first.

        Raises ModelError when a part is missing (an IR without its .bin) or unsafe.
        """
        return [path]

    def output_files(self, path: Path) -> list[Path]:
        """The files a model written at `path` is made of, model first, existing or not.

        Where a converter's result is renamed to, file by file (an IR's .bin beside its .xml).
        """
        return [path]

    def refusal(self, path: Path) -> str | None:
        """Why `path` looks like this format but is not a readable one, or None.

        Called only when no reader accepted `path`, so that the error names the near
        miss ("a zip archive without config.json") instead of a generic sentence.
        """
        return None

    def read(self, model: ModelFile) -> ModelInfo:
        """The model's signature, operator histogram and parameter count, without running it."""
        raise NotImplementedError

    def input_rules(
        self, model: ModelFile, shapes: Mapping[str, tuple[int, ...]]
    ) -> dict[str, InputRule]:
        """What values inputs must take for the model to run, by input name ({} if none).

        `shapes` are the concrete input shapes the values will have. A format whose
        graph can be read (ONNX) says which inputs are indices or shapes; others say nothing.
        """
        return {}
