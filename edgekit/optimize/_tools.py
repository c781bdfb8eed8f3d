"""Small helpers of the optimize flow that no shared module offers: the model file name
of each format, the measuring runtime, gzip size and per-op profiles."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.graph import SUFFIX

# File name of a model of each format inside an output folder.
MODEL_FILE = {fmt: f"model{suffix}" for fmt, suffix in SUFFIX.items() if suffix}


def runtime_for(fmt: str, profile_runtime: str | None = None) -> str:
    """The runtime that measures `fmt` models: the profile's, else the format's own."""
    from edgekit.runtimes import DEFAULT_RUNTIME

    if profile_runtime and profile_runtime != "tflite-micro":
        return profile_runtime
    return DEFAULT_RUNTIME[fmt]


def gzip_bytes(path: Path) -> int:
    """Size after gzip -9: what sparsity buys on the wire and in flash."""
    from edgekit.model import load

    return sum(len(gzip.compress(p.read_bytes(), 9)) for p in load(path).files)


def op_times(path: Path, feed: np.ndarray, *, runtime: str, threads: int | None = 1) -> dict:
    """Time per op type on `runtime` for one sample `feed` (`Session.op_times`: ms per
    inference where the runtime profiles, else the op histogram with the unit "op count")."""
    return _profiled(path, feed, runtime, threads, "op_times")


def node_times(
    path: Path, feed: np.ndarray, *, runtime: str, threads: int | None = 1
) -> dict | None:
    """Time per node on `runtime` for one sample `feed` (`Session.node_times`), or None
    where the runtime gives no per-op times."""
    return _profiled(path, feed, runtime, threads, "node_times")


def _profiled(path: Path, feed: np.ndarray, runtime: str, threads: int | None, method: str) -> Any:
    from edgekit.bench.interleaved import sample_feeds
    from edgekit.runtimes import open_session

    with open_session(path, runtime, threads=threads) as session:
        feeds = sample_feeds(feed, session.signature.inputs[0], 1, limit=1)[0]
        return getattr(session, method)(feeds)
