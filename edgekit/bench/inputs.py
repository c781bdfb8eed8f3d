"""Benchmark inputs: seeded generated samples, a user's .npz, or a user's arrays.

At least `INPUT_SAMPLES` distinct samples are rotated over (fewer only when
memory forbids), all made before anything is timed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import InputError

if TYPE_CHECKING:
    from edgekit.data.feed import FeedFlags

INPUT_SAMPLES = 16
INPUT_MEMORY_LIMIT = 512 * 2**20


def load_npz(
    path: str | os.PathLike,
    signature: Any,
    feed: FeedFlags | None = None,
    model_path: str | os.PathLike | None = None,
) -> list[dict[str, np.ndarray]]:
    """Samples from a user's .npz: one array per input name, optionally with a leading sample
    axis; or a dataset npz (x, y[, x_test, y_test]) fed as every verb feeds it."""
    return npz_feeds(path, signature, feed, model_path)[0]


def npz_feeds(
    path: str | os.PathLike,
    signature: Any,
    feed: FeedFlags | None = None,
    model_path: str | os.PathLike | None = None,
) -> tuple[list[dict[str, np.ndarray]], dict[str, Any] | None]:
    """`load_npz`'s samples, and for a dataset npz the feed record (`FeedPlan.to_dict`);
    `feed` and `model_path` go to `plan_feed`, as eval, optimize and deploy give them."""
    from edgekit.data.npz import read_npz

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such input file")
    # Read into memory, not mapped: the timed loop must not fault pages in from the file.
    arrays = {k: np.array(a) for k, a in read_npz(p).items()}
    names = [t.name for t in signature.inputs]
    if set(arrays) != set(names) and "x" in arrays and "y" in arrays and len(names) == 1:
        return _dataset_feeds(p, signature, feed, model_path)
    if feed is not None and (feed.given() or feed.preprocess is not None):
        raise InputError(
            f"{p}: --preprocess, --scale, --mean, --std, --layout, --resize and --as-is apply "
            "to a dataset npz (arrays x and y); this one is named by input and fed as stored"
        )
    if set(arrays) != set(names):
        raise InputError(
            f"{p}: holds arrays {sorted(arrays)}, but the model's inputs are {names}; "
            "name each array after its input"
        )
    counts = set()
    for spec in signature.inputs:
        arr = arrays[spec.name]
        rank = None if spec.shape is None else len(spec.shape)
        counts.add(arr.shape[0] if rank is not None and arr.ndim == rank + 1 else None)
    if len(counts) != 1:
        raise InputError(f"{p}: inputs disagree on the number of samples along the first axis")
    count = counts.pop()
    if count is None:
        return [arrays], None
    if count == 0:
        raise InputError(f"{p}: holds zero samples")
    return [{n: np.ascontiguousarray(a[i]) for n, a in arrays.items()} for i in range(count)], None


def _dataset_feeds(
    path: Path, signature: Any, feed: FeedFlags | None, model_path: str | os.PathLike | None
) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
    """Samples of a dataset npz (x, y[, x_test, y_test]), fed as every verb feeds them
    (`edgekit.data.feed.plan_feed`): up to INPUT_SAMPLES of the test split, one a feed."""
    from edgekit.data import read_source
    from edgekit.data.feed import plan_feed

    raw = read_source(f"npz:{path}")
    plan = plan_feed(signature, raw, None, feed, model_path=model_path)
    ds = plan.load(raw, splits=("test",))
    spec = signature.inputs[0]
    x = ds.x_test[:INPUT_SAMPLES]
    if np.issubdtype(np.dtype(spec.dtype), np.integer):
        from edgekit.evaluate import quantize

        x = quantize(x, spec)
    return [{spec.name: np.ascontiguousarray(x[i : i + 1])} for i in range(len(x))], plan.to_dict()


def _feed_bytes(feeds: Mapping[str, np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in feeds.values())


def benchmark_inputs(
    signature: Any,
    inputs: str | os.PathLike | Sequence[Mapping[str, np.ndarray]] | None,
    *,
    seed: int,
    batch: int,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
    warnings: list[str],
    feed: FeedFlags | None = None,
    model_path: str | os.PathLike | None = None,
) -> tuple[list[dict[str, np.ndarray]], str, dict[str, Any] | None]:
    """The feeds to rotate over (contiguous arrays), how they were made in words, and the
    feed record of a dataset npz (how its arrays were preprocessed, and from where).

    A warning is appended to `warnings` when large inputs cut the generated count.
    """
    record = None
    from edgekit.inputs import generate_inputs

    if inputs is None:
        one = generate_inputs(signature, count=1, seed=seed, batch=batch, shapes=input_shapes)
        count = INPUT_SAMPLES
        per = _feed_bytes(one[0])
        if per * count > INPUT_MEMORY_LIMIT:
            count = max(1, INPUT_MEMORY_LIMIT // max(per, 1))
            warnings.append(
                f"inputs are large ({per / 2**20:.0f} MiB per sample): rotating over "
                f"{count} samples instead of {INPUT_SAMPLES}"
            )
        feeds = generate_inputs(signature, count=count, seed=seed, batch=batch, shapes=input_shapes)
        input_mode = (
            f"generated: {count} distinct seeded samples (seed {seed}), dtype and quantized "
            "ranges of the signature, rotated in order"
        )
    elif isinstance(inputs, (str, os.PathLike)):
        feeds, record = npz_feeds(inputs, signature, feed, model_path)
        input_mode = f"user file {Path(inputs).name}: {len(feeds)} samples, rotated in order"
        if record is not None:
            input_mode += f"; {record['description']}"
    else:
        feeds = [dict(f) for f in inputs]
        if not feeds:
            raise InputError("inputs is an empty list of feeds")
        input_mode = f"user arrays: {len(feeds)} samples, rotated in order"
    return [{k: np.ascontiguousarray(v) for k, v in f.items()} for f in feeds], input_mode, record
