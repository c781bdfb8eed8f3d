"""One error family for everything a user can get wrong.

Every exception below is a user mistake or an unsupported model: the CLI prints
its message as one sentence and exits with code 2. Any other exception is a bug
in edgekit and is allowed to crash loudly.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Base class: a user mistake or an unsupported model, said in one sentence."""

    exit_code = 2


class ModelError(EdgekitError):
    """A model file is missing, corrupt, truncated or of an unknown format."""


class UnsupportedModelError(EdgekitError):
    """A runtime or converter cannot take this model (names the op, node or tensor)."""


class InputError(EdgekitError):
    """Feeds, input files or datasets do not match what the model expects."""


class DatasetError(InputError):
    """A dataset source is missing, empty or malformed."""


class ProfileError(EdgekitError):
    """A hardware profile is unknown or does not validate."""


class ReportError(EdgekitError):
    """A report JSON is unreadable, of another schema version, or inconsistent."""


class BundleError(EdgekitError):
    """A deploy bundle is incomplete, tampered with, or unsafe to extract."""


class MissingDependencyError(EdgekitError):
    """An optional framework is not installed; the message names the pip command."""


class VerificationError(EdgekitError):
    """A converted or optimized model does not compute what its source did."""


class LimitError(EdgekitError):
    """A model breaks a limit of the target profile (size, memory, shapes, ops)."""


class OutputLockedError(EdgekitError):
    """Another edgekit run is writing to the same output folder."""


class RegressionDetected(EdgekitError):
    """`compare --fail-on-regression` found a significant slowdown (exit 1, not 2)."""

    exit_code = 1


def first_line(exc: BaseException | str) -> str:
    """The first non-blank line of an exception's message (its type name when it has none).

    Frameworks' errors run to many lines of stack and source locations; one sentence
    of edgekit quotes only the line that says what went wrong.
    """
    text = exc if isinstance(exc, str) else str(exc)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if lines:
        return lines[0]
    return "unknown error" if isinstance(exc, str) else type(exc).__name__
