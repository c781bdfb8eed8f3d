"""The benchmark protocol: how long to warm up and measure, and when a phase stops.

The protocol is written down in benchmarks/PROTOCOL.md; `Protocol` holds its
numbers, `resolve_protocol` applies the user's settings to a preset, and
`StopRules` is the stop rule of a phase in throughput mode (the latency loops in
`edgekit.bench.loops` inline theirs, to keep the timed loop minimal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from edgekit.errors import InputError


@dataclass(frozen=True)
class Protocol:
    """How long to warm up and measure. All times in seconds."""

    warmup_runs: int = 10
    warmup_time_s: float = 0.5
    warmup_max_time_s: float = 5.0
    warmup_tolerance: float = 0.05  # two consecutive window medians within 5%
    min_runs: int = 100
    min_time_s: float = 2.0
    max_time_s: float | None = 30.0
    max_runs: int | None = 1_000_000  # bounds memory and report size for µs-scale models

    @classmethod
    def certify(cls) -> Protocol:
        """The long preset: 60 s of steady state, like benchmark_app's default."""
        return cls(
            warmup_runs=50,
            warmup_time_s=2.0,
            warmup_max_time_s=20.0,
            min_runs=300,
            min_time_s=60.0,
            max_time_s=300.0,
            max_runs=5_000_000,
        )


def parse_warmup(value: str | int | float | None) -> tuple[int | None, float | None]:
    """`--warmup 20` means 20 runs, `--warmup 1.5s` or `1.5` means seconds."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        raise InputError(f"--warmup {value!r} is not a number of runs or seconds")
    if isinstance(value, int):
        runs = value
        if runs < 0:
            raise InputError(f"--warmup {value} must not be negative")
        return runs, None
    if isinstance(value, float):
        secs = value
    else:
        text = value.strip().lower()
        try:
            if text.endswith("s"):
                secs = float(text[:-1])
            elif text.isdigit():
                return int(text), None
            else:
                secs = float(text)
        except ValueError:
            raise InputError(
                f"--warmup {value!r} is not a number of runs (20) or seconds (1.5s)"
            ) from None
    if not math.isfinite(secs) or secs < 0:
        raise InputError(f"--warmup {value!r} must be a non-negative number of seconds")
    return None, secs


def resolve_protocol(
    certify: bool,
    warmup: str | int | float | None,
    min_runs: int | None,
    min_time: float | None,
    max_time: float | None,
    max_runs: int | None,
) -> Protocol:
    proto = Protocol.certify() if certify else Protocol()
    w_runs, w_secs = parse_warmup(warmup)
    changes: dict[str, Any] = {}
    if w_runs is not None:
        changes["warmup_runs"] = w_runs
        if w_runs == 0:
            changes["warmup_time_s"] = 0.0
    if w_secs is not None:
        changes["warmup_time_s"] = w_secs
        changes["warmup_max_time_s"] = max(proto.warmup_max_time_s, 4 * w_secs)
        if w_secs == 0:
            changes["warmup_runs"] = 0
    if min_runs is not None:
        if min_runs < 1:
            raise InputError(f"--min-runs {min_runs} must be at least 1")
        changes["min_runs"] = min_runs
    if min_time is not None:
        if min_time < 0:
            raise InputError(f"--min-time {min_time} must not be negative")
        changes["min_time_s"] = float(min_time)
    if max_time is not None:
        if max_time <= 0:
            raise InputError(f"--max-time {max_time} must be positive")
        changes["max_time_s"] = float(max_time)
    if max_runs is not None:
        changes["max_runs"] = max_runs
    # --max-time is the hard limit: below --min-time it wins, and the report says so
    return replace(proto, **changes)


@dataclass(frozen=True)
class StopRules:
    """When a phase stops: min_runs AND min_ns both met, or max_ns, or max_runs."""

    min_runs: int
    min_ns: int
    max_ns: int
    max_runs: int

    def stop(self, n: int, elapsed_ns: int) -> str | None:
        """The stop reason once a rule is met after `n` requests, else None."""
        if n >= self.min_runs and elapsed_ns >= self.min_ns:
            return "min_runs_and_min_time"
        if elapsed_ns >= self.max_ns:
            return "max_time"
        if n >= self.max_runs:
            return "max_runs"
        return None

    def progress(self, elapsed_ns: int) -> float:
        """The fraction of the phase's minimum time done, in [0, 1]."""
        return min(1.0, elapsed_ns / max(self.min_ns, 1))


def stop_rules(protocol: Protocol, warm: bool) -> StopRules:
    """The stop rules of the warm-up phase (`warm`) or of steady state."""
    max_runs = protocol.max_runs or (1 << 62)
    if warm:
        return StopRules(
            protocol.warmup_runs,
            int(protocol.warmup_time_s * 1e9),
            int(max(protocol.warmup_time_s, protocol.warmup_max_time_s) * 1e9),
            max_runs,
        )
    max_ns = int(protocol.max_time_s * 1e9) if protocol.max_time_s else 1 << 62
    return StopRules(max(1, protocol.min_runs), int(protocol.min_time_s * 1e9), max_ns, max_runs)
