"""What the reference-only runtimes share: they run a model in its own framework, in-process.

A reference (`keras`, `tensorflow`) is what a converted or optimized model is
checked against, and what `evaluate` scores a Keras model with; it is not a
deployment target, so profiles, `inspect` and `bench` do not offer it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgekit.errors import InputError
from edgekit.model import Model
from edgekit.runtimes.base import Runtime, Session


class ReferenceRuntime(Runtime):
    """A framework's own in-process execution of its format, on the host CPU."""

    reference_only = True
    extra = "train"  # TensorFlow and Keras

    @classmethod
    def check_format(cls, model: Model) -> None:
        # a user's choice of runtime, not a model to convert: no converter writes these formats
        if str(model.format) not in cls.formats:
            raise InputError(
                f"{model.path}: the {cls.name} runtime runs only {', '.join(cls.formats)} "
                f"models (it is their reference), not {model.format}"
            )

    @classmethod
    def open(
        cls,
        model: Model,
        *,
        device: str | None = None,
        threads: int | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Session:
        cls.require()
        cls.check_format(model)
        if device not in (None, "CPU", "cpu"):
            raise InputError(
                f"the {cls.name} runtime is a reference run on the host CPU (asked for {device!r})"
            )
        session = cls.load(model)
        session.threads = threads
        return session

    @classmethod
    def load(cls, model: Model) -> Session:
        """Load `model` in the framework and return its Session."""
        raise NotImplementedError


def output_names(session: Session, count: int) -> list[str]:
    """The signature's output names, or output_0.. when the framework returns another count."""
    names = [t.name for t in session.signature.outputs]
    if len(names) != count or len(set(names)) != count:
        return [f"output_{i}" for i in range(count)]
    return names
