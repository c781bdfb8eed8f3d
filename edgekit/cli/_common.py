"""Helpers shared by the command modules: JSON output and rich consoles."""

from __future__ import annotations

import functools
import json
import math
import sys
from typing import Any

import click

from edgekit.cli.params import POSITIVE

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


def _floats(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """`--mean 0.5,0.4,0.3` -> (0.5, 0.4, 0.3)."""
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}.") from None
    if not all(math.isfinite(v) for v in out):
        raise click.BadParameter(f"expected finite numbers, got {value!r}.")
    return out


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """`--resize 28,28` -> (28, 28)."""
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"expected H,W (two positive whole numbers), got {value!r}.")
    return int(parts[0]), int(parts[1])


_FEED_NAMES = ("preprocess", "scale", "mean", "std", "layout", "resize", "as_is")


def feed_options(f: Any = None, *, scored: bool = True) -> Any:
    """How a verb's data feeds the model (`edgekit.data.feed.plan_feed`), the same options
    on every verb that feeds data. The command receives ``feed`` (a FeedFlags) instead of
    the separate options, and, on a verb that scores accuracy (`scored`),
    ``accept_low_baseline``. Use as ``@feed_options`` or ``@feed_options(scored=False)``."""
    if f is None:
        return functools.partial(feed_options, scored=scored)
    options = [
        click.option("--preprocess", type=click.Path(exists=True, dir_okay=False),
                     help="preprocess.json to feed with (default: the one beside MODEL)."),
        click.option("--scale", type=POSITIVE, default=None,
                     help="Multiply stored values by this (default: 1/255 for uint8, 1 for "
                     "floats)."),
        click.option("--mean", callback=_floats, metavar="M[,M...]",
                     help="Subtract per channel, after --scale."),
        click.option("--std", callback=_floats, metavar="S[,S...]",
                     help="Divide per channel, after --mean."),
        click.option("--layout", type=click.Choice(["nhwc", "nchw"]), default=None,
                     help="The layout the model takes (default: from its input shape)."),
        click.option("--resize", callback=_size, metavar="H,W", help="Resize images to H,W."),
        click.option("--as-is", is_flag=True,
                     help="Feed the arrays exactly as stored (only shape is checked)."),
    ]  # fmt: skip
    if scored:
        options.append(click.option("--accept-low-baseline", is_flag=True,
                                    help="Accept a baseline accuracy at chance as right."))  # fmt: skip

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edgekit.data.feed import FeedFlags

        kwargs["feed"] = FeedFlags(**{k: kwargs.pop(k) for k in _FEED_NAMES})
        return f(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
