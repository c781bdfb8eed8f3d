"""The precision a bundle is made at, and the optimize pass that makes the integer ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.errors import InputError
from edgekit.model import Model
from edgekit.vocab import FLOAT_PRECISIONS
from edgekit.vocab import INTEGER_PRECISIONS as INT_PRECISIONS

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["FLOAT_PRECISIONS", "INT_PRECISIONS", "Optimizer", "choose_precision",
           "compute_precision", "default_optimizer"]  # fmt: skip


# An optimizer turns the source model into one of `precision`, in the profile's format,
# inside `work`.
Optimizer = Callable[[Model, "Profile", str, Path], Model]


def default_optimizer(
    model: Model,
    profile: Profile,
    precision: str,
    work: Path,
    *,
    calib_data: object = None,
    eval_data: object = None,
    feed: object = None,
    accept_low_baseline: bool = False,
) -> Model:
    """Quantize the source through `edgekit.optimize.optimize` (the seam deploy uses for int8).

    The optimize pass converts to the profile's format itself (TFLite quantization
    needs the Keras or SavedModel source), so it gets the source model. Its verdict
    (budget met, warnings, accuracies, how the data was fed) rides on the returned model
    as ``optimize_report``. The data keywords are optimize's own.
    """
    from edgekit.model import load
    from edgekit.optimize import optimize

    result = optimize(model.path, profile, out=str(work), quantize=precision, measure=False,
                      calib_data=calib_data, eval_data=eval_data, feed=feed,
                      accept_low_baseline=accept_low_baseline)  # fmt: skip
    made = load(result.model_path)
    made.__dict__["optimize_report"] = {
        "met_budget": result.met_budget,
        "warnings": list(result.warnings),
        "baseline_accuracy": result.report["baseline"].get("accuracy"),
        "accuracy": result.report["optimized"].get("accuracy"),
        "feed": result.report["data"].get("feed"),
    }
    return made


def compute_precision(profile: Profile, precision: str) -> str | None:
    """The inference precision (the runtime's spelling, e.g. "bf16") the runtime must be
    compiled with for a bundle at `precision`: one the profile lists under
    `target.inference_precision`, whose model stays fp32; None for a stored precision."""
    from edgekit.vocab import INFERENCE_PRECISION_NAMES

    return next((p for p in profile.inference_precision
                 if INFERENCE_PRECISION_NAMES[p] == precision), None)  # fmt: skip


def choose_precision(profile: Profile, requested: str | None) -> tuple[str, str]:
    """The precision to deploy at and why: the requested one (a stored precision, or a
    compute precision of the profile's `inference_precision`), else the profile's first."""
    from edgekit.vocab import INFERENCE_PRECISION_NAMES

    allowed = list(profile.precision)
    allowed += [INFERENCE_PRECISION_NAMES[p] for p in profile.inference_precision]
    if requested is not None:
        if requested not in allowed:
            raise InputError(
                f"--precision {requested} is not allowed by {profile.name} "
                f"(it allows {', '.join(allowed)})"
            )
        return requested, "requested"
    return allowed[0], "the profile's first choice"
