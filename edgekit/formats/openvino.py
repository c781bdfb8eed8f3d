"""OpenVINO IR reader, through OpenVINO's own model reader."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelError
from edgekit.extras import require
from edgekit.formats.base import FormatReader, ModelInfo, read_head
from edgekit.signature import Dim, Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.formats.base import ModelFile


def port_name(port: Any, fallback: str) -> str:
    try:
        return port.get_any_name()
    except RuntimeError:  # unnamed port
        return fallback


def port_spec(port: Any, fallback: str) -> TensorSpec:
    pshape = port.get_partial_shape()
    shape: tuple[Dim, ...] | None
    if pshape.rank.is_dynamic:
        shape = None
    else:
        shape = tuple(d.get_length() if d.is_static else None for d in pshape)
    etype = port.get_element_type()
    try:
        dtype = str(etype.to_dtype())
    except Exception:  # element types with no numpy twin (e.g. u4)
        dtype = etype.get_type_name()
    return TensorSpec(port_name(port, fallback), shape, dtype)


_NOISE = ("Exception from", "Check '", "FrontEnd API failed", "[")


def explain_error(exc: BaseException) -> str:
    """OpenVINO's messages stack source locations; keep the sentence that says why."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_NOISE)] or lines or [type(exc).__name__]
    reason = useful[-1].rstrip(".")
    node = re.search(r"opset\d+::Constant ([^\[\s]+)", str(exc))
    if node and node.group(1) not in reason:
        reason += f" (at {node.group(1)})"
    return reason


def read_model(model: ModelFile) -> Any:
    ov = require("openvino")
    try:
        return ov.Core().read_model(str(model.path))
    except RuntimeError as exc:
        raise ModelError(
            f"{model.path}: OpenVINO cannot read this model: {explain_error(exc)}"
        ) from None
    except UnicodeDecodeError:
        # OpenVINO's error quoted bytes of the file that are not UTF-8 and its own message
        # could not be decoded (found by tests/test_fuzz.py).
        raise ModelError(
            f"{model.path}: OpenVINO cannot read this model: the IR holds bytes that are not "
            "UTF-8 text where it expects text; the file is damaged"
        ) from None


def _xml_root(path: Path) -> str:
    """The root tag of an XML file; ValueError (with the parser's reason) when it is not XML."""
    import xml.etree.ElementTree as ET

    try:
        return next(ET.iterparse(path, events=("start",)))[1].tag
    except (ET.ParseError, StopIteration) as exc:
        raise ValueError(str(exc) or "no root element") from None


class OpenVINOReader(FormatReader):
    """An OpenVINO IR: an XML file whose root is <net>, with its weights in a .bin beside it."""

    name = "openvino"
    suffixes = (".xml", ".bin")

    def _looks_xml(self, path: Path) -> bool:
        return read_head(path).lstrip().startswith(b"<")

    def sniff(self, path: Path) -> bool:
        if not self._looks_xml(path):
            return False
        try:
            return _xml_root(path) == "net"
        except ValueError:
            return False

    def files(self, path: Path) -> list[Path]:
        bin_path = path.with_suffix(".bin")
        if not bin_path.is_file():
            raise ModelError(
                f"{path}: OpenVINO IR without its weights file {bin_path.name}; "
                "keep the .xml and .bin together in one folder"
            )
        return [path, bin_path]

    def output_files(self, path: Path) -> list[Path]:
        return [path, path.with_suffix(".bin")]

    def refusal(self, path: Path) -> str | None:
        if not self._looks_xml(path):
            return None
        try:
            root_tag = _xml_root(path)
        except ValueError as exc:
            return f"unreadable XML, not an OpenVINO IR ({exc})"
        return f"XML whose root is <{root_tag}>, not an OpenVINO IR (<net>)"

    def read(self, model: ModelFile) -> ModelInfo:
        ov_model = read_model(model)
        try:
            return _describe(ov_model)
        except UnicodeDecodeError:  # a name in a damaged IR (found by tests/test_fuzz.py)
            raise ModelError(
                f"{model.path}: a tensor or op name in this IR is not UTF-8 text; "
                "the file is damaged"
            ) from None


def _describe(ov_model: Any) -> ModelInfo:
    inputs = tuple(port_spec(p, f"input_{i}") for i, p in enumerate(ov_model.inputs))
    outputs = tuple(port_spec(p, f"output_{i}") for i, p in enumerate(ov_model.outputs))
    ops: Counter[str] = Counter()
    params = 0
    for op in ov_model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Parameter", "Result"):
            continue
        ops[kind] += 1
        if kind == "Constant":
            params += math.prod(int(d) for d in op.get_output_shape(0))
    return ModelInfo(Signature(inputs, outputs), dict(ops), params)
