"""What every framework's trainer shares: options, the schedule, progress, and the finished folder.

A trainer (``keras_trainer``, ``torch_trainer``) fits a recipe on a split dataset
and hands back a `Fitted`; `finish` scores it on the test split, draws the
plots, writes ``metrics.json`` last and publishes the folder atomically, the
same way for both.
"""

from __future__ import annotations

import importlib
import json
import math
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import InputError
from edgekit.extras import require

if TYPE_CHECKING:
    from edgekit.data import Dataset
    from edgekit.train.recipes import Recipe

SCHEMA_VERSION = 1
LR_SCHEDULES = ("cosine", "constant", "plateau")


@dataclass(frozen=True)
class Trainer:
    """Where a framework's training loop lives; its module is imported only when used."""

    module: str  # defines ``fit(recipe, opts, ds, progress) -> Fitted``
    package: str  # the framework it imports, checked first so a missing one names its extra
    model_file: str  # what the trained model is saved as


# A new framework is one trainer module plus one line here.
TRAINERS: dict[str, Trainer] = {
    "keras": Trainer("edgekit.train.keras_trainer", "keras", "model.keras"),
    "torch": Trainer("edgekit.train.torch_trainer", "torch", "model.pt2"),
}
MODEL_FILES = {name: t.model_file for name, t in TRAINERS.items()}
FRAMEWORKS = tuple(TRAINERS)
_OTHER_FILES = (
    "preprocess.json",
    "history.json",
    "curves.png",
    "confusion.png",
    "predictions.png",
    "metrics.json",  # last: it marks a finished folder
)


def _unknown_framework(framework: str) -> str:
    return f"--framework must be one of {', '.join(FRAMEWORKS)}, not {framework!r}"


def trainer_fit(framework: str) -> Callable[[Recipe, TrainOptions, Dataset, bool], Fitted]:
    """The ``fit`` of ``framework``'s trainer, importing its module (and framework) now."""
    if framework not in TRAINERS:
        raise InputError(_unknown_framework(framework))
    trainer = TRAINERS[framework]
    require(trainer.package)
    return importlib.import_module(trainer.module).fit


def output_files(framework: str) -> tuple[str, ...]:
    """Every file a run with ``framework`` writes, in the order it publishes them."""
    return (MODEL_FILES[framework], *_OTHER_FILES)


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
    framework: str = "keras"

    def check(self) -> None:
        """Raise InputError naming the first option that is out of range."""
        checks = [
            (self.framework in FRAMEWORKS, _unknown_framework(self.framework)),
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


@dataclass
class Fitted:
    """A trainer's result: test-split probabilities, per-epoch columns, and how to save it."""

    test_probs: np.ndarray  # [samples, classes], from the model as saved
    columns: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy, lr per epoch
    stopped_early: bool
    parameters: int
    train_time_s: float
    save: Callable[[Path], None]  # writes the model file
    versions: dict[str, str]  # the framework's packages


def cosine_lr(opts: TrainOptions, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``: cosine decay per epoch from lr down to lr/100."""
    t = epoch / max(1, opts.epochs - 1)
    return opts.lr / 100 + (opts.lr - opts.lr / 100) * 0.5 * (1 + math.cos(math.pi * t))


class EpochProgress:
    """A rich progress bar per epoch on stderr, fed by either framework's training loop."""

    def __init__(self, epochs: int, steps: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.epochs, self.steps = epochs, steps
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=Console(stderr=True),
        )

    def start(self) -> None:
        self.progress.start()

    def epoch_begin(self, epoch: int) -> None:
        self.task = self.progress.add_task(
            f"epoch {epoch + 1}/{self.epochs}", total=self.steps, metrics=""
        )

    def batch_end(self, batch: int, logs: dict) -> None:
        text = f"loss {logs.get('loss', 0):.4f} acc {logs.get('accuracy', 0):.4f}"
        self.progress.update(self.task, completed=batch + 1, metrics=text)

    def epoch_end(self, logs: dict) -> None:
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        text = " ".join(f"{k.replace('accuracy', 'acc')} {logs[k]:.4f}" for k in keys if k in logs)
        self.progress.update(self.task, completed=self.steps, metrics=text)

    def stop(self) -> None:
        self.progress.stop()


def history(columns: dict[str, list], opts: TrainOptions) -> dict:
    """Per-epoch columns (loss, accuracy, val_*, lr) as plain floats."""
    cols = {k: [float(v) for v in vals] for k, vals in columns.items()}
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


def finish(
    recipe: Recipe, opts: TrainOptions, ds: Dataset, fitted: Fitted, out: Path, started: float
) -> TrainResult:
    """Score ``fitted`` on the test split, write every output and publish the folder."""
    from edgekit import __version__
    from edgekit.train.report import (
        classification_metrics,
        plot_confusion,
        plot_curves,
        plot_predictions,
    )

    probs = fitted.test_probs.astype(np.float64)
    pred = probs.argmax(axis=1)
    test_acc = float((pred == ds.y_test).mean())
    p_true = probs[np.arange(len(ds.y_test)), ds.y_test]
    test_loss = float(-np.log(np.clip(p_true, 1e-7, 1.0)).mean())
    hist = history(fitted.columns, opts)
    cls = classification_metrics(ds.y_test, pred, ds.class_names)
    best_epoch = None
    if opts.patience > 0 and len(ds.y_val) > 0:
        best_epoch = int(np.argmin(hist["val_loss"])) + 1
    files = output_files(opts.framework)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        fitted.save(tmp / files[0])
        ds.preprocess.save(tmp / "preprocess.json")
        write_json(tmp / "history.json", hist)
        plot_curves(hist, tmp / "curves.png", title=f"{recipe.name} on {ds.source}")
        plot_confusion(cls["confusion_matrix"], ds.class_names, tmp / "confusion.png")
        plot_predictions(ds, pred, tmp / "predictions.png")
        wall = time.perf_counter() - started
        metrics = {
            "schema_version": SCHEMA_VERSION,
            "recipe": recipe.name,
            "framework": opts.framework,
            "dataset": ds.source,
            "seed": opts.seed,
            "options": asdict(opts),
            "test": {
                "accuracy": test_acc,
                "loss": test_loss,
                "samples": int(len(ds.y_test)),
                "errors": int((pred != ds.y_test).sum()),
            },
            "per_class": cls["per_class"],
            "confusion_matrix": cls["confusion_matrix"],
            "class_names": ds.class_names,
            "splits": ds.info,
            "epochs_run": len(hist["epoch"]),
            "best_epoch": best_epoch,
            "stopped_early": fitted.stopped_early,
            "parameters": fitted.parameters,
            "input_shape": list(ds.x_train.shape[1:]),
            "train_time_s": round(fitted.train_time_s, 3),
            "wall_time_s": round(wall, 3),
            "versions": {
                "edgekit": __version__,
                **fitted.versions,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }
        write_json(tmp / "metrics.json", metrics)
        from edgekit.outputs import output_lock, publish_files

        with output_lock(out):  # two runs into one folder never interleave their files
            publish_files(tmp, out, files)  # never touches files it did not write
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TrainResult(
        out_dir=out,
        model_path=out / files[0],
        test_accuracy=test_acc,
        test_loss=test_loss,
        epochs_run=len(hist["epoch"]),
        best_epoch=best_epoch,
        wall_time_s=wall,
        metrics=metrics,
        history=hist,
    )


def write_json(path: Path, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
