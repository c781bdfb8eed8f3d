"""The range of every number a user can type, declared once, as click types.

Each numeric option of each command takes one of the types below, so click checks
the value while it parses the command line, before any model is read. A value out
of range (or not a number, or NaN/inf) is an `OptionValueError`: exit 2 and one
sentence naming the option, the value and the range. The bounds are meant to catch
typos and runaway settings, not to second-guess a user: each is far above what a
real run needs, and each is stated here, once.
"""

from __future__ import annotations

import math
import os
from typing import Any

import click

from edgekit.errors import InputError

# Thread counts and concurrency: up to this many per logical core, unless the user
# passes --allow-oversubscribe; past that, runtimes spend their time switching threads
# (and ONNX Runtime with 100,000 threads neither finishes nor answers SIGTERM).
CORES_MULTIPLE = 4
# ...and never more than this, flag or not: far beyond any CPU, and inside a C int.
OVERSUBSCRIBED_MAX = 1024
PROCESSES_MAX = 64  # `bench --processes`: each is a fresh interpreter, run one after another
RUNS_MAX = 10**6  # runs of a benchmark's steady state or warm-up
SECONDS_MAX = 86_400.0  # one day: any longer time limit is a typo
BATCH_MAX = 65_536  # batch sizes (bench, eval, train)
EPOCHS_MAX = 10_000  # training and fine-tuning epochs, and --patience
SEED_MAX = 2**32 - 1  # numpy's seed range


class OptionValueError(InputError, click.BadParameter):
    """A command-line number out of its declared range.

    An edgekit error (one sentence, exit 2) that click also knows as a bad parameter,
    so click's own entry points (CliRunner, shell completion) treat it as a usage error.
    """

    def __init__(self, message: str) -> None:
        click.BadParameter.__init__(self, message)


