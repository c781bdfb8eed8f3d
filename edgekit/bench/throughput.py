"""Throughput mode: `concurrency` requests in flight at once, inferences per second.

How the requests run is the session's (`Session.concurrent`: OpenVINO's
AsyncInferQueue over one stream per request, Python threads sharing one ONNX
Runtime session, one LiteRT interpreter per thread); this module runs the two
phases, warm-up then steady state, with the protocol's stop rules. Each
request's latency is recorded too, so the report carries latency under load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.bench.loops import Progress
from edgekit.bench.protocol import Protocol, stop_rules


def _phase(
    requests: Any, protocol: Protocol, warm: bool, progress: Progress | None
) -> tuple[str, float]:
    """One phase until a stop rule holds: (stop reason, wall seconds)."""
    pc = time.perf_counter_ns
    rules = stop_rules(protocol, warm)
    start = pc()
    next_tick = start + 100_000_000
    requests.start()
    n, reason = 0, None
    try:
        while reason is None:
            n = requests.step()
            now = pc()
            reason = rules.stop(n, now - start)
            if reason is None and progress is not None and now >= next_tick:
                next_tick = now + 100_000_000
                progress("warm-up" if warm else "steady", rules.progress(now - start))
    except KeyboardInterrupt:
        if warm or n == 0:
            raise
        reason = "interrupted"
    finally:
        requests.finish()
    return reason, (pc() - start) / 1e9


def measure_throughput(
    session: Any,
    feeds: Sequence[Mapping[str, np.ndarray]],
    calls: Sequence[Callable[[], Any]],
    concurrency: int,
    protocol: Protocol,
    progress: Progress | None,
    open_more: Callable[[], Any],
) -> tuple[dict, np.ndarray, str, float, float, str]:
    """Run `concurrency` requests at once; returns (warm-up info, per-request samples_ns,
    stop_reason, wall seconds, inferences per second, timed-region statement)."""
    requests = session.concurrent(feeds, calls, concurrency, open_more)
    try:
        _, wtime = _phase(requests, protocol, True, progress)
        wu = {"runs": len(requests.samples()), "time_s": wtime, "stable": True, "window": 1}
        reason, wall = _phase(requests, protocol, False, progress)
        samples = requests.samples()
    finally:
        requests.close()
    return wu, samples, reason, wall, len(samples) / wall, requests.timed_region
