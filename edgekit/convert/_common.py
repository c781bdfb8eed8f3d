"""Helpers shared by the converter edges: quiet frameworks, one-sentence errors."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import MissingDependencyError


def require(module: str, package: str) -> None:
    """Raise a MissingDependencyError naming the pip command when `module` is absent.

    A framework of an edgekit extra is named by its extra (`edgekit.extras.require`);
    a tool outside them by its own package.
    """
    import importlib.util

    from edgekit.extras import EXTRAS
    from edgekit.extras import require as require_extra

    if module.split(".")[0] in EXTRAS:
        require_extra(module)
    elif importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"the converter needs the Python package '{package}'; run: pip install {package}"
        )


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(record.getMessage())
        except Exception:  # a malformed log call in a third-party library
            pass


@contextlib.contextmanager
def captured_logs(*names: str) -> Iterator[list[str]]:
    """Collect warnings and errors of the named loggers (and silence their stdout chatter)."""
    handler = _Collect()
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg.handlers[:], lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers = [handler]
        lg.propagate = False
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            yield handler.records
    finally:
        for lg, (handlers, propagate) in zip(loggers, saved, strict=True):
            lg.handlers = handlers
            lg.propagate = propagate


_NOISE = re.compile(r"^(Traceback|File |\s|Exception from|Check '|\[|During handling)")


def reason(exc: BaseException) -> str:
    """The line of a converter's message that says why, without locations and stack frames."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not _NOISE.match(ln)] or lines or [type(exc).__name__]
    text = useful[-1] if len(useful[-1]) > 20 or len(useful) == 1 else useful[0]
    text = text.rstrip(".")
    return text if len(text) <= 300 else text[:297] + "..."


def onnx_to_fp16(src: Path, out: Path) -> None:
    """Store an ONNX model's float weights and compute in float16, keeping float32 I/O."""
    require("onnxconverter_common", "onnxconverter-common")
    import onnx
    from onnxconverter_common import float16

    proto = onnx.load(str(src))
    half = float16.convert_float_to_float16(proto, keep_io_types=True)
    onnx.save(half, str(out))
