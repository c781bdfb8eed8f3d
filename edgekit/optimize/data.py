"""The data of one `optimize` run: calibration samples, evaluation samples with labels when
known, and the training split when pruning fine-tunes; read from a source string, a
Dataset, the `edgekit train` run the model came from, or generated when none is known."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DatasetError, EdgekitError, InputError, first_line


@dataclass
class Data:
    """Calibration, evaluation and (for fine-tuning) training data of one run."""

    calib: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray | None
    x_train: np.ndarray | None
    y_train: np.ndarray | None
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    source: str  # where it came from, for the report
    labelled: bool
    feed: dict | None = None  # FeedPlan.to_dict() of the evaluation data: what was applied

    @property
    def num_classes(self) -> int:
        """Classes among the evaluation labels (0 when unlabelled)."""
        return 0 if self.y_eval is None or not len(self.y_eval) else int(self.y_eval.max()) + 1


def _input_shape(model: Any) -> tuple[Any, ...]:
    spec = model.signature.inputs[0]
    if spec.shape is None:
        raise InputError(f"{model.path}: input '{spec.name}' has unknown rank.")
    return tuple(spec.shape)


def _dataset_from(spec: Any, model: Any, feed: Any, plans: list, **only: Any) -> Any:
    """A Dataset from a source string, a Dataset, or None, fed as
    `edgekit.data.feed.plan_feed` decides (the plan is appended to `plans`). `only`
    (load_dataset's `splits` and `sample_train`) limits what is read and preprocessed."""
    from edgekit.data import Dataset, read_source
    from edgekit.data.feed import plan_feed

    if spec is None or isinstance(spec, Dataset):
        return spec
    shape = _input_shape(model)
    try:
        raw = read_source(str(spec))
        plan = plan_feed(model.signature, raw, None, feed, model_path=model.path)
        ds = plan.load(raw, **only)
    except EdgekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad data argument
        raise DatasetError(f"cannot read calibration data {spec!r}: {first_line(exc)}") from None
    plans.append(plan)
    want = tuple(d for d in shape[1:])
    got = tuple((ds.x_test if len(ds.x_test) else ds.x_train).shape[1:])
    if len(want) != len(got) or any(
        isinstance(w, int) and w != g for w, g in zip(want, got, strict=True)
    ):
        raise InputError(
            f"data {spec!r} gives samples of shape {list(got)}, but {model.path.name} "
            f"expects {list(want)}; pass data that matches the model's input."
        )
    return ds


def _recipe_dataset(model_path: Path) -> str | None:
    """The dataset an `edgekit train` run used, from metrics.json / preprocess.json beside it."""
    folder = model_path if model_path.is_dir() else model_path.parent
    for name in ("metrics.json", "preprocess.json"):
        f = folder / name
        if f.is_file():
            try:
                d = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            src = d.get("dataset") or d.get("source")
            if src:
                return str(src)
    return None


def resolve_data(
    model: Any,
    calib_data: Any,
    eval_data: Any,
    calib_samples: int,
    warnings: list[str],
    seed: int,
    fine_tune: bool = False,
    feed: Any = None,
) -> Data:
    """Calibration and evaluation data. Only what is used is read: a sample of the training
    split for calibration and the test split for evaluation, unless `fine_tune` (pruning
    a Keras model) needs the whole training and validation splits. `feed` (FeedFlags) is
    how the user said the data feeds the model; calibration and evaluation are fed alike."""
    from edgekit.inputs import generate_inputs

    rng = np.random.default_rng(seed)
    if calib_data is None:
        calib_data = _recipe_dataset(model.path)
    plans: list = []
    if fine_tune:
        cds = _dataset_from(calib_data, model, feed, plans)
    else:
        splits = ("train", "test") if eval_data is None else ("train",)
        cds = _dataset_from(calib_data, model, feed, plans, splits=splits,
                            sample_train=calib_samples)  # fmt: skip
    eds = cds if eval_data is None else _dataset_from(eval_data, model, feed, plans,
                                                      splits=("test",))  # fmt: skip
    if cds is None:
        feeds = generate_inputs(model, count=max(calib_samples, 16), seed=seed)
        name = model.signature.inputs[0].name
        x = np.concatenate([f[name] for f in feeds]).astype(np.float32)
        warnings.append(
            "no calibration data was given and none is known for this model, so calibration "
            "and checks used generated random inputs: accuracy is UNPROVEN (pass --calib-data "
            "and --eval-data to prove it)"
        )
        return Data(x[:calib_samples], x, None, None, None, None, None, "generated inputs", False)
    pick = rng.permutation(len(cds.x_train))[:calib_samples]
    calib = np.asarray(cds.x_train[pick], np.float32)
    return Data(
        calib,
        np.asarray(eds.x_test, np.float32),
        np.asarray(eds.y_test),
        np.asarray(cds.x_train, np.float32),
        np.asarray(cds.y_train),
        np.asarray(cds.x_val, np.float32),
        np.asarray(cds.y_val),
        f"{cds.source} (calibration: {len(calib)} train samples; eval: "
        f"{len(eds.x_test)} test samples of {eds.source})",
        True,
        plans[-1].to_dict() if plans else None,
    )
