"""The latency timing loops: warm-up until stable, then steady state, and the clock's cost.

Each loop times one call at a time with perf_counter_ns into a pre-allocated
buffer and does nothing else inside the timed region; the caller pre-binds the
inputs and turns the garbage collector off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgekit.bench.protocol import Protocol
from edgekit.bench.stats import window_medians_agree

# Progress callback: (phase, fraction done in [0, 1]).
Progress = Callable[[str, float], None]


def clock_overhead_ns(repeats: int = 2000) -> int:
    """Median cost of one pair of back-to-back perf_counter_ns calls (part of every sample)."""
    pc = time.perf_counter_ns
    deltas = np.empty(repeats, dtype=np.int64)
    for i in range(repeats):
        t0 = pc()
        t1 = pc()
        deltas[i] = t1 - t0
    return int(np.median(deltas))


def warm_up(
    calls: Sequence[Callable[[], Any]],
    protocol: Protocol,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run until at least warmup_runs and warmup_time_s have passed AND two consecutive
    window medians agree within warmup_tolerance, or until warmup_max_time_s."""
    pc = time.perf_counter_ns
    k = len(calls)
    min_runs, min_ns = protocol.warmup_runs, int(protocol.warmup_time_s * 1e9)
    max_ns = int(max(protocol.warmup_max_time_s, protocol.warmup_time_s) * 1e9)
    if min_runs == 0 and min_ns == 0:
        return {"runs": 0, "time_s": 0.0, "stable": True, "window": 1, "samples": []}
    samples: list[int] = []
    window = 0
    start = pc()
    next_tick = start + 100_000_000
    stable = False
    i = 0
    while True:
        t0 = pc()
        calls[i % k]()
        t1 = pc()
        samples.append(t1 - t0)
        i += 1
        elapsed = t1 - start
        if window == 0 and i >= 5:
            # windows of ~0.1 s of inference, 5 to 500 runs each
            est = max(float(np.median(samples)), 1.0)
            window = int(min(500, max(5, math.ceil(1e8 / est))))
        if i >= min_runs and elapsed >= min_ns and window and i % window == 0:
            if window_medians_agree(
                np.asarray(samples[-2 * window :]), window, protocol.warmup_tolerance
            ):
                stable = True
                break
        if elapsed >= max_ns and i >= min_runs:
            break
        if progress is not None and t1 >= next_tick:
            next_tick = t1 + 100_000_000
            progress("warm-up", min(1.0, elapsed / max(min_ns, 1)))
    return {
        "runs": i,
        "time_s": (pc() - start) / 1e9,
        "stable": stable,
        "window": max(window, 1),
        "samples": samples,
    }


def steady_state(
    calls: Sequence[Callable[[], Any]],
    protocol: Protocol,
    progress: Progress | None = None,
) -> tuple[np.ndarray, str, float]:
    """Time each call with perf_counter_ns until min_runs AND min_time are met,
    or max_time / max_runs is reached, or the user interrupts.

    Returns (samples_ns, stop_reason, wall seconds).
    """
    pc = time.perf_counter_ns
    k = len(calls)
    min_runs = max(1, protocol.min_runs)
    min_ns = int(protocol.min_time_s * 1e9)
    max_ns = int(protocol.max_time_s * 1e9) if protocol.max_time_s else 1 << 62
    max_runs = protocol.max_runs or (1 << 62)
    cap = int(min(max_runs, max(4096, 2 * min_runs)))
    buf = np.empty(cap, dtype=np.int64)
    i = 0
    reason = "min_runs_and_min_time"
    start = pc()
    tick = 100_000_000
    next_tick = start + tick
    try:
        while True:
            call = calls[i % k]
            t0 = pc()
            call()
            t1 = pc()
            buf[i] = t1 - t0
            i += 1
            elapsed = t1 - start
            if i >= min_runs and elapsed >= min_ns:
                break
            if elapsed >= max_ns:
                reason = "max_time"
                break
            if i >= cap:
                if i >= max_runs:
                    reason = "max_runs"
                    break
                # grow outside the timed call; rare (doubling)
                buf = np.concatenate([buf, np.empty(min(cap, max_runs - cap), dtype=np.int64)])
                cap = len(buf)
            if progress is not None and t1 >= next_tick:
                next_tick = t1 + tick
                progress("steady", min(1.0, i / min_runs, elapsed / max(min_ns, 1)))
    except KeyboardInterrupt:
        if i == 0:
            raise
        reason = "interrupted"
    wall = (pc() - start) / 1e9
    return buf[:i].copy(), reason, wall
