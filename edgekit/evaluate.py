"""Accuracy of a classifier in any format on any runtime, fed exactly as in training.

Example::

    from edgekit.evaluate import evaluate
    r = evaluate("runs/cnn/model.tflite", "digits", reference="runs/cnn/model.keras")
    print(r.accuracy, r.reference["agreement"])

The model is fed through the ``preprocess.json`` found beside it (or the one
given); integer inputs are quantized with the model's scale and zero point
(``q = round(x / scale) + zero_point``, clipped to the dtype's range) and integer
outputs dequantized (``x = (q - zero_point) * scale``) before the arg-max.
Every model runs on a Session from ``edgekit.runtimes``: a Keras model on the
reference-only ``keras`` runtime (in-process, safe mode unless trusted), the
others on their format's runtime or the one named.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import InputError, UnsupportedModelError

if TYPE_CHECKING:
    from edgekit.data import Dataset, Preprocess
    from edgekit.data.feed import FeedFlags, FeedPlan
    from edgekit.model import TensorSpec

__all__ = ["EvalResult", "evaluate", "predict", "quantize", "dequantize"]

SCHEMA_VERSION = 1


@dataclass
class EvalResult:
    """Scores of one model on one dataset split, and its agreement with a reference."""

    model: str
    format: str
    runtime: str
    dataset: str
    split: str
    samples: int
    accuracy: float
    errors: int
    confusion_matrix: list[list[int]]
    per_class: list[dict[str, Any]]
    class_names: list[str]
    preprocess: str  # where the preprocessing came from: a path, "given", "flags" or "guessed"
    batch_size: int
    wall_time_s: float
    reference: dict[str, Any] | None = None
    feed: dict[str, Any] | None = None  # FeedPlan.to_dict(): what was applied, and why
    warnings: list[str] = field(default_factory=list)
    predictions: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    outputs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without the raw predictions and outputs)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "format": self.format,
            "runtime": self.runtime,
            "dataset": self.dataset,
            "split": self.split,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "errors": self.errors,
            "confusion_matrix": self.confusion_matrix,
            "per_class": self.per_class,
            "class_names": self.class_names,
            "preprocess": self.preprocess,
            "batch_size": self.batch_size,
            "wall_time_s": round(self.wall_time_s, 3),
            "reference": self.reference,
            "feed": self.feed,
            "warnings": self.warnings,
        }


# ---- quantization ----------------------------------------------------------------------


def _qparams(spec: TensorSpec, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point shaped to broadcast over a batch of ``ndim`` dims."""
    q = spec.quantization
    scale = np.asarray(q.scale, dtype=np.float64)
    zp = np.asarray(q.zero_point, dtype=np.float64)
    if scale.size > 1 and q.axis is not None:
        shape = [1] * ndim
        shape[q.axis] = scale.size
        return scale.reshape(shape), zp.reshape(shape)
    return scale.ravel()[:1], zp.ravel()[:1] if zp.size else np.zeros(1)


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float feeds to the integer dtype of ``spec``: round(x / scale) + zero_point, clipped."""
    dtype = np.dtype(spec.dtype)
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    if spec.quantization is None or not spec.quantization.scale:
        raise UnsupportedModelError(
            f"input '{spec.name}' is {spec.dtype} without a scale and zero point, so float "
            "samples cannot be fed to it."
        )
    scale, zp = _qparams(spec, np.ndim(x))
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float64) / scale) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer outputs back to float: (q - zero_point) * scale; floats pass through."""
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer) or spec.quantization is None:
        return q.astype(np.float32)
    scale, zp = _qparams(spec, q.ndim)
    return ((q.astype(np.float64) - zp) * scale).astype(np.float32)


# ---- running a model -------------------------------------------------------------------


