"""`inspect`: what a model is, and whether each runtime really runs it."""

from __future__ import annotations

import os
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.model import Model, load
from edgekit.runtimes import get_runtime, target_runtimes


def try_runtime(model: Model, runtime: str, threads: int = 1) -> dict[str, Any]:
    """Load `model` on `runtime` and run it once on generated input; never raises for the model."""
    from edgekit.inputs import generate_inputs

    try:
        rt = get_runtime(runtime)
        rt.require()
        rt.check_format(model)
        feeds = generate_inputs(model)[0]
        with rt.open(model, threads=threads) as session:
            outputs = session.run(feeds)
        return {
            "ok": True,
            "error": None,
            "outputs": {k: list(v.shape) for k, v in outputs.items()},
        }
    except EdgekitError as exc:
        return {"ok": False, "error": str(exc)}


def inspect_model(
    path: str | os.PathLike, *, runtimes: list[str] | None = None, trust_model: bool = False
) -> dict[str, Any]:
    """Everything `edgekit inspect` shows, as one JSON-ready dict."""
    model = load(path, trust_model=trust_model)
    sig = model.signature
    return {
        "path": str(model.path),
        "format": str(model.format),
        "size_bytes": model.size_bytes,
        "sha256": model.sha256,
        "inputs": [t.to_dict() for t in sig.inputs],
        "outputs": [t.to_dict() for t in sig.outputs],
        "params": model.param_count,
        "ops": dict(sorted(model.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        "runtimes": {name: try_runtime(model, name) for name in (runtimes or target_runtimes())},
    }
