"""Where sweep jobs run: a small engine interface, and its Dask implementation.

`Engine` is the seam (submit, gather, close) so that another engine (Ray) is one
more class. `DaskEngine` runs a `LocalCluster` on 127.0.0.1 (worker processes of
one thread each, each pinned to its own core) or joins a cluster the user runs.
Every worker declares one `bench` resource and every job asks for it, so two
timed steps never run on one worker at once.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

from edgekit.errors import InputError, MissingDependencyError

# Thread pools of the frameworks, fixed before a worker imports any of them.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}
BENCH_RESOURCE = {"bench": 1}


class WorkerLost(Exception):
    """The worker running a job died (killed, out of memory) before the job finished."""


class Engine(ABC):
    """Runs job functions somewhere and hands their results back as they finish."""

    name = "engine"

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        """Start `fn(*args)` on a worker holding one `bench` resource; returns a handle."""

    @abstractmethod
    def gather(self, handles: list[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield (handle, result) as each finishes; result is a WorkerLost when its worker died."""

    @abstractmethod
    def close(self) -> None:
        """Stop what this engine started (a local cluster); leave a user's cluster running."""

    def describe(self) -> dict[str, Any]:
        """What ran the sweep, for sweep.json."""
        return {"engine": self.name}

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pin_worker(dask_worker: Any) -> None:
    """Pin a worker process to its own core (worker name modulo this host's cores)."""
    try:
        index = int(dask_worker.name)
    except (TypeError, ValueError):
        return  # a worker of a user's cluster, named by them: they choose its cores
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cores:
        os.sched_setaffinity(0, {cores[index % len(cores)]})


class DaskEngine(Engine):
    """Dask distributed: a LocalCluster on 127.0.0.1 (`address=None`) or the cluster at `address`.

    A worker lost mid-job makes the scheduler give up on that try at once
    (allowed-failures 0 on the local cluster) and the sweep resubmits the job as
    its next attempt, up to its retries.
    """

    name = "dask"

    def __init__(self, address: str | None = None, workers: int = 2) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise MissingDependencyError(
                "sweeps run on Dask, which is not installed; run: pip install 'edgekit[sweep]'"
            ) from None
        if workers < 1:
            raise InputError(f"--workers {workers} must be at least 1")
        self.address = address
        self.cluster = None
        if address is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    resources=dict(BENCH_RESOURCE),
                    env=dict(WORKER_ENV),
                    worker_class="distributed.Nanny",
                    silence_logs=50,
                )
                self.client = Client(self.cluster)
            # runs on the workers there now and on every one started later (a restart)
            self.client.register_worker_callbacks(setup=_pin_worker)
        else:
            try:
                self.client = Client(address, timeout="10s")
            except OSError as exc:
                raise InputError(
                    f"--address {address}: no Dask scheduler answers ({exc})"
                ) from None

    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        return self.client.submit(fn, *args, key=key, resources=dict(BENCH_RESOURCE), pure=False)

    def gather(self, handles: list[Any]) -> Iterator[tuple[Any, Any]]:
        from distributed import as_completed
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        for fut in as_completed(handles):
            try:
                yield fut, fut.result()
            except (KilledWorker, FutureCancelledError) as exc:
                yield fut, WorkerLost(str(exc))

    def workers(self) -> list[dict[str, Any]]:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return [
            {"address": a, "name": str(w.get("name")), "resources": w.get("resources", {})}
            for a, w in info.items()
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "local" if self.cluster is not None else "dask",
            "address": self.address or self.client.scheduler.address,
            "workers": self.workers(),
        }

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_engine(kind: str, address: str | None = None, workers: int = 2) -> Engine:
    """The engine named on the command line: `local` (a LocalCluster) or `dask` (at `address`)."""
    if kind == "local":
        if address is not None:
            raise InputError("--address is for --engine dask; --engine local starts its own")
        return DaskEngine(None, workers)
    if kind == "dask":
        if not address:
            raise InputError("--engine dask needs --address tcp://HOST:8786 of a running scheduler")
        return DaskEngine(address, workers)
    raise InputError(f"--engine {kind!r} is not one of: local, dask")