class _Classifier:
    """One model on a Session: float batches in, float class scores out."""

    def __init__(
        self,
        path: Path,
        runtime: str | None,
        device: str | None,
        threads: int | None,
    ) -> None:
        from edgekit.model import load
        from edgekit.runtimes import REFERENCE_RUNTIMES, RUNTIMES, open_session

        if runtime is not None and runtime not in RUNTIMES and runtime not in REFERENCE_RUNTIMES:
            # evaluate offers the references too (keras scores a .keras model): all, by name
            valid = ", ".join(sorted({*RUNTIMES, *REFERENCE_RUNTIMES}))
            raise InputError(f"Unknown runtime {runtime!r}; valid runtimes: {valid}.")
        self.model = load(path)
        self.format = str(self.model.format)
        # a .keras model runs on Keras (safe mode unless trusted), the others on their runtime
        self.session = open_session(self.model, runtime, device=device, threads=threads)
        self.runtime = self.session.runtime
        self.inputs = self.session.signature.inputs
        self.outputs = self.session.signature.outputs
        if len(self.inputs) != 1:
            names = ", ".join(t.name for t in self.inputs)
            self.session.close()
            raise UnsupportedModelError(
                f"{path}: evaluate needs a single-input classifier; this model has "
                f"{len(self.inputs)} inputs ({names})."
            )
        self.input = self.inputs[0]
        self.output = self.outputs[0]
        shape = self.input.shape
        batch = shape[0] if shape else None
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None

    def _fit_layout(self, x: np.ndarray) -> np.ndarray:
        """Transpose NHWC<->NCHW when that is what separates the feeds from the input;
        the batch axis is left out of the match (a fixed batch is met by padding)."""
        from edgekit.verify import fit_layout

        want = self.input.shape
        return fit_layout(x, None if want is None else (None, *want[1:]))

    def predict(self, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
        """Class scores for every sample of ``x``, and the batch size used."""
        x = self._fit_layout(np.asarray(x, dtype=np.float32))
        step = self.fixed_batch or batch_size
        outs = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            pad = step - len(chunk) if self.fixed_batch else 0
            if pad:  # a fixed batch larger than what is left: pad, then drop the padding
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out = self._run(chunk)
            outs.append(out[: len(out) - pad] if pad else out)
        scores = np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
        return scores.reshape(len(scores), -1), step

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        out = self.session.run({self.input.name: quantize(chunk, self.input)})
        first = out[self.output.name] if self.output.name in out else next(iter(out.values()))
        return dequantize(first, self.output)

    def close(self) -> None:
        self.session.close()


_PRE_LABEL = {"guess": "guessed", "flags": "flags"}


def _feeds(
    dataset: str | Dataset,
    runner: _Classifier,
    model_path: Path,
    preprocess: Preprocess | str | os.PathLike | None,
    feed: FeedFlags | None,
    split: str,
) -> tuple[np.ndarray, np.ndarray, list[str], str, FeedPlan | None]:
    """The scored split fed as `edgekit.data.feed.plan_feed` decides (a Dataset: as is)."""
    from edgekit.data import Dataset, read_source
    from edgekit.data.feed import plan_feed

    if isinstance(dataset, Dataset):
        x, y = dataset.split(split)
        return x, y, dataset.class_names, dataset.source, None
    raw = read_source(str(dataset))
    plan = plan_feed(runner.session.signature, raw, preprocess, feed, model_path=model_path)
    ds = plan.load(raw, splits=(split,))  # only what is scored
    x, y = ds.split(split)
    return x, y, ds.class_names, ds.source, plan


def predict(
    model_path: str | os.PathLike,
    x: np.ndarray,
    *,
    runtime: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Float class scores of a model for preprocessed float samples ``x``."""
    runner = _Classifier(Path(model_path), runtime, device, threads)
    try:
        return runner.predict(x, batch_size)[0]
    finally:
        runner.close()


def evaluate(
    model_path: str | os.PathLike,
    dataset: str | Dataset,
    runtime: str | None = None,
    reference: str | os.PathLike | None = None,
    *,
    preprocess: Preprocess | str | os.PathLike | None = None,
    feed: FeedFlags | None = None,
    reference_runtime: str | None = None,
    split: str = "test",
    batch_size: int = 64,
    device: str | None = None,
    threads: int | None = None,
) -> EvalResult:
    """Accuracy and confusion matrix of ``model_path`` on a dataset split.

    ``dataset`` is a source string (``digits``, ``npz:PATH``, ``images:DIR``) or a
    loaded :class:`~edgekit.data.Dataset` (used as is). ``runtime`` is ``keras`` (for
    ``.keras`` models, the default for them), ``litert``, ``onnxruntime`` or
    ``openvino``; None picks the format's natural one. How the data feeds the model is
    `edgekit.data.feed.plan_feed`'s decision (``preprocess``, a Preprocess or a JSON
    path, else the ``preprocess.json`` beside the model, else the ``feed`` flags, else
    a guess from the data), recorded in ``result.feed``. An accuracy at chance
    (`edgekit.data.feed.near_chance`) adds a warning to ``result.warnings``. With ``reference``, the same
    samples also run through that model, and ``result.reference`` holds its
    accuracy, the top-1 agreement and the largest absolute difference of scores.
    Batches are ``batch_size`` when the model's batch axis is dynamic, else its
    fixed batch.
    """
    from edgekit.data import Preprocess
    from edgekit.train.report import classification_metrics

    started = time.perf_counter()
    path = Path(model_path)
    runner = _Classifier(path, runtime, device, threads)
    try:
        x, y, class_names, source, plan = _feeds(dataset, runner, path, preprocess, feed, split)
        if len(y) == 0:
            raise InputError(f"The {split} split of {source} is empty; nothing to evaluate.")
        scores, used_batch = runner.predict(x, batch_size)
    finally:
        runner.close()
    if scores.shape[1] < len(class_names):
        raise InputError(
            f"{path}: the model scores {scores.shape[1]} classes but {source} has "
            f"{len(class_names)}; is this the right dataset?"
        )
    if scores.shape[1] > len(class_names):
        class_names = class_names + [str(i) for i in range(len(class_names), scores.shape[1])]
    pred = scores.argmax(axis=1)
    cls = classification_metrics(y, pred, class_names)
    ref_info = None
    if reference is not None:
        ref_path = Path(reference)
        ref = _Classifier(ref_path, reference_runtime, device, threads)
        try:
            ref_pre = Preprocess.find_for(ref_path)
            x_ref = x
            if ref_pre is not None and plan is not None and ref_pre != plan.preprocess:
                x_ref = _feeds(dataset, ref, ref_path, ref_pre, None, split)[0]
            ref_scores, _ = ref.predict(x_ref, batch_size)
        finally:
            ref.close()
        ref_pred = ref_scores.argmax(axis=1)
        same_shape = ref_scores.shape == scores.shape
        ref_info = {
            "model": str(ref_path),
            "format": ref.format,
            "runtime": ref.runtime,
            "accuracy": float((ref_pred == y).mean()),
            "agreement": float((ref_pred == pred).mean()),
            "disagreements": int((ref_pred != pred).sum()),
            "max_abs_diff": float(np.abs(ref_scores - scores).max()) if same_shape else None,
        }
    from edgekit.data.feed import chance_warning, near_chance

    warnings = []
    if near_chance(cls["accuracy"], len(class_names)):
        warnings.append(chance_warning(cls["accuracy"], len(class_names)))
    if plan is None:
        pre_from = "given"
    else:
        pre_from = _PRE_LABEL.get(plan.source, plan.origin)
    return EvalResult(
        model=str(path),
        format=runner.format,
        runtime=runner.runtime,
        dataset=source,
        split=split,
        samples=int(len(y)),
        accuracy=cls["accuracy"],
        errors=int((pred != y).sum()),
        confusion_matrix=cls["confusion_matrix"],
        per_class=cls["per_class"],
        class_names=class_names,
        preprocess=pre_from,
        batch_size=used_batch,
        wall_time_s=time.perf_counter() - started,
        reference=ref_info,
        feed=None if plan is None else plan.to_dict(),
        warnings=warnings,
        predictions=pred,
        outputs=scores,
    )
