"""Helpers shared by the command modules: JSON output and rich consoles."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

# What --dataset (train, eval) accepts.
DATA_SOURCES_HELP = (
    "digits, npz:PATH (arrays x, y[, x_test, y_test]) or images:DIR (a folder per class)."
)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def shape_str(shape: list | None) -> str:
    return (
        "?" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
    )


def quant_str(q: dict | None) -> str:
    if not q:
        return ""
    scale, zp = q["scale"], q["zero_point"]
    if len(scale) == 1:
        return f"scale={scale[0]:.6g} zp={zp[0] if zp else 0}"
    return f"per-axis({q.get('axis')}) x{len(scale)}"


def is_tty() -> bool:
    return sys.stdout.isatty()


# --- PyTorch model factories (`file.py:make_model`), for every command that loads a model ---

EXAMPLE_INPUT_HELP = (
    "Example input for a PyTorch factory MODEL (file.py:make_model): SHAPE[:DTYPE], e.g. "
    "1x3x32x32:float32 (repeat per input), or an .npz of arrays."
)


def factory_options(trust: bool = False) -> Any:
    """`--example-input` (and, with `trust`, `--trust-model` for commands that lack it)."""

    def decorate(f: Any) -> Any:
        f = click.option("--example-input", "example_input", multiple=True,
                         metavar="SHAPE[:DTYPE]|NPZ", help=EXAMPLE_INPUT_HELP)(f)  # fmt: skip
        if trust:
            f = click.option("--trust-model", is_flag=True,
                             help="Allow a PyTorch factory MODEL (your Python code) to run.")(f)  # fmt: skip
        return f

    return decorate


def resolve_model(model: str, trust_model: bool, example_input: tuple[str, ...]) -> str:
    """The model to open: a PyTorch factory exported to a temporary .pt2, else `model` itself."""
    from edgekit.formats.torch_factory import export_factory, is_factory

    if not is_factory(model):
        return model
    return str(export_factory(model, example_input, trust_model))
