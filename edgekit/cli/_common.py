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
