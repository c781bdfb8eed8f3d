"""Datasets and preprocessing: what a model is fed, as data.

A dataset source is a string: ``digits`` (scikit-learn's 8x8 digits), ``npz:PATH``
(arrays ``x`` and ``y``, optionally ``x_test`` and ``y_test``) or ``images:DIR`` (one
sub-folder per class). ``load_dataset`` reads the source, splits it with a fixed seed
and applies a :class:`Preprocess`, the record of how training fed the model; it is
saved as ``preprocess.json`` next to the model so calibration, evaluation and
deployment feed the model exactly as training did. ``plan_feed`` is the one decision of
how a source feeds a model (a saved file, flags, or a guess from the data) that every verb
shares.

Example::

    from edgekit.data import load_dataset, Preprocess, iter_batches
    ds = load_dataset("digits", input_shape=(28, 28, 1))
    ds.preprocess.save("preprocess.json")
    for batch in iter_batches(ds.x_test, 32):
        ...
"""

from __future__ import annotations

from edgekit.data.dataset import (
    SOURCES,
    Dataset,
    RawData,
    iter_batches,
    load_dataset,
    read_source,
)
from edgekit.data.feed import FeedFlags, FeedPlan, plan_feed
from edgekit.data.npz import read_npz
from edgekit.data.preprocess import LAYOUTS, Preprocess

__all__ = [
    "LAYOUTS",
    "SOURCES",
    "Dataset",
    "FeedFlags",
    "FeedPlan",
    "Preprocess",
    "RawData",
    "iter_batches",
    "load_dataset",
    "plan_feed",
    "read_npz",
    "read_source",
]
