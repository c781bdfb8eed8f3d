"""Throughput mode: `concurrency` requests in flight at once, inferences per second.

OpenVINO runs an AsyncInferQueue over a model compiled with as many streams
as requests; ONNX Runtime shares one session between threads (its `run` is
thread-safe and releases the GIL); LiteRT gives each thread its own
interpreter (an interpreter is not thread-safe). Each request's latency is
recorded too, so the report carries latency under load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class _Rules:
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
        return min(1.0, elapsed_ns / max(self.min_ns, 1))


def _rules(protocol: Any, warm: bool) -> _Rules:
    max_runs = protocol.max_runs or (1 << 62)
    if warm:
        return _Rules(
            protocol.warmup_runs,
            int(protocol.warmup_time_s * 1e9),
            int(max(protocol.warmup_time_s, protocol.warmup_max_time_s) * 1e9),
            max_runs,
        )
    max_ns = int(protocol.max_time_s * 1e9) if protocol.max_time_s else 1 << 62
    return _Rules(max(1, protocol.min_runs), int(protocol.min_time_s * 1e9), max_ns, max_runs)


def _openvino(
    session: Any, feeds: Sequence[Mapping[str, np.ndarray]], concurrency: int, protocol: Any,
    progress: Progress | None,
) -> tuple[dict, np.ndarray, str, float, float, str]:  # fmt: skip
    import openvino as ov

    pc = time.perf_counter_ns
    arrays = [[f[s.name] for s in session.signature.inputs] for f in feeds]
    queue = ov.AsyncInferQueue(session.compiled, concurrency)
    done: list[int] = []
    queue.set_callback(lambda request, start: done.append(pc() - start))

    def phase(warm: bool) -> tuple[str, float]:
        rules = _rules(protocol, warm)
        done.clear()
        start = pc()
        next_tick = start + 100_000_000
        i, reason = 0, None
        try:
            while reason is None:
                # wait for a free request first, so a sample does not include queueing
                queue.get_idle_request_id()
                queue.start_async(arrays[i % len(arrays)], userdata=pc(), share_inputs=True)
                i += 1
                now = pc()
                reason = rules.stop(i, now - start)
                if reason is None and progress is not None and now >= next_tick:
                    next_tick = now + 100_000_000
                    progress("warm-up" if warm else "steady", rules.progress(now - start))
        except KeyboardInterrupt:
            if warm or i == 0:
                raise
            reason = "interrupted"
        queue.wait_all()
        return reason, (pc() - start) / 1e9

    _, wtime = phase(warm=True)
    wu = {"runs": len(done), "time_s": wtime, "stable": True, "window": 1}
    reason, wall = phase(warm=False)
    samples = np.asarray(done, dtype=np.int64)
    region = (
        f"AsyncInferQueue with {concurrency} requests in flight (NUM_STREAMS={concurrency}, "
        f"INFERENCE_NUM_THREADS={session.compiled.get_property('INFERENCE_NUM_THREADS')}): "
        "each sample spans start_async on an idle request (shared input memory, no queueing) "
        "to its completion callback; "
        "throughput = completed requests / wall time"
    )
    return wu, samples, reason, wall, len(samples) / wall, region


def _threads(
    callables: Sequence[Sequence[Callable[[], Any]]], protocol: Any, progress: Progress | None,
) -> tuple[dict, np.ndarray, str, float, float]:  # fmt: skip
    pc = time.perf_counter_ns

    def phase(warm: bool) -> tuple[list[list[int]], str, float]:
        rules = _rules(protocol, warm)
        stop = threading.Event()
        per: list[list[int]] = [[] for _ in callables]

        def work(idx: int) -> None:
            calls, out = callables[idx], per[idx]
            k, i = len(calls), 0
            while not stop.is_set():
                t0 = pc()
                calls[i % k]()
                t1 = pc()
                out.append(t1 - t0)
                i += 1

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(per))]
        start = pc()
        for t in threads:
            t.start()
        reason = None
        try:
            while reason is None:
                time.sleep(0.005)
                elapsed = pc() - start
                reason = rules.stop(sum(len(p) for p in per), elapsed)
                if reason is None and progress is not None:
                    progress("warm-up" if warm else "steady", rules.progress(elapsed))
        except KeyboardInterrupt:
            if warm:
                raise
            reason = "interrupted"
        finally:
            stop.set()
            for t in threads:
                t.join()
        return per, reason, (pc() - start) / 1e9

    per, _, wtime = phase(warm=True)
    wu = {"runs": sum(len(p) for p in per), "time_s": wtime, "stable": True, "window": 1}
    per, reason, wall = phase(warm=False)
    samples = np.asarray([s for p in per for s in p], dtype=np.int64)
    return wu, samples, reason, wall, len(samples) / wall


def measure_throughput(
    session: Any,
    feeds: Sequence[Mapping[str, np.ndarray]],
    calls: Sequence[Callable[[], Any]],
    concurrency: int,
    protocol: Any,
    progress: Progress | None,
    open_more: Callable[[], Any],
) -> tuple[dict, np.ndarray, str, float, float, str]:
    """Run `concurrency` requests at once; returns (warm-up info, per-request samples_ns,
    stop_reason, wall seconds, inferences per second, timed-region statement)."""
    if session.runtime == "openvino":
        return _openvino(session, feeds, concurrency, protocol, progress)
    if session.runtime == "onnxruntime":
        # one session, shared: ORT's run is thread-safe and releases the GIL
        groups = [list(calls) for _ in range(concurrency)]
        how = "one shared InferenceSession"
        extra: list[Any] = []
    else:
        extra = [open_more() for _ in range(concurrency - 1)]
        groups = [list(calls)] + [[s.bind(f) for f in feeds] for s in extra]
        how = "one interpreter per thread"
    try:
        wu, samples, reason, wall, ips = _threads(groups, protocol, progress)
    finally:
        for s in extra:
            s.close()
    region = (
        f"{concurrency} Python threads ({how}), each timing {session.timed_region} "
        "with perf_counter_ns; throughput = completed calls / wall time"
    )
    return wu, samples, reason, wall, ips, region
