"""Models, their formats and signatures.

A `Model` is a file or folder in one `Format`. The format is detected from the
content (magic bytes, archive members, XML root), never from the extension
alone, and each format's reader in `edgekit.formats` fills in the `Signature`.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from edgekit.errors import ModelError

# A declared tensor larger than this is refused before anything is allocated.
MAX_TENSOR_ELEMENTS = 2**31


class Format(StrEnum):
    """The model formats edgekit reads."""

    KERAS = "keras"
    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"
    ONNX = "onnx"
    OPENVINO = "openvino"
    TORCH = "torch"


FORMAT_NAMES = [f.value for f in Format]

Dim = int | str | None  # int: static; str: a named symbol; None: unknown/dynamic


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


@dataclass
class Model:
    """A model on disk. Heavy facts (signature, ops) are read on first use."""

    path: Path
    format: Format
    files: list[Path] = field(default_factory=list)
    trust_model: bool = False

    @cached_property
    def _info(self) -> Any:
        from edgekit.formats import reader_for

        return reader_for(self.format).read(self)

    @property
    def signature(self) -> Signature:
        return self._info.signature

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


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str | os.PathLike) -> tuple[Format, list[Path]]:
    """Return the format of the model at `path` and the files that make it up."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file or folder")
    if p.is_dir():
        return _detect_folder(p)
    size = p.stat().st_size
    if size == 0:
        raise ModelError(f"{p}: the file is empty (0 bytes), not a model")
    with open(p, "rb") as fh:
        head = fh.read(64)
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return Format.TFLITE, [p]
    if head.startswith(_HDF5_MAGIC):
        return Format.KERAS, [p]
    if head.startswith(b"PK\x03\x04"):
        return _detect_zip(p)
    if head.lstrip().startswith(b"<"):
        return _detect_xml(p)
    onnx_files = _onnx_files(p)
    if onnx_files:
        return Format.ONNX, onnx_files
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        from edgekit.formats.torch_archive import refuse_pickle

        raise refuse_pickle(p, p.read_bytes())  # a legacy (non-zip) torch.save or a raw pickle
    raise ModelError(
        f"{p}: not a model edgekit recognizes (expected a TFLite flatbuffer, an ONNX protobuf, "
        "an OpenVINO IR .xml with its .bin, a SavedModel folder, a .keras/.h5 file, or a "
        "PyTorch .pt2 or TorchScript archive); the file may be corrupt or truncated"
    )


def _detect_folder(p: Path) -> tuple[Format, list[Path]]:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if (p / name).is_file():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            return Format.SAVEDMODEL, files
    raise ModelError(
        f"{p}: is a folder but not a SavedModel (no saved_model.pb inside); "
        "pass a model file or a SavedModel folder"
    )


def _detect_zip(p: Path) -> tuple[Format, list[Path]]:
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(
            f"{p}: a damaged zip archive, not a readable .keras model ({exc})"
        ) from None
    if "config.json" in names or "metadata.json" in names:
        return Format.KERAS, [p]
    from edgekit.formats.torch_archive import PICKLE, refuse_zip_pickle, sniff_zip

    kind = sniff_zip(sorted(names))
    if kind == PICKLE:
        raise refuse_zip_pickle(p, sorted(names))
    if kind is not None:
        return Format.TORCH, [p]
    raise ModelError(
        f"{p}: a zip archive that is neither a .keras model (no config.json) nor a PyTorch "
        ".pt2 or TorchScript archive"
    )


def _detect_xml(p: Path) -> tuple[Format, list[Path]]:
    import xml.etree.ElementTree as ET

    try:
        root_tag = next(ET.iterparse(p, events=("start",)))[1].tag
    except (ET.ParseError, StopIteration) as exc:
        raise ModelError(f"{p}: unreadable XML, not an OpenVINO IR ({exc})") from None
    if root_tag != "net":
        raise ModelError(f"{p}: XML whose root is <{root_tag}>, not an OpenVINO IR (<net>)")
    bin_path = p.with_suffix(".bin")
    if not bin_path.is_file():
        raise ModelError(
            f"{p}: OpenVINO IR without its weights file {bin_path.name}; "
            "keep the .xml and .bin together in one folder"
        )
    return Format.OPENVINO, [p, bin_path]


def _onnx_files(p: Path) -> list[Path]:
    """[model, its external data files] when `p` parses as an ONNX model with a graph, else [].

    Random bytes fail to parse or leave no graph. External data that points outside
    the model's folder is refused here, before anything can read it.
    """
    try:
        from onnx import ModelProto
    except ImportError:
        return [p] if p.suffix.lower() == ".onnx" else []
    proto = ModelProto()
    try:
        with open(p, "rb") as fh:
            proto.ParseFromString(fh.read())
    except Exception:  # protobuf raises DecodeError and assorted RuntimeErrors on garbage
        return []
    if not (proto.ir_version > 0 and proto.HasField("graph") and len(proto.graph.node) > 0):
        return []
    from edgekit.formats.onnx import external_files

    return [p, *(f for f in external_files(proto, p) if f.is_file())]


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
