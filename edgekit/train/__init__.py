"""Train one of edgekit's recipes on a dataset and write a finished model folder.

Example::

    from edgekit.train import train
    result = train("cnn", "digits", "out/cnn")
    print(result.test_accuracy, result.model_path)

The output folder holds ``model.keras``, ``preprocess.json``, ``history.json``,
``metrics.json``, ``curves.png``, ``confusion.png`` and ``predictions.png``. It is
assembled in a temporary folder beside it and moved into place at the end, so a
failed run leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.train.recipes import RECIPES, Recipe, Regularization

__all__ = ["OUTPUT_FILES", "RECIPES", "LR_SCHEDULES", "TrainOptions", "TrainResult", "train"]

SCHEMA_VERSION = 1
LR_SCHEDULES = ("cosine", "constant", "plateau")
# Every file a run writes; metrics.json goes last and marks a finished folder.
OUTPUT_FILES = (
    "model.keras",
    "preprocess.json",
    "history.json",
    "curves.png",
    "confusion.png",
    "predictions.png",
    "metrics.json",
)


@dataclass
class TrainOptions:
    """Every knob of a training run, as recorded in ``metrics.json`` and ``history.json``."""

    recipe: str
    dataset: str
    epochs: int
    batch_size: int
    lr: float
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0
    patience: int = 0
    augment: bool = False
    val_split: float = 0.15
    seed: int = 0
    lr_schedule: str = "cosine"
    max_train: int | None = None

    def check(self) -> None:
        """Raise InputError naming the first option that is out of range."""
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, not {self.batch_size}"),
            (self.lr > 0, f"--lr must be positive, not {self.lr}"),
            (self.l1 >= 0, f"--l1 must be zero or positive, not {self.l1}"),
            (self.l2 >= 0, f"--l2 must be zero or positive, not {self.l2}"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1), not {self.dropout}"),
            (self.patience >= 0, f"--patience must be zero or positive, not {self.patience}"),
            (0 <= self.val_split < 1, f"--val-split must be in [0, 1), not {self.val_split}"),
            (
                self.lr_schedule in LR_SCHEDULES,
                f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}",
            ),
            (
                self.val_split > 0 or (self.patience == 0 and self.lr_schedule != "plateau"),
                "--patience and --lr-schedule plateau need a validation split (--val-split > 0)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message + ".")


@dataclass
class TrainResult:
    """What a training run produced: the folder, the model and its test scores."""

    out_dir: Path
    model_path: Path
    test_accuracy: float
    test_loss: float
    epochs_run: int
    best_epoch: int | None
    wall_time_s: float
    metrics: dict = field(repr=False, default_factory=dict)
    history: dict = field(repr=False, default_factory=dict)


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"Unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}.")
    return RECIPES[name]


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _augmenter(input_shape: tuple[int, ...], layout: str) -> Any:
    """Random small shifts (10%) and rotations (±10°) of images, active only in training."""
    import keras
    from keras import layers

    inp = keras.Input(input_shape)
    x = inp
    if layout == "sequence":
        x = layers.Reshape((input_shape[0], -1, 1))(x)
    elif layout == "nchw":
        x = layers.Permute((2, 3, 1))(x)
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="nearest")(x)
    x = layers.RandomRotation(10 / 360, fill_mode="nearest")(x)
    if layout == "sequence":
        x = layers.Reshape(input_shape)(x)
    elif layout == "nchw":
        x = layers.Permute((3, 1, 2))(x)
    return keras.Model(inp, x, name="augment")


def _lr_callback(opts: TrainOptions) -> Any:
    import keras

    if opts.lr_schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=2, min_lr=opts.lr / 100
        )
    if opts.lr_schedule == "cosine":
        # Cosine decay per epoch from lr down to lr/100.
        def schedule(epoch: int, _lr: float = 0.0) -> float:
            t = epoch / max(1, opts.epochs - 1)
            return opts.lr / 100 + (opts.lr - opts.lr / 100) * 0.5 * (1 + math.cos(math.pi * t))

        return keras.callbacks.LearningRateScheduler(schedule)
    return None


def _progress_callback(epochs: int, steps: int) -> Any:
    """A rich progress bar per epoch, written to stderr."""
    import keras
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    class RichProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=Console(stderr=True),
            )
            self.progress.start()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.task = self.progress.add_task(
                f"epoch {epoch + 1}/{epochs}", total=steps, metrics=""
            )

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            text = f"loss {logs.get('loss', 0):.4f} acc {logs.get('accuracy', 0):.4f}"
            self.progress.update(self.task, completed=batch + 1, metrics=text)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            keys = ("loss", "accuracy", "val_loss", "val_accuracy")
            text = " ".join(
                f"{k.replace('accuracy', 'acc')} {logs[k]:.4f}" for k in keys if k in logs
            )
            self.progress.update(self.task, completed=steps, metrics=text)

        def on_train_end(self, logs: dict | None = None) -> None:
            self.progress.stop()

    return RichProgress()


def _history(h: dict[str, list], opts: TrainOptions) -> dict:
    """Per-epoch columns (loss, accuracy, val_*, lr) as plain floats."""
    cols = {k: [float(v) for v in vals] for k, vals in h.items()}
    if "learning_rate" in cols:
        cols["lr"] = cols.pop("learning_rate")
    n = len(cols.get("loss", []))
    if "lr" not in cols:
        cols["lr"] = [float(opts.lr)] * n
    return {
        "schema_version": SCHEMA_VERSION,
        "epoch": list(range(1, n + 1)),
        **cols,
        "options": asdict(opts),
    }


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from edgekit import __version__

    return {
        "edgekit": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def train(
    recipe: str,
    dataset: str,
    out: str | os.PathLike,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    dropout: float | None = None,
    patience: int = 0,
    augment: bool | None = None,
    val_split: float = 0.15,
    seed: int = 0,
    lr_schedule: str = "cosine",
    max_train: int | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``recipe`` on ``dataset`` and write the model folder ``out``.

    ``epochs``, ``batch_size``, ``lr``, ``dropout`` and ``augment`` default to the
    recipe's own values. ``l1``/``l2`` penalize every kernel; ``patience`` > 0 stops
    early on the validation loss and restores the best weights; ``lr_schedule`` is
    "cosine" (per epoch, down to lr/100), "constant" or "plateau" (halve when the val
    loss stalls); ``augment`` trains on random small shifts and rotations (images
    only; the saved model has no augmentation layers). The same ``seed`` gives the
    same model and test accuracy. ``max_train`` keeps only that many training
    samples (quick runs). ``progress`` shows a bar per epoch (default: when stderr
    is a terminal).
    """
    started = time.perf_counter()
    r = _recipe(recipe)
    opts = TrainOptions(
        recipe=r.name,
        dataset=str(dataset),
        epochs=r.epochs if epochs is None else int(epochs),
        batch_size=r.batch_size if batch_size is None else int(batch_size),
        lr=r.lr if lr is None else float(lr),
        l1=float(l1),
        l2=float(l2),
        dropout=r.dropout if dropout is None else float(dropout),
        patience=int(patience),
        augment=r.augment if augment is None else bool(augment),
        val_split=float(val_split),
        seed=int(seed),
        lr_schedule=lr_schedule,
        max_train=max_train,
    )
    opts.check()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"Output {out} exists and is not a folder.")
    out.parent.mkdir(parents=True, exist_ok=True)

    from edgekit.data import load_dataset

    ds = load_dataset(
        opts.dataset, layout=r.layout, val_split=opts.val_split, max_train=opts.max_train
    )

    if opts.augment and ds.preprocess.kind != "image":
        if augment:
            raise InputError(
                f"--augment needs image data, and {ds.source} holds arrays; drop --augment."
            )
        opts.augment = False  # the recipe's default applies to images only

    import keras

    _seed_everything(opts.seed)
    model = r.build(
        ds.x_train.shape[1:], ds.num_classes, Regularization(opts.l1, opts.l2, opts.dropout)
    )
    fit_model = model
    if opts.augment:
        aug = _augmenter(ds.x_train.shape[1:], ds.preprocess.layout)
        inp = keras.Input(ds.x_train.shape[1:])
        fit_model = keras.Model(inp, model(aug(inp)), name=f"{model.name}_augmented")
    fit_model.compile(
        optimizer=keras.optimizers.Adam(opts.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    has_val = len(ds.y_val) > 0
    callbacks = [cb for cb in [_lr_callback(opts)] if cb is not None]
    early = None
    if opts.patience > 0:
        early = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=opts.patience, restore_best_weights=True
        )
        callbacks.append(early)
    if progress is None:
        progress = sys.stderr.isatty()
    steps = math.ceil(len(ds.y_train) / opts.batch_size)
    if progress:
        callbacks.append(_progress_callback(opts.epochs, steps))

    t_fit = time.perf_counter()
    fit = fit_model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=opts.batch_size,
        epochs=opts.epochs,
        validation_data=(ds.x_val, ds.y_val) if has_val else None,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    train_time = time.perf_counter() - t_fit

    probs = model.predict(ds.x_test, batch_size=256, verbose=0).astype(np.float64)
    pred = probs.argmax(axis=1)
    test_acc = float((pred == ds.y_test).mean())
    p_true = probs[np.arange(len(ds.y_test)), ds.y_test]
    test_loss = float(-np.log(np.clip(p_true, 1e-7, 1.0)).mean())

    from edgekit.train.report import (
        classification_metrics,
        plot_confusion,
        plot_curves,
        plot_predictions,
    )

    history = _history(fit.history, opts)
    cls = classification_metrics(ds.y_test, pred, ds.class_names)
    best_epoch = None
    if early is not None and has_val:
        best_epoch = int(np.argmin(history["val_loss"])) + 1
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save(tmp / "model.keras")
        ds.preprocess.save(tmp / "preprocess.json")
        _write_json(tmp / "history.json", history)
        plot_curves(history, tmp / "curves.png", title=f"{r.name} on {ds.source}")
        plot_confusion(cls["confusion_matrix"], ds.class_names, tmp / "confusion.png")
        plot_predictions(ds, pred, tmp / "predictions.png")
        wall = time.perf_counter() - started
        metrics = {
            "schema_version": SCHEMA_VERSION,
            "recipe": r.name,
            "dataset": ds.source,
            "seed": opts.seed,
            "options": asdict(opts),
            "test": {
                "accuracy": float(test_acc),
                "loss": float(test_loss),
                "samples": int(len(ds.y_test)),
                "errors": int((pred != ds.y_test).sum()),
            },
            "per_class": cls["per_class"],
            "confusion_matrix": cls["confusion_matrix"],
            "class_names": ds.class_names,
            "splits": ds.info,
            "epochs_run": len(history["epoch"]),
            "best_epoch": best_epoch,
            "stopped_early": bool(early is not None and early.stopped_epoch > 0),
            "parameters": int(model.count_params()),
            "input_shape": list(ds.x_train.shape[1:]),
            "train_time_s": round(train_time, 3),
            "wall_time_s": round(wall, 3),
            "versions": _versions(),
        }
        _write_json(tmp / "metrics.json", metrics)
        from edgekit.outputs import output_lock, publish_files

        with output_lock(out):  # two runs into one folder never interleave their files
            publish_files(tmp, out, OUTPUT_FILES)  # never touches files it did not write
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TrainResult(
        out_dir=out,
        model_path=out / "model.keras",
        test_accuracy=float(test_acc),
        test_loss=float(test_loss),
        epochs_run=len(history["epoch"]),
        best_epoch=best_epoch,
        wall_time_s=wall,
        metrics=metrics,
        history=history,
    )


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
