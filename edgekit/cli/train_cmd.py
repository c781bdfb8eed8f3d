"""`edgekit train`: train a recipe on a dataset and write a model folder."""

from __future__ import annotations

import click

from edgekit.cli._common import DATA_SOURCES_HELP, echo_json
from edgekit.cli.params import (
    BATCH,
    EPOCHS,
    FRACTION,
    NON_NEGATIVE,
    PATIENCE,
    POSITIVE,
    SEED,
)

# Kept in sync with edgekit.train.recipes.RECIPES by a test; listed here so that
# `--help` and the choice check import no framework.
RECIPE_NAMES = ("cnn", "lstm", "transformer")
LR_SCHEDULE_NAMES = ("cosine", "constant", "plateau")
FRAMEWORK_NAMES = ("keras", "torch")


@click.command("train")
@click.option("--recipe", required=True, type=click.Choice(RECIPE_NAMES), help="Model recipe.")
@click.option(
    "--framework",
    type=click.Choice(FRAMEWORK_NAMES),
    default="keras",
    show_default=True,
    help="Train with Keras (model.keras) or PyTorch (model.pt2, a torch.export program).",
)
@click.option(
    "--dataset",
    required=True,
    metavar="DATA",
    help=DATA_SOURCES_HELP,
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Output folder to write."
)
@click.option("--epochs", type=EPOCHS, help="Epochs (default: the recipe's).")
@click.option("--batch-size", type=BATCH, help="Batch size (recipe default).")
@click.option("--lr", type=POSITIVE, help="Initial learning rate (recipe default).")
@click.option(
    "--lr-schedule",
    type=click.Choice(LR_SCHEDULE_NAMES),
    default="cosine",
    show_default=True,
    help="Learning-rate schedule.",
)
@click.option(
    "--l1", type=NON_NEGATIVE, default=0.0, show_default=True, help="L1 penalty on kernels."
)
@click.option(
    "--l2", type=NON_NEGATIVE, default=0.0, show_default=True, help="L2 penalty on kernels."
)
@click.option("--dropout", type=FRACTION, help="Dropout rate before the head (recipe default).")
@click.option(
    "--patience",
    type=PATIENCE,
    default=0,
    show_default=True,
    help="Stop after this many epochs without a better val loss and restore the "
    "best weights (0: train all epochs).",
)
@click.option(
    "--augment/--no-augment",
    default=None,
    help="Train on random small shifts and rotations (recipe default: on).",
)
@click.option(
    "--val-split",
    type=FRACTION,
    default=0.15,
    show_default=True,
    help="Fraction of the training data held out for validation.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of a table.")
def train_command(
    recipe: str,
    framework: str,
    dataset: str,
    out: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    lr_schedule: str,
    l1: float,
    l2: float,
    dropout: float | None,
    patience: int,
    augment: bool | None,
    val_split: float,
    seed: int,
    as_json: bool,
) -> None:
    """Train a recipe (cnn, lstm, transformer) on a dataset, reproducibly.

    Writes model.keras (or model.pt2 with --framework torch), preprocess.json,
    history.json, metrics.json, curves.png, confusion.png and predictions.png into
    OUT. Both frameworks take the same input layout and give probabilities out, so
    eval, optimize and deploy feed them the same data.

    Example: edgekit train --recipe cnn --dataset digits --out runs/cnn
    """
    from edgekit.train import train

    result = train(
        recipe,
        dataset,
        out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lr_schedule=lr_schedule,
        l1=l1,
        l2=l2,
        dropout=dropout,
        patience=patience,
        augment=augment,
        val_split=val_split,
        seed=seed,
        framework=framework,
    )
    if as_json:
        echo_json(result.metrics)
        return
    from rich.console import Console
    from rich.table import Table

    m = result.metrics
    table = Table(title=f"{recipe} ({framework}) on {m['dataset']}", show_header=False)
    table.add_row(
        "test accuracy",
        f"{result.test_accuracy:.2%} ({m['test']['errors']} errors in {m['test']['samples']})",
    )
    table.add_row("test loss", f"{result.test_loss:.4f}")
    table.add_row(
        "epochs",
        f"{result.epochs_run}" + (f" (best {result.best_epoch})" if result.best_epoch else ""),
    )
    table.add_row("parameters", f"{m['parameters']:,}")
    table.add_row("wall time", f"{result.wall_time_s:.1f} s")
    table.add_row("model", str(result.model_path))
    Console().print(table)
