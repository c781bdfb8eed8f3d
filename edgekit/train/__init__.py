"""Train one of edgekit's recipes on a dataset and write a finished model folder.

Example::

    from edgekit.train import train
    result = train("cnn", "digits", "out/cnn")               # Keras: model.keras
    result = train("cnn", "digits", "out/cnn-pt", framework="torch")  # PyTorch: model.pt2
    print(result.test_accuracy, result.model_path)

The output folder holds the model (``model.keras``, or ``model.pt2`` from
PyTorch), ``preprocess.json``, ``history.json``, ``metrics.json``, ``curves.png``,
``confusion.png`` and ``predictions.png``. It is assembled in a temporary folder
beside it and moved into place at the end, so a failed run leaves nothing that
looks finished. The framework-specific fitting lives in the trainer modules that
``base.TRAINERS`` names (``keras_trainer``, ``torch_trainer``); everything else in ``base``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from edgekit.errors import InputError
from edgekit.train.base import (
    FRAMEWORKS,
    LR_SCHEDULES,
    TrainOptions,
    TrainResult,
    finish,
    output_files,
    trainer_fit,
)
from edgekit.train.recipes import RECIPES, Recipe

__all__ = [
    "FRAMEWORKS",
    "LR_SCHEDULES",
    "OUTPUT_FILES",
    "RECIPES",
    "TrainOptions",
    "TrainResult",
    "output_files",
    "train",
]

# Every file a Keras run writes; metrics.json goes last and marks a finished folder.
OUTPUT_FILES = output_files("keras")


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"Unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}.")
    return RECIPES[name]


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
    framework: str = "keras",
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
    samples (quick runs). ``framework`` is "keras" (``model.keras``) or "torch" (the
    mirrored nn.Module, saved as a ``model.pt2`` ExportedProgram with a dynamic batch;
    same input layout and probabilities out). ``progress`` shows a bar per epoch
    (default: when stderr is a terminal).
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
        framework=framework,
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

    if progress is None:
        progress = sys.stderr.isatty()
    fit = trainer_fit(opts.framework)
    return finish(r, opts, ds, fit(r, opts, ds, progress), out, started)
