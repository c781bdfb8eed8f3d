"""edgekit: take a neural network to the edge.

Heavy frameworks are imported inside the functions that need them, so
`import edgekit` stays fast and loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from edgekit.model import Model

__all__ = ["__version__", "load"]


def load(
    path: str, *, trust_model: bool = False, example_input: str | list[str] | None = None
) -> Model:
    """Open a model file or folder and detect its format from its content.

    A PyTorch factory (`file.py:make_model`) runs with `trust_model` on `example_input`.
    """
    from edgekit.model import load as _load

    return _load(path, trust_model=trust_model, example_input=example_input)
