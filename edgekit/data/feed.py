"""How a dataset feeds a model: the one decision every verb that feeds data shares.

``plan_feed`` picks the :class:`Preprocess` that turns a source's stored samples into
the model's input, from (in order of precedence) a saved ``preprocess.json`` (given,
or found beside the model), the preprocessing flags (``FeedFlags``), or a guess that
looks at the data itself:

- float arrays already of the model's input shape are fed as they are stored;
- integer images (uint8) are scaled to 0..1 (by 1/255, or by their maximum);
- pictures of another size are resized to the model's height and width.

Whatever is chosen is said in one line (``FeedPlan.describe``) and recorded in every
report (``FeedPlan.to_dict``), with where it came from: "saved file", "flags" or "guess".

Example::

    from edgekit.data import read_source
    from edgekit.data.feed import plan_feed
    raw = read_source("npz:data.npz")
    plan = plan_feed(model.signature, raw)
    print(plan.describe())
    ds = plan.load(raw, splits=("test",))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data.dataset import Dataset, RawData, load_dataset, read_source
from edgekit.data.preprocess import Preprocess
from edgekit.errors import InputError

__all__ = ["CHANCE_FACTOR", "FeedFlags", "FeedPlan", "chance_warning", "near_chance", "plan_feed"]

# A baseline whose accuracy is at most CHANCE_FACTOR / num_classes is "at chance": the
# data almost certainly does not reach the model the way it was trained.
CHANCE_FACTOR = 1.5

# Where a plan came from, as reports say it.
SOURCES = ("saved file", "flags", "guess")


@dataclass(frozen=True)
class FeedFlags:
    """Preprocessing given on the command line (or by keyword) instead of a file.

    ``scale`` multiplies the stored values (default: what the guess would use: 1/255
    for uint8, 1 for floats); ``mean`` and ``std`` then normalize per channel
    (``(x * scale - mean) / std``); ``layout`` is the layout the model takes;
    ``resize`` is the (height, width) images are resized to; ``as_is`` feeds the arrays
    exactly as stored, only checking their shape. ``preprocess`` is a preprocess.json.
    """

    preprocess: str | os.PathLike | None = None
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str | None = None
    resize: tuple[int, int] | None = None
    as_is: bool = False

    def given(self) -> bool:
        """Whether any preprocessing flag (not the file) was set."""
        return self.as_is or any(
            v is not None for v in (self.scale, self.mean, self.std, self.layout, self.resize)
        )

    def text(self) -> str:
        """The flags as the command line spells them."""
        parts = ["--as-is"] if self.as_is else []
        if self.scale is not None:
            parts.append(f"--scale {self.scale:g}")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"--{name} " + ",".join(f"{m:g}" for m in v))
        if self.layout is not None:
            parts.append(f"--layout {self.layout}")
        if self.resize is not None:
            parts.append(f"--resize {self.resize[0]},{self.resize[1]}")
        return " ".join(parts)


@dataclass
class FeedPlan:
    """How one source feeds one model: the Preprocess, where it came from, and why."""

    preprocess: Preprocess
    source: str  # "saved file", "flags" or "guess"
    origin: str  # the file's path, the flags' text, or what the guess looked at
    note: str = ""  # one line for the user when the choice is a judgement call
    stored: dict[str, Any] = field(default_factory=dict)  # dtype, range, shape of x

    def describe(self) -> str:
        """The one line a verb prints about how it feeds the data."""
        if self.note:
            return self.note
        return f"preprocessing from {self.source} ({self.origin}): {_recipe(self.preprocess)}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record for reports (eval JSON, report.json, manifest.json)."""
        return {
            "source": self.source,
            "origin": self.origin,
            "description": self.describe(),
            "stored": self.stored,
            "preprocess": self.preprocess.to_dict(),
        }

    def load(self, data: str | RawData, **only: Any) -> Dataset:
        """The source's splits fed through this plan (``only``: load_dataset's splits,
        sample_train)."""
        return load_dataset(data, self.preprocess, **only)


