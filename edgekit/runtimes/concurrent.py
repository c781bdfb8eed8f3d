"""Several inference requests in flight at once: what throughput mode drives.

A `Requests` object keeps `concurrency` requests running over pre-bound inputs
and records each request's latency. The benchmark's throughput loop
(`edgekit.bench.throughput`) calls `start`, then `step` until a stop rule holds,
then `finish`, once per phase; how the requests run (Python threads here,
OpenVINO's AsyncInferQueue in `edgekit.runtimes.openvino`) is the runtime's.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class Requests(abc.ABC):
    """`concurrency` requests in flight at once; each completed one leaves a sample in ns."""

    @property
    @abc.abstractmethod
    def timed_region(self) -> str:
        """What one sample spans, and how throughput is counted, in words for the report."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin a phase: forget earlier samples and put requests in flight."""

    @abc.abstractmethod
    def step(self) -> int:
        """Keep the requests going a little; return the request count the stop rules judge."""

    @abc.abstractmethod
    def finish(self) -> None:
        """End the phase: stop issuing and wait until every request in flight completed."""

    @abc.abstractmethod
    def samples(self) -> np.ndarray:
        """Latency of each request completed in this phase, in ns (int64)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `Session.concurrent` opened for these requests."""


class ThreadRequests(Requests):
    """One Python thread per request, each timing its own bound calls in a loop.

    `note` and `region` are the session's `concurrency_note` and `timed_region`;
    `extra` are the sessions opened for these requests, closed by `close`.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[Callable[[], Any]]],
        note: str,
        region: str,
        extra: list[Any],
    ) -> None:
        self._groups = groups
        self._extra = extra
        self._per: list[list[int]] = [[] for _ in groups]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._region = (
            f"{len(groups)} Python threads ({note}), each timing "
            f"{region} with perf_counter_ns; throughput = completed calls / wall time"
        )

    @property
    def timed_region(self) -> str:
        return self._region

    def _work(self, idx: int) -> None:
        pc = time.perf_counter_ns
        calls, out, stop = self._groups[idx], self._per[idx], self._stop
        k, i = len(calls), 0
        while not stop.is_set():
            t0 = pc()
            calls[i % k]()
            t1 = pc()
            out.append(t1 - t0)
            i += 1

    def start(self) -> None:
        self._per = [[] for _ in self._groups]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), daemon=True)
            for i in range(len(self._groups))
        ]
        for t in self._threads:
            t.start()

    def step(self) -> int:
        time.sleep(0.005)  # the threads do the work; this thread only watches the count
        return sum(len(p) for p in self._per)

    def finish(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def samples(self) -> np.ndarray:
        return np.asarray([s for p in self._per for s in p], dtype=np.int64)

    def close(self) -> None:
        for s in self._extra:
            s.close()
        self._extra = []
