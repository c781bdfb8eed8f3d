"""ExecuTorch programs (`.pte`): told by their flatbuffer file identifier, read by ExecuTorch.

A `.pte` is a flatbuffer whose file identifier is "ET" plus a two-digit schema version
at bytes 4..8 ("ET12" for ExecuTorch 1.x). Its `forward` method's metadata, read by
ExecuTorch's own runtime, gives the input and output shapes and dtypes; a program
keeps no tensor names, so they are named by position (`input_0`, `output_0`), which
is how the parity check matches them to the source's.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ModelError
from edgekit.formats.base import FormatReader, ModelInfo, read_head
from edgekit.signature import Signature, TensorSpec

if TYPE_CHECKING:
    from edgekit.formats.base import ModelFile

__all__ = ["ExecuTorchReader", "load_method", "quiet_stderr"]

METHOD = "forward"

# c10::ScalarType codes (what TensorInfo.dtype() returns) -> numpy dtype names.
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
                6: "float32", 7: "float64", 11: "bool", 15: "bfloat16"}  # fmt: skip


def declared_size(head: bytes) -> int | None:
    """The file size a program's extended header ("eh00" at byte 8) declares: the
    flatbuffer, or the end of its segments (delegate blobs, weights) when it has them."""
    if len(head) < 32 or head[8:12] != b"eh00":
        return None
    length, program, base = struct.unpack_from("<IQQ", head, 12)
    segments = struct.unpack_from("<Q", head, 32)[0] if length >= 32 and len(head) >= 40 else 0
    return max(program, base + segments if segments else 0)


def is_program(head: bytes) -> bool:
    """Whether the first bytes of a file carry a .pte program's file identifier."""
    return len(head) >= 8 and head[4:6] == b"ET" and head[6:8].isdigit()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[list[str]]:
    """Collect what ExecuTorch's C++ writes to file descriptor 2 (its cpuinfo probes and
    load errors), which its Python exceptions do not carry; the lines land in the list."""
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def _why(log: list[str], exc: BaseException) -> str:
    errors = [ln.split("] ", 1)[-1] for ln in log if "rror" in ln or "nvalid" in ln]
    return errors[-1] if errors else str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_method(path: Path) -> tuple[Any, Any]:
    """(program, its `forward` method) loaded by ExecuTorch's runtime; a ModelError naming
    the file when ExecuTorch refuses it (a damaged or truncated program)."""
    from edgekit.extras import require

    require("executorch.runtime")
    from executorch.runtime import Runtime

    error: BaseException | None = None
    with quiet_stderr() as log:
        try:
            program = Runtime.get().load_program(str(path))
            names = set(program.method_names)
            method = program.load_method(METHOD) if METHOD in names else None
        except (RuntimeError, ValueError, OSError) as exc:
            error = exc
    if error is not None:
        raise ModelError(f"{path}: a damaged or truncated ExecuTorch program ({_why(log, error)})")
    if method is None:
        raise ModelError(f"{path}: the ExecuTorch program has no {METHOD} method ({sorted(names)})")
    return program, method


def _spec(name: str, info: Any) -> TensorSpec:
    dtype = SCALAR_TYPES.get(int(info.dtype()), f"scalar_type_{int(info.dtype())}")
    return TensorSpec(name, tuple(int(d) for d in info.sizes()), dtype)


def signature_of(method: Any) -> Signature:
    """The loaded method's inputs and outputs, named by position."""
    meta = method.metadata
    inputs = tuple(_spec(f"input_{i}", meta.input_tensor_meta(i)) for i in range(meta.num_inputs()))
    outputs = tuple(
        _spec(f"output_{i}", meta.output_tensor_meta(i)) for i in range(meta.num_outputs())
    )
    return Signature(inputs, outputs)


class ExecuTorchReader(FormatReader):
    """An ExecuTorch program: the flatbuffer file identifier "ET<nn>" at bytes 4..8."""

    name = "executorch"
    suffixes = (".pte",)

    def sniff(self, path: Path) -> bool:
        return is_program(read_head(path, 8))

    def read(self, model: ModelFile) -> ModelInfo:
        # A cut file is told from its header alone, before ExecuTorch (and torch) load.
        size, want = model.path.stat().st_size, declared_size(read_head(model.path, 40))
        if want is not None and size < want:
            raise ModelError(
                f"{model.path}: a damaged or truncated ExecuTorch program ({size} bytes of "
                f"the {want} its header declares)"
            )
        _, method = load_method(model.path)
        # Delegated subgraphs are opaque blobs to the program, so no op histogram or
        # parameter count can be read without the backend's own tools.
        return ModelInfo(signature_of(method), {}, 0)
