"""ONNX reader: graph inputs (minus initializers), outputs, ops and parameters.

External data (weights kept in side files) is read only from inside the model's
folder: `check_external_data` refuses `../`, absolute paths and symlinks that
lead out, before anything loads those files.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelError, first_line
from edgekit.extras import require
from edgekit.formats.base import FormatReader, ModelInfo
from edgekit.signature import Dim, InputRule, Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.formats.base import ModelFile


def _dtype(elem_type: int) -> str:
    from onnx import helper

    try:
        return str(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        return f"onnx_type_{elem_type}"


def _text(value: str | bytes) -> str:
    """A protobuf string field; ONNX is proto2, so a damaged file can hold invalid UTF-8 (bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        for sparse in attr.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for sub in attr.graphs:
            yield from _graph_tensors(sub)


def all_tensors(proto: Any) -> Iterator[Any]:
    """Every TensorProto of the model: initializers, Constant values, subgraphs, functions."""
    yield from _graph_tensors(proto.graph)
    for function in proto.functions:
        for node in function.node:
            yield from _node_tensors(node)


def external_files(proto: Any, path: Path) -> list[Path]:
    """The side files that hold external data, after checking that each stays in the folder."""
    from onnx import TensorProto

    base = Path(os.path.abspath(path)).parent
    root = base.resolve()
    files: dict[Path, None] = {}
    for tensor in all_tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL and not len(tensor.external_data):
            continue
        name = _text(tensor.name) or "(unnamed)"
        locations = [_text(e.value) for e in tensor.external_data if _text(e.key) == "location"]
        if not locations or not locations[0]:
            raise ModelError(
                f"{path}: tensor '{name}' keeps its data in an external file but does not "
                "say which; the model is damaged or incomplete"
            )
        location = locations[0]
        target = _inside(root, base, location)
        if target is None:
            raise ModelError(
                f"{path}: tensor '{name}' reads its external data from '{location}', which is "
                f"outside the model's folder {base}; edgekit refuses to follow it, so put the "
                "data file next to the model"
            )
        # As the caller spelled the model's path, so `relative_to(path.parent)` works.
        files[Path(os.path.normpath(Path(path).parent / location.replace("\\", "/")))] = None
    return list(files)


def _inside(root: Path, base: Path, location: str) -> Path | None:
    """`base/location` with symlinks resolved, or None when it leaves `root`."""
    if "\0" in location or os.path.isabs(location) or location.startswith(("\\", "/")):
        return None
    if len(location) > 1 and location[1] == ":":  # a Windows drive, absolute on that system
        return None
    try:
        target = (base / location.replace("\\", "/")).resolve()
    except (OSError, RuntimeError, ValueError):  # symlink loops, names the OS refuses
        return None
    return target if target.is_relative_to(root) and target != root else None


def check_external_data(proto: Any, path: Path) -> None:
    """Raise ModelError when any tensor's external data lies outside the model's folder."""
    external_files(proto, path)


def _spec(value_info: Any) -> TensorSpec:
    ttype = value_info.type.tensor_type
    shape: tuple[Dim, ...] | None = None
    if ttype.HasField("shape"):
        dims: list[Dim] = []
        for d in ttype.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(_text(d.dim_param))
            else:
                dims.append(None)
        shape = tuple(dims)
    return TensorSpec(_text(value_info.name), shape, _dtype(ttype.elem_type))


def load_proto(model: ModelFile, load_external_data: bool = False) -> Any:
    """Parse the model; external data is checked to stay in the folder before it is loaded."""
    onnx = require("onnx")
    try:
        proto = onnx.load(str(model.path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{model.path}: a damaged ONNX file ({exc})") from None
    check_external_data(proto, model.path)
    if load_external_data:
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(proto, str(Path(model.path).parent))
        except Exception as exc:  # missing or short side files
            raise ModelError(
                f"{model.path}: cannot read its external data ({first_line(exc)})"
            ) from None
    return proto


def _elements(path: Path, tensor_name: str, dims: Any) -> int:
    """Elements of a tensor with these dims; a negative dim is a damaged file."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        raise ModelError(
            f"{path}: tensor '{tensor_name}' declares a negative dimension {dims}; "
            "the file is damaged"
        )
    return math.prod(dims)


def _op_name(node: Any) -> str:
    op_type, domain = _text(node.op_type), _text(node.domain)
    return op_type if not domain or domain == "ai.onnx" else f"{domain}.{op_type}"


def _parse_graph(path: Path) -> Any | None:
    """The ModelProto when `path` parses as an ONNX model with a graph, else None.

    Random bytes fail to parse or leave no graph; external data is not loaded.
    """
    from onnx import ModelProto

    proto = ModelProto()
    try:
        with open(path, "rb") as fh:
            proto.ParseFromString(fh.read())
    except Exception:  # protobuf raises DecodeError and assorted RuntimeErrors on garbage
        return None
    if not (proto.ir_version > 0 and proto.HasField("graph") and len(proto.graph.node) > 0):
        return None
    return proto


def _onnx_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


class ONNXReader(FormatReader):
    """An ONNX protobuf with a graph; its external data files are part of the model.

    Without the onnx package a protobuf cannot be told from other bytes, so a file
    named .onnx is taken at its word and reading it names the extra to install.
    """

    name = "onnx"
    suffixes = (".onnx",)

    def __init__(self) -> None:
        self._parsed: tuple[Path, Any] | None = None  # sniff's parse, reused by files()

    def sniff(self, path: Path) -> bool:
        if not path.is_file():
            return False
        if not _onnx_installed():
            return path.suffix.lower() == ".onnx"
        proto = _parse_graph(path)
        self._parsed = None if proto is None else (path, proto)
        return proto is not None

    def files(self, path: Path) -> list[Path]:
        """The model and its external data files, refusing data that points outside the folder."""
        parsed, self._parsed = self._parsed, None
        if not _onnx_installed():
            return [path]
        proto = parsed[1] if parsed and parsed[0] == path else _parse_graph(path)
        if proto is None:
            return [path]
        return [path, *(f for f in external_files(proto, path) if f.is_file())]

    def read(self, model: ModelFile) -> ModelInfo:
        return _describe(model)

    def input_rules(
        self, model: ModelFile, shapes: Mapping[str, tuple[int, ...]]
    ) -> dict[str, InputRule]:
        from edgekit.formats.onnx_inputs import input_rules

        return input_rules(load_proto(model), shapes)


def _describe(model: ModelFile) -> ModelInfo:
    proto = load_proto(model)
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs = tuple(_spec(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(_spec(v) for v in graph.output)
    ops = Counter(_op_name(n) for n in graph.node)
    # A ConstantOfShape's shape input says how many weights to make; it is not a weight.
    shapes = {n.input[0] for n in graph.node if n.op_type == "ConstantOfShape" and n.input}
    params = 0
    for t in graph.initializer:
        n = _initializer_elements(model.path, t)  # also checks that its data fits its dims
        params += 0 if t.name in shapes else n
    by_name = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    params += _elements(model.path, _text(node.name), attr.t.dims)
        elif node.op_type == "ConstantOfShape" and node.input and node.input[0] in by_name:
            # Weights generated at load time (as in ONNX's "light" test models).
            params += _generated_elements(model.path, by_name[node.input[0]])
    return ModelInfo(Signature(inputs, outputs), dict(ops), params)


_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data",
                 "uint64_data")  # fmt: skip


def _initializer_elements(path: Path, tensor: Any) -> int:
    """Elements of an initializer, after checking that the data it holds fits its dims."""
    from onnx import TensorProto, helper

    name = _text(tensor.name)
    n = _elements(path, name, tensor.dims)
    if tensor.data_location == TensorProto.EXTERNAL:
        return n
    if tensor.raw_data:
        held = len(tensor.raw_data)
        if tensor.data_type in (TensorProto.INT4, TensorProto.UINT4):
            fits = held == (n + 1) // 2  # two 4-bit values per byte
        else:
            try:
                itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
            except (KeyError, ValueError, TypeError):
                return n  # a type unknown to this onnx: its size is not ours to check
            fits = held == n * itemsize
            held //= max(itemsize, 1)
    else:
        # Typed fields hold one value per element, two for complex, packed 4-bit ones fewer.
        held = sum(len(getattr(tensor, f)) for f in _TYPED_FIELDS)
        fits = n == 0 or held >= (n + 1) // 2
    if not fits:
        raise ModelError(
            f"{path}: tensor '{name}' declares {n} elements but holds data for {held}; "
            "the file is damaged"
        )
    return n


def _generated_elements(path: Path, shape_tensor: Any) -> int:
    """Elements a ConstantOfShape makes from its (small, 1-D int64) shape initializer."""
    from onnx import TensorProto, numpy_helper

    name = _text(shape_tensor.name)
    if (
        shape_tensor.data_location == TensorProto.EXTERNAL
        or _elements(path, name, shape_tensor.dims) > 64
    ):
        return 0  # not a literal shape: count nothing rather than read side files here
    try:
        shape = numpy_helper.to_array(shape_tensor).reshape(-1).tolist()
    except Exception as exc:  # wrong byte count or data type for the declared dims
        raise ModelError(
            f"{path}: the shape tensor '{name}' is damaged ({first_line(exc)})"
        ) from None
    if not all(isinstance(d, int) for d in shape):
        raise ModelError(f"{path}: the shape tensor '{name}' holds non-integers {shape}")
    return _elements(path, name, shape)
