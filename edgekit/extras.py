"""Frameworks are optional extras: importing one that is missing is a user error naming the fix.

`pip install edgekit` installs the light core; each framework comes with an extra
(`edgekit[onnx]`, `[openvino]`, `[litert]`, `[train]`, `[torch]`, `[all]`). Code that needs a
framework imports it through `require`, inside the function that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgekit.errors import MissingDependencyError

__all__ = ["EXTRAS", "require"]

# Top-level module -> the extra that installs it (pyproject.toml's optional-dependencies).
EXTRAS: dict[str, str] = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "openvino": "openvino",
    "nncf": "openvino",
    "ai_edge_litert": "litert",
    "tensorflow": "train",
    "keras": "train",
    "tf2onnx": "train",
    "onnxconverter_common": "train",
    "sklearn": "train",
    "torch": "torch",
    "onnxscript": "torch",
    "litert_torch": "torch",
    "executorch": "executorch",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import and return `module`, or raise MissingDependencyError naming the pip command.

    `extra` defaults to the one `EXTRAS` lists for the module's top-level package.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top and exc.name != module:
            raise  # the module is there but one of its own imports is broken: a bug to see
        name = extra or EXTRAS.get(top, "all")
        raise MissingDependencyError(
            f"this needs {top}, which is not installed: pip install 'edgekit[{name}]'"
        ) from None