def _recipe(pre: Preprocess) -> str:
    """The arithmetic of a Preprocess in a few words."""
    steps = []
    if pre.resize is not None:
        steps.append(f"resize to {pre.resize[0]}x{pre.resize[1]}")
    if pre.scale != 1.0:
        steps.append(f"x * {pre.scale:.6g}")
    if any(m != 0.0 for m in pre.mean) or any(s != 1.0 for s in pre.std):
        steps.append(
            "(x - [" + ", ".join(f"{m:.4g}" for m in pre.mean) + "]) / ["
            + ", ".join(f"{s:.4g}" for s in pre.std) + "]"
        )  # fmt: skip
    steps.append(f"{pre.layout} {tuple(pre.input_shape)}")
    return ", ".join(steps)


def _dims(signature: Any) -> tuple[int | None, ...]:
    inputs = signature.inputs
    if len(inputs) != 1:
        raise InputError(
            f"feeding a dataset needs a single-input model; this one has {len(inputs)} inputs."
        )
    shape = inputs[0].shape
    if shape is None:
        raise InputError(f"input '{inputs[0].name}' has unknown rank, so data cannot be fitted.")
    return tuple(d if isinstance(d, int) and d > 0 else None for d in list(shape)[1:])


def _stored(raw: RawData) -> dict[str, Any]:
    """dtype, value range (of the first samples) and shape of a source's x."""
    x = raw.x
    if isinstance(x, list):
        first = np.asarray(x[0])
        return {"dtype": str(first.dtype), "shape": ["N", "varying"], "min": None, "max": None}
    head = np.asarray(x[:1000])
    return {
        "dtype": str(x.dtype),
        "shape": ["N", *[int(d) for d in x.shape[1:]]],
        "min": float(head.min()),
        "max": float(head.max()),
    }


def _image_layout(dims: Sequence[int | None]) -> str | None:
    if len(dims) == 3 and dims[-1] in (1, 3):
        return "nhwc"
    if len(dims) == 3 and dims[0] in (1, 3):
        return "nchw"
    return None


def _fits(sample: tuple[int, ...], dims: Sequence[int | None]) -> bool:
    return len(sample) == len(dims) and all(
        d is None or d == s for s, d in zip(sample, dims, strict=True)
    )


def _guess(
    raw: RawData, dims: tuple[int | None, ...], layout: str | None
) -> tuple[Preprocess, str]:
    """The guess from the data and the model's input shape, and its one-line note."""
    scale = 1.0 / raw.value_max
    names = raw.class_names
    layout = layout or _image_layout(dims)
    sample = None if isinstance(raw.x, list) else tuple(int(d) for d in raw.x.shape[1:])
    if raw.kind == "array" and sample is not None and _fits(sample, dims):
        pre = Preprocess("array", "array", sample, scale=scale, source=raw.name, class_names=names)
        return pre, ""
    if layout is None:
        if (
            sample is not None
            and all(d is not None for d in dims)
            and (int(np.prod(sample)) == int(np.prod(dims)))
        ):
            shape = tuple(int(d) for d in dims)
            pre = Preprocess("array", "array", shape, scale=scale, source=raw.name,
                             class_names=names)  # fmt: skip
            return pre, ""
        raise InputError(
            f"samples of shape {sample} from {raw.name} do not fit the model input "
            f"{tuple(dims)}; pass --resize/--layout or --preprocess."
        )
    if sample is not None and len(sample) not in (2, 3):
        raise InputError(
            f"samples of shape {sample} from {raw.name} are not images, so they do not fit "
            f"the model input {tuple(dims)}; pass data that matches the model's input."
        )
    if any(d is None for d in dims):
        raise InputError(
            f"cannot fit images to the dynamic input shape {tuple(dims)}; pass --resize H,W."
        )
    h, w, c = (dims[0], dims[1], dims[2]) if layout == "nhwc" else (dims[1], dims[2], dims[0])
    shape = (h, w, c) if layout == "nhwc" else (c, h, w)
    pre = Preprocess("image", layout, shape, resize=(h, w), channels=c, scale=scale,
                     source=raw.name, class_names=names)  # fmt: skip
    return pre, ""


