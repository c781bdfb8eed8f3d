"""TensorFlow Lite for Microcontrollers: the `tflite-micro` package's interpreter on this host.

It runs TFLM's reference kernels and memory planner, the same C++ that a Cortex-M
firmware links, so an op without a TFLM kernel fails here as it would on the chip,
and `TFLiteMicroSession.arena_bytes` is the tensor arena the planner actually used
(read from TFLM's RecordingMicroAllocator), not an estimate. Times measured here are
this host's, on reference kernels: they are not the microcontroller's.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedModelError
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session, check_feeds, first_line
from edgekit.vocab import RUNTIME_FORMATS

__all__ = ["TFLiteMicro", "TFLiteMicroSession"]

# The arena handed to TFLM's planner: generous, since the figure reported is what it used.
DEFAULT_ARENA_BYTES = 64 * 1024 * 1024

_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
_CUSTOM_OP = re.compile(r"Didn't find op for custom opcode '([^']+)'")
_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def _with_stderr(fn: Callable[[], Any]) -> tuple[Any, str]:
    """Call `fn`, capturing what TFLM's C++ writes to file descriptor 2 (its MicroPrintf),
    since its Python exceptions carry only "failed to allocate tensors"."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result: Any = fn()
        except BaseException as exc:  # re-raised with the captured text below
            result = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", "replace")
    if isinstance(result, BaseException):
        result.tflm_log = text  # type: ignore[attr-defined]
        raise result
    return result, text


def _first_node(data: bytes, op: str) -> str:
    """'operator I (output tensor T 'name')' for the first node of the main graph using `op`."""
    from tflite_micro import runtime as tflm

    schema = tflm.schema_fb
    model = tflm.convert_bytearray_to_object(bytearray(data))
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    for i, node in enumerate(graph.operators or []):
        code = model.operatorCodes[node.opcodeIndex]
        custom = code.customCode.decode() if code.customCode else None
        if op in (custom, codes.get(tflm.get_builtin_code_from_operator_code(code))):
            outs = [int(t) for t in (node.outputs if node.outputs is not None else [])]
            if outs:
                name = graph.tensors[outs[0]].name.decode()
                return f"operator {i} (output tensor {outs[0]} '{name}')"
            return f"operator {i}"
    return "an operator"


def _fits(data: bytes, arena: int) -> bool:
    from tflite_micro import runtime as tflm

    try:
        _with_stderr(lambda: tflm.Interpreter.from_bytes(data, arena_size=arena))
    except RuntimeError:
        return False
    return True


