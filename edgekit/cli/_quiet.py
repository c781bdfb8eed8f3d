"""Quiet by default: the frameworks' own chatter kept off the user's terminal.

TensorFlow, TFLite and the converters write from C++ straight to file descriptors 1 and
2 (absl and oneDNN lines, "fully_quantize: 0, inference_type: 6 ...", "Created TensorFlow
Lite XNNPACK delegate"), which no logging level reaches. ``quiet_output`` points those
descriptors at a temporary file for the whole command while Python's ``sys.stdout`` and
``sys.stderr`` write to the terminal only for edgekit's own code (click, rich
progress called from edgekit or the running script), so edgekit's output is shown and
the frameworks' (C or Python ``print``) is not. Python warnings and the frameworks'
Python loggers below ERROR go to the same file. When the command fails (an uncaught
exception, or an exit code other than 0, 2 or 130), the captured output is replayed on
stderr, so a framework's error is never swallowed; ``verbose`` captures nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

# Python loggers of the frameworks, kept to ERROR and above unless verbose.
FRAMEWORK_LOGGERS = ("tensorflow", "absl", "keras", "nncf", "openvino", "onnxruntime", "jax",
                     "h5py", "tf2onnx", "numexpr")  # fmt: skip
# Exit codes after which the captured output is not replayed: success, a user error
# (one sentence says it), an interrupt.
QUIET_EXITS = (0, 2, 130)


def quiet_environment() -> None:
    """Environment variables that keep TensorFlow's C++ start-up chatter down at source."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # its banner, and run-to-run jitter
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


# Modules that write on someone else's behalf: the caller above them decides.
_RELAYS = ("rich", "click", "io", "codecs", "logging", "warnings", "contextlib", "threading",
           "traceback", "edgekit.cli._quiet")  # fmt: skip
_OWN = ("edgekit", "__main__", "tests", "benchmarks", "samples")


def _own_caller() -> bool:
    """Whether the code writing now is edgekit's (or the script's), not a framework's."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(_RELAYS):
            return name.startswith(_OWN)
        frame = frame.f_back
    return True  # only relays: a rich refresh thread of edgekit's progress


class _Routed(io.TextIOBase):
    """A text stream that sends edgekit's writes to the terminal and the rest to a log."""

    def __init__(self, terminal: io.TextIOWrapper, log: io.TextIOWrapper) -> None:
        self.terminal, self.log = terminal, log

    def write(self, text: str) -> int:
        return (self.terminal if _own_caller() else self.log).write(text)

    def flush(self) -> None:
        self.terminal.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.terminal.isatty()

    def fileno(self) -> int:
        return self.terminal.fileno()

    def __getattr__(self, name: str) -> object:
        return getattr(self.terminal, name)


@contextlib.contextmanager
def quiet_output(verbose: bool = False) -> Iterator[None]:
    """Capture the frameworks' output (fd 1 and 2, warnings, their loggers) for the block.

    The block's ``SystemExit`` code decides whether the capture is replayed (module
    docstring). With ``verbose`` nothing is captured.
    """
    if verbose:
        yield
        return
    quiet_environment()
    sys.stdout.flush()
    sys.stderr.flush()
    capture = tempfile.TemporaryFile(prefix="edgekit-frameworks-")
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    old_streams = sys.stdout, sys.stderr
    old_showwarning = warnings.showwarning
    old_levels = {name: logging.getLogger(name).level for name in FRAMEWORK_LOGGERS}
    out = io.TextIOWrapper(os.fdopen(os.dup(saved[1]), "wb"), line_buffering=True,
                           encoding=old_streams[0].encoding, errors="replace")  # fmt: skip
    err = io.TextIOWrapper(os.fdopen(os.dup(saved[2]), "wb"), line_buffering=True,
                           encoding=old_streams[1].encoding, errors="replace")  # fmt: skip
    for fd in (1, 2):
        os.dup2(capture.fileno(), fd)
    log = io.TextIOWrapper(os.fdopen(os.dup(capture.fileno()), "wb"), line_buffering=True)
    sys.stdout, sys.stderr = _Routed(out, log), _Routed(err, log)

    def to_capture(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = to_capture
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    failed = True
    try:
        yield
        failed = False
    except KeyboardInterrupt:
        failed = False
        raise
    except SystemExit as exc:
        failed = exc.code not in QUIET_EXITS and exc.code is not None
        raise
    finally:
        for stream in (out, err, log):
            stream.flush()
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)
        sys.stdout, sys.stderr = old_streams
        warnings.showwarning = old_showwarning
        for name, level in old_levels.items():
            logging.getLogger(name).setLevel(level)
        if failed:
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            if text.strip():
                sys.stderr.write("--- output of the frameworks (edgekit --verbose shows it "
                                 "always) ---\n" + text)  # fmt: skip
                sys.stderr.flush()
        for stream in (out, err, log):
            with contextlib.suppress(OSError):
                stream.close()
        capture.close()