def plan_feed(
    signature: Any,
    data: str | RawData,
    preprocess: Preprocess | str | os.PathLike | None = None,
    flags: FeedFlags | None = None,
    *,
    model_path: str | os.PathLike | None = None,
) -> FeedPlan:
    """Decide how ``data`` (a source string or RawData) feeds a model of ``signature``.

    ``preprocess`` (a Preprocess or a preprocess.json) wins, then ``flags.preprocess``,
    then the ``preprocess.json`` beside ``model_path``, then the other ``flags``, then
    the guess from the data (module docstring). Raises InputError when the data cannot
    be fitted to the model's input.
    """
    flags = flags or FeedFlags()
    raw = data if isinstance(data, RawData) else read_source(str(data))
    stored = _stored(raw)
    file = preprocess if preprocess is not None else flags.preprocess
    if isinstance(file, Preprocess):
        return FeedPlan(file, "saved file", "given", stored=stored)
    if file is not None:
        return FeedPlan(Preprocess.load(file), "saved file", str(file), stored=stored)
    if model_path is not None and not flags.given():
        found = _find_saved(Path(model_path))
        if found is not None:
            return FeedPlan(Preprocess.load(found), "saved file", str(found), stored=stored)
    dims = _dims(signature)
    if flags.as_is:
        sample = stored["shape"][1:]
        if "varying" in sample or not _fits(tuple(sample), dims):
            raise InputError(
                f"--as-is: samples of shape {tuple(sample)} from {raw.name} do not fit the "
                f"model input {tuple(dims)}."
            )
        pre = Preprocess("array", "array", tuple(sample), source=raw.name,
                         class_names=raw.class_names)  # fmt: skip
        return FeedPlan(pre, "flags", "--as-is", stored=stored)
    layout = flags.layout
    if flags.resize is not None and layout is None:
        layout = _image_layout(dims) or "nhwc"
    pre, note = _guess(raw, dims, layout)
    if flags.given():
        changes: dict[str, Any] = {}
        if flags.scale is not None:
            changes["scale"] = float(flags.scale)
        if flags.mean is not None:
            changes["mean"] = list(flags.mean)
        if flags.std is not None:
            if any(s == 0 for s in flags.std):
                raise InputError("--std must not contain 0.")
            changes["std"] = list(flags.std)
        if flags.resize is not None:
            if pre.kind != "image":
                raise InputError(f"--resize needs image samples; {raw.name} has {stored['shape']}.")
            h, w = flags.resize
            c = pre.channels
            changes["resize"] = (h, w)
            changes["input_shape"] = (h, w, c) if pre.layout == "nhwc" else (c, h, w)
        pre = replace(pre, **changes)
        return FeedPlan(pre, "flags", flags.text(), stored=stored)
    if raw.kind == "array" and stored["dtype"].startswith("float"):
        note = (
            f"feeding x as stored: {stored['dtype']} in [{stored['min']:.3g}, "
            f"{stored['max']:.3g}], shape ({', '.join(map(str, stored['shape']))}); pass "
            "--scale/--mean/--std or --preprocess if the model was trained otherwise"
        )
        if pre.kind == "image":
            note = note.replace("as stored", f"resized to {pre.resize[0]}x{pre.resize[1]}")
    return FeedPlan(pre, "guess", "the data's dtype and shape", note=note, stored=stored)


def _find_saved(model_path: Path) -> Path | None:
    candidates = [model_path / "preprocess.json"] if model_path.is_dir() else []
    candidates.append(model_path.parent / "preprocess.json")
    return next((c for c in candidates if c.is_file()), None)


# ---- chance level -------------------------------------------------------------------


def near_chance(accuracy: float | None, num_classes: int) -> bool:
    """Whether ``accuracy`` is at or near chance: at most CHANCE_FACTOR / num_classes."""
    if accuracy is None or num_classes < 2:
        return False
    return accuracy <= CHANCE_FACTOR / num_classes


def chance_warning(accuracy: float, num_classes: int) -> str:
    """The loud warning for a baseline at chance."""
    return (
        f"BASELINE AT CHANCE: accuracy {accuracy:.1%} is within {CHANCE_FACTOR:g}x of chance "
        f"(1/{num_classes} = {1 / num_classes:.1%}); the data probably does not match how "
        "the model was trained: check --scale/--mean/--std/--layout or pass --preprocess"
    )