def _smallest_arena(data: bytes, used: int, step: int = 16) -> int:
    """The smallest multiple of `step` that TFLM plans `data` in, searched up from `used`."""
    lo = -(-used // step) - 1  # in steps: lo does not fit (or is below the figure), hi does
    hi = lo + 1
    while not _fits(data, hi * step):
        lo, hi = hi, hi + 2 * (hi - lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _fits(data, mid * step) else (mid, hi)
    return hi * step


def _refusal(model: Model, data: bytes, exc: BaseException) -> UnsupportedModelError:
    log = getattr(exc, "tflm_log", "")
    missing = _MISSING_OP.search(log) or _CUSTOM_OP.search(log)
    if missing:
        op = missing.group(1)
        return UnsupportedModelError(
            f"{model.path}: TFLite Micro has no kernel for op {op}, used by "
            f"{_first_node(data, op)}; replace that layer or run on a target with a fuller runtime"
        )
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    why = lines[0] if lines else first_line(exc)
    return UnsupportedModelError(f"{model.path}: TFLite Micro refuses this model: {why}")


class TFLiteMicroSession(Session):
    """A model in TFLM's interpreter.

    `arena_used_bytes` is what TFLM's RecordingMicroAllocator reports allocated once the
    model is planned; `arena_bytes` is the smallest arena (in 16-byte steps) with which TFLM
    accepts the model, found by running its planner, which is what a firmware must reserve:
    kernels' temporary allocations while preparing can need more than the final total.
    """

    runtime = "tflite-micro"
    device = "CPU"
    threads = 1
    timed_region = "input copy + invoke on TFLM reference kernels (host time) + output copy"
    timing_source = "this host's time on TFLM's reference kernels, not the microcontroller's"

    def __init__(self, model: Model, interpreter: Any, arena_used_bytes: int) -> None:
        super().__init__(model, model.signature)
        self.interp = interpreter
        self.arena_used_bytes = arena_used_bytes
        self._arena: int | None = None
        self._names_out = [t.name for t in self.signature.outputs]

    @property
    def arena_bytes(self) -> int:
        """The smallest tensor arena TFLM runs this model in (bytes, a multiple of 16)."""
        if self._arena is None:
            self._arena = _smallest_arena(self.model.path.read_bytes(), self.arena_used_bytes)
        return self._arena

    def target_figures(self) -> dict[str, Any]:
        """The tensor arena TFLM's planner needs and the flash the flatbuffer takes: the
        same on the microcontroller, whose firmware links this planner and embeds this file."""
        return {
            "source": "TFLite Micro's memory planner and the model file, as on the device",
            "arena_bytes": self.arena_bytes,
            "arena_used_bytes": self.arena_used_bytes,
            "flash_bytes": int(self.model.size_bytes),
        }

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._names_out, self.bind_checked(feeds)(), strict=True))

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        return self.bind_checked(check_feeds(self.signature, feeds, self.model))

    def bind_checked(self, feeds: dict[str, np.ndarray]) -> Callable[[], list[np.ndarray]]:
        arrays = [np.ascontiguousarray(feeds[t.name]) for t in self.signature.inputs]
        set_input, invoke, get_output = (
            self.interp.set_input,
            self.interp.invoke,
            self.interp.get_output,
        )
        n_out = len(self._names_out)

        def call() -> list[np.ndarray]:
            for i, arr in enumerate(arrays):
                set_input(arr, i)
            invoke()
            return [get_output(i) for i in range(n_out)]

        return call

    def close(self) -> None:
        self.interp = None


class TFLiteMicro(Runtime):
    """TFLM's Python interpreter (package `tflite-micro`): reference kernels, exact arena."""

    name = "tflite-micro"
    formats = RUNTIME_FORMATS[name]
    package = "tflite-micro"
    module = "tflite_micro"
    extra = "tflite-micro"

    @classmethod
    def import_framework(cls) -> None:
        cls.require()
        from tflite_micro import runtime  # noqa: F401

    @classmethod
    def report_options(
        cls, device: str, threads: int | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {**dict(options or {}), "kernels": "TFLM reference"}

    @classmethod
    def open(
        cls,
        model: Model,
        *,
        device: str | None = None,
        threads: int | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TFLiteMicroSession:
        """Load `model` in TFLM; options: ``arena_size`` (bytes offered to the planner)."""
        cls.check_format(model)
        cls.require()
        if device not in (None, "CPU", "cpu"):
            raise UnsupportedModelError(
                f"the tflite-micro runtime runs on the CPU (asked for device {device!r})"
            )
        from tflite_micro import runtime as tflm

        model.signature  # noqa: B018 - read the flatbuffer first: a damaged file is a ModelError
        arena = int((options or {}).get("arena_size", DEFAULT_ARENA_BYTES))
        data = model.path.read_bytes()
        try:
            interp, _ = _with_stderr(lambda: tflm.Interpreter.from_bytes(data, arena_size=arena))
            _, log = _with_stderr(interp.print_allocations)
        except (RuntimeError, ValueError) as exc:
            raise _refusal(model, data, exc) from None
        used = _ARENA_TOTAL.search(log)
        if used is None:  # a TFLM build whose recording allocator prints otherwise
            raise UnsupportedModelError(
                f"{model.path}: TFLite Micro did not report its arena use (got {log[:80]!r})"
            )
        return TFLiteMicroSession(model, interp, int(used.group(1)))


def arena_bytes(model: Model) -> int:
    """The tensor arena TFLM's memory planner allocates for `model`, in bytes."""
    with TFLiteMicro.open(model) as session:
        return session.arena_bytes
