"""What every pass shares: the `Pass` base class, its config, and its one result type.

A pass is a class with a declared config dataclass and one ``run(model, config, out)``
(Olive's ``Pass._run_for_config``). Its capabilities (formats, precisions) are data in
`edgekit.optimize.passes.PASSES`, so nothing here imports a framework.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgekit.optimize.passes import PASSES, PassInfo


@dataclass(frozen=True)
class PassConfig:
    """The settings of one pass run; each pass declares a subclass with its own fields."""


@dataclass
class PassResult:
    """What a pass made: the model written at `path`, its format and precision, and what
    the pass measured or decided (`details`) and wants the user told (`warnings`)."""

    path: Path
    format: str
    precision: str = "fp32"
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    model: Any = None  # the in-memory model as well, when the pass built one (Keras)


class Pass(ABC):
    """A Model -> Model transformation.

    Subclasses set `name` (their row in `PASSES`) and `Config` (a `PassConfig`
    subclass), and implement `_run`; `run` checks the config's type before calling it.
    """

    name: ClassVar[str]
    Config: ClassVar[type[PassConfig]]

    @property
    def info(self) -> PassInfo:
        """This pass's row of the table."""
        return PASSES[self.name]

    def run(self, model: Any, config: PassConfig, out: Path) -> PassResult:
        """Transform `model` (a path, an `edgekit.model.Model`, or an in-memory Keras model)
        as `config` says and write the result at `out`."""
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} takes a {self.Config.__name__}, not {type(config)}")
        self.info.require()
        return self._run(model, config, Path(out))

    @abstractmethod
    def _run(self, model: Any, config: Any, out: Path) -> PassResult:
        """The pass itself; `config` is an instance of `Config`."""
