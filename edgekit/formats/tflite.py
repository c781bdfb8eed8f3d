"""TFLite flatbuffer reader, written against the schema with bounds checks.

Reading the flatbuffer directly (rather than through an interpreter) lets
`inspect` describe models that no interpreter accepts, and turns a damaged file
into one clear error instead of a crash.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelError
from edgekit.formats.base import FormatReader, ModelInfo, read_head
from edgekit.signature import Quantization, Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.formats.base import ModelFile

# TensorType enum of the TFLite schema -> numpy dtype name.
TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
    6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128",
    12: "uint64", 13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4",
}  # fmt: skip

ITEMSIZE = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "int16": 2,
             "int8": 1, "float64": 8, "uint64": 8, "uint32": 4, "uint16": 2, "bool": 1}  # fmt: skip


class _Malformed(Exception):
    pass


class FlatBuffer:
    """Bounds-checked access to flatbuffer tables, vectors and strings."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _u(self, fmt: str, pos: int) -> Any:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise _Malformed(f"offset {pos} outside the file")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def root(self) -> int:
        return self._u("<I", 0)

    def field_pos(self, table: int, index: int) -> int | None:
        vtable = table - self._u("<i", table)
        vsize = self._u("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        off = self._u("<H", vtable + slot)
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default: Any = 0) -> Any:
        pos = self.field_pos(table, index)
        return default if pos is None else self._u(fmt, pos)

    def indirect(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else pos + self._u("<I", pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self.indirect(table, index)
        if pos is None:
            return 0, 0
        n = self._u("<I", pos)
        if n > len(self.data):
            raise _Malformed(f"vector length {n} larger than the file")
        return pos + 4, n

    def scalars(self, table: int, index: int, fmt: str) -> list[Any]:
        start, n = self.vector(table, index)
        size = struct.calcsize(fmt)
        if start + n * size > len(self.data):
            raise _Malformed("vector runs past the end of the file")
        return list(struct.unpack_from(f"<{n}{fmt}", self.data, start)) if n else []

    def tables(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return [start + 4 * i + self._u("<I", start + 4 * i) for i in range(n)]

    def string(self, table: int, index: int) -> str:
        pos = self.indirect(table, index)
        if pos is None:
            return ""
        n = self._u("<I", pos)
        if pos + 4 + n > len(self.data):
            raise _Malformed("string runs past the end of the file")
        return self.data[pos + 4 : pos + 4 + n].decode("utf-8", "replace")


def op_names() -> dict[int, str]:
    """BuiltinOperator code -> name, from LiteRT's schema ({} when LiteRT is absent)."""
    try:
        from ai_edge_litert.schema_py_generated import BuiltinOperator
    except ImportError:
        return {}
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _tensor(buf: FlatBuffer, t: int) -> TensorSpec:
    shape = buf.scalars(t, 0, "i")
    signature = buf.scalars(t, 7, "i")
    if signature and len(signature) == len(shape):
        dims = tuple(None if s < 0 else s for s in signature)
    else:
        dims = tuple(shape)
    type_code = buf.scalar(t, 1, "<b")
    dtype = TENSOR_TYPES.get(type_code)
    if dtype is None:
        raise _Malformed(f"unknown tensor type {type_code}")
    quant = None
    q = buf.indirect(t, 4)
    if q is not None:
        scale = buf.scalars(q, 2, "f")
        zero = buf.scalars(q, 3, "q")
        if scale:
            axis = buf.scalar(q, 6, "<i") if len(scale) > 1 else None
            quant = Quantization(tuple(float(s) for s in scale), tuple(int(z) for z in zero), axis)
    return TensorSpec(buf.string(t, 3), dims, dtype, quant)


class TFLiteReader(FormatReader):
    """A TFLite flatbuffer: the file identifier "TFL3" at bytes 4..8."""

    name = "tflite"
    suffixes = (".tflite",)

    def sniff(self, path: Path) -> bool:
        head = read_head(path, 8)
        return len(head) >= 8 and head[4:8] == b"TFL3"

    def read(self, model: ModelFile) -> ModelInfo:
        data = model.path.read_bytes()
        try:
            return _read(FlatBuffer(data))
        except (_Malformed, struct.error, UnicodeDecodeError, IndexError) as exc:
            raise ModelError(f"{model.path}: a damaged or truncated TFLite file ({exc})") from None


def _read(buf: FlatBuffer) -> ModelInfo:
    root = buf.root()
    subgraphs = buf.tables(root, 2)
    if not subgraphs:
        raise _Malformed("no subgraphs")
    main = subgraphs[0]
    tensors = buf.tables(main, 0)

    def specs(index: int) -> tuple[TensorSpec, ...]:
        out = []
        for i in buf.scalars(main, index, "i"):
            if not 0 <= i < len(tensors):
                raise _Malformed(f"tensor index {i} out of range")
            out.append(_tensor(buf, tensors[i]))
        return tuple(out)

    names = op_names()
    codes = []
    for oc in buf.tables(root, 1):
        builtin = max(buf.scalar(oc, 3, "<i"), buf.scalar(oc, 0, "<b"))
        custom = buf.string(oc, 1)
        codes.append(custom if custom else names.get(builtin, f"BUILTIN_{builtin}"))
    ops: Counter[str] = Counter()
    for sg in subgraphs:
        for op in buf.tables(sg, 3):
            idx = buf.scalar(op, 0, "<I")
            ops[codes[idx] if idx < len(codes) else f"opcode_{idx}"] += 1

    # Parameters: elements of tensors backed by a non-empty constant buffer.
    buffers = buf.tables(root, 4)
    params = 0
    for t in tensors:
        b = buf.scalar(t, 2, "<I")
        if 0 < b < len(buffers):
            _, nbytes = buf.vector(buffers[b], 0)
            dtype = TENSOR_TYPES.get(buf.scalar(t, 1, "<b"), "")
            if nbytes and dtype in ITEMSIZE:
                params += nbytes // ITEMSIZE[dtype]
            elif buf.scalar(buffers[b], 2, "<Q"):
                params += buf.scalar(buffers[b], 2, "<Q") // ITEMSIZE.get(dtype, 1)
    return ModelInfo(Signature(specs(1), specs(2)), dict(ops), params)


def tensor_names(model: ModelFile) -> list[str]:
    """Names of every tensor of the main subgraph, by index (for error messages)."""
    buf = FlatBuffer(model.path.read_bytes())
    try:
        main = buf.tables(buf.root(), 2)[0]
        return [buf.string(t, 3) for t in buf.tables(main, 0)]
    except (_Malformed, struct.error, IndexError):
        return []