def _opt(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    opts = getattr(param, "opts", None) or [param.name or "value"]
    return max(opts, key=len)


def _num(x: float) -> str:
    """86400.0 -> 86400, 0.5 -> 0.5: bounds written as a person writes them."""
    return str(int(x)) if float(x).is_integer() else repr(x)


class Number(click.ParamType):
    """A whole number (`kind=int`) or a finite real number (`kind=float`) in an interval.

    `low`/`high` are the bounds (None: unbounded, but always finite); `low_open` and
    `high_open` exclude them; `unit` is said after the range (" s" for seconds).
    """

    def __init__(
        self,
        kind: type,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
        unit: str = "",
    ) -> None:
        self.kind = kind
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.unit = unit
        self.name = "integer" if kind is int else "float"

    def bounds(self, ctx: click.Context | None) -> tuple[float | None, float | None, str]:
        """The bounds that apply under `ctx`, and a note explaining the upper one."""
        return self.low, self.high, ""

    def describe(self, ctx: click.Context | None = None) -> str:
        """The range as the error messages and --help say it: `1..64`, `[0, 1)`, `(0, 86400] s`."""
        low, high, _ = self.bounds(ctx)
        if self.kind is int and not self.low_open and not self.high_open:
            lo = "" if low is None else _num(low)
            hi = "" if high is None else _num(high)
            return f"{lo}..{hi}{self.unit}"
        lo = "(-inf" if low is None else ("(" if self.low_open else "[") + _num(low)
        hi = "inf)" if high is None else _num(high) + (")" if self.high_open else "]")
        return f"{lo}, {hi}{self.unit}"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        # --help shows the range in place of INTEGER/FLOAT: `--threads 1..8`, `--prune (0,1)`
        return self.describe(ctx).replace(" ", "")

    def _below(self, low: float) -> str:
        if low == 0:
            return "must be positive" if self.low_open else "must not be negative"
        return f"must be {'greater than' if self.low_open else 'at least'} {_num(low)}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        opt = _opt(param)
        rng = self.describe(ctx)
        number = self._parse(value, opt, rng)
        low, high, note = self.bounds(ctx)
        if low is not None and (number <= low if self.low_open else number < low):
            raise OptionValueError(f"{opt} {number} {self._below(low)}; its range is {rng}{note}")
        if high is not None and (number >= high if self.high_open else number > high):
            raise OptionValueError(f"{opt} must be in {rng}, got {number}{note}")
        return number

    def _parse(self, value: Any, opt: str, rng: str) -> int | float:
        if isinstance(value, bool):
            raise OptionValueError(f"{opt} {value!r} is not a number; its range is {rng}")
        if self.kind is int:
            if isinstance(value, int):
                return value
            try:
                return int(str(value).strip())
            except ValueError:
                raise OptionValueError(
                    f"{opt} {str(value)!r} is not a whole number; its range is {rng}"
                ) from None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise OptionValueError(
                f"{opt} {str(value)!r} is not a number; its range is {rng}"
            ) from None
        if not math.isfinite(number):
            raise OptionValueError(f"{opt} {number} is not a finite number; its range is {rng}")
        return number


def logical_cores() -> int:
    """This machine's logical cores, as os.cpu_count() counts them (1 if unknown)."""
    return os.cpu_count() or 1


_OVERSUBSCRIBE = "edgekit.allow_oversubscribe"


class PerCore(Number):
    """Threads or requests in flight: 1..CORES_MULTIPLE x logical cores, or up to
    OVERSUBSCRIBED_MAX after the command's --allow-oversubscribe flag."""

    def __init__(self) -> None:
        super().__init__(int, 1, None)

    def bounds(self, ctx: click.Context | None) -> tuple[float | None, float | None, str]:
        if ctx is not None and ctx.meta.get(_OVERSUBSCRIBE):
            return 1, OVERSUBSCRIBED_MAX, " (the most, even with --allow-oversubscribe)"
        cores = logical_cores()
        note = (
            f" ({CORES_MULTIPLE}x this machine's {cores} logical cores; "
            "pass --allow-oversubscribe for more)"
        )
        return 1, CORES_MULTIPLE * cores, note


class Warmup(click.ParamType):
    """`--warmup`: a number of runs (`20`, 0..RUNS_MAX) or of seconds (`1.5s`, [0, 1 day])."""

    name = "warmup"
    runs = Number(int, 0, RUNS_MAX)
    seconds = Number(float, 0, SECONDS_MAX, unit=" s")

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "N|Xs"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (self.runs if isinstance(value, int) else self.seconds).convert(
                value, param, ctx
            )
        text = str(value).strip().lower()
        if text.isdigit():
            return self.runs.convert(text, param, ctx)
        try:
            float(text[:-1] if text.endswith("s") else text)
        except ValueError:
            raise OptionValueError(
                f"{_opt(param)} {str(value)!r} is not a number of runs (20) or seconds (1.5s)"
            ) from None
        return self.seconds.convert(text[:-1] if text.endswith("s") else text, param, ctx)


def _remember_oversubscribe(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[_OVERSUBSCRIBE] = value


def allow_oversubscribe_option(f: Any) -> Any:
    """The flag that lifts PerCore's bound; eager, so it is seen before --threads whatever
    the order on the command line."""
    return click.option(
        "--allow-oversubscribe",
        is_flag=True,
        is_eager=True,
        expose_value=False,
        callback=_remember_oversubscribe,
        help=f"Allow --threads/--concurrency above {CORES_MULTIPLE}x the logical cores "
        f"(up to {OVERSUBSCRIBED_MAX}).",
    )(f)


# The types the commands declare their options with.
THREADS = PerCore()
PROCESSES = Number(int, 1, PROCESSES_MAX)
RUNS = Number(int, 1, RUNS_MAX)
SEED = Number(int, 0, SEED_MAX)
RETRIES = Number(int, 0, 100)  # resubmissions of a sweep job whose worker was lost
BATCH = Number(int, 1, BATCH_MAX)
EPOCHS = Number(int, 1, EPOCHS_MAX)
PATIENCE = Number(int, 0, EPOCHS_MAX)
SECONDS = Number(float, 0, SECONDS_MAX, unit=" s")
POSITIVE_SECONDS = Number(float, 0, SECONDS_MAX, low_open=True, unit=" s")
WARMUP = Warmup()
FRACTION = Number(float, 0, 1, high_open=True)  # [0, 1): dropout, validation split
OPEN_FRACTION = Number(float, 0, 1, low_open=True, high_open=True)  # (0, 1): sparsity
POSITIVE = Number(float, 0, None, low_open=True)  # tolerances, learning rates
NON_NEGATIVE = Number(float, 0, None)  # penalties
PERCENT_POINTS = Number(float, 0, 100)  # an accuracy drop, in percentage points
