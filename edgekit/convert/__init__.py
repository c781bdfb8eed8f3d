"""Convert a model to another format along the best path of the conversion graph that works.

Paths come from `edgekit.convert.graph` (shortest first). Each is tried in turn;
a path fails when one of its converters refuses the model or when the result does
not reproduce the source's outputs (`edgekit.verify`). The first path whose result
passes is written to `out`; every attempt and why it failed is in the result.

Example::

    from edgekit.convert import convert
    res = convert("model.keras", "tflite", "model.tflite")
    print(res.path_str, res.parity.summary())
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.convert.graph import EDGES, SUFFIX, TARGETS, Edge, EdgeOptions, find_paths, path_str
from edgekit.convert.layout import input_layouts, layout_notes
from edgekit.errors import (
    EdgekitError,
    InputError,
    MissingDependencyError,
    UnsupportedModelError,
    VerificationError,
)
from edgekit.model import Model
from edgekit.outputs import output_lock

__all__ = [
    "EDGES",
    "TARGETS",
    "Attempt",
    "ConversionResult",
    "convert",
    "find_paths",
    "output_path",
]


@dataclass
class Attempt:
    """One path tried: the formats it goes through, the tools, and why it failed (if it did)."""

    formats: list[str]
    tools: list[str]
    ok: bool
    error: str | None = None
    stage: str = ""  # "convert" or "verify" when it failed

    @property
    def path_str(self) -> str:
        return " -> ".join(self.formats)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.formats, "tools": self.tools, "ok": self.ok, "error": self.error,
                "stage": self.stage}  # fmt: skip


@dataclass
class ConversionResult:
    """What `convert` did: the result model, the path taken, every attempt, and the parity."""

    source: Model
    model: Model
    path: list[str]
    tools: list[str]
    attempts: list[Attempt]
    parity: Any | None  # edgekit.verify.Parity, None when verification was skipped
    precision: str = "fp32"
    warnings: list[str] = field(default_factory=list)
    reference: str | None = None  # the runtime the source's outputs came from, when verified
    # Inputs the result takes in another layout than the source: {"x": "nhwc"} (onnx2tf).
    layouts: dict[str, str] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """True only when the result was checked against a reference that ran the source."""
        return self.parity is not None and self.parity.passed and self.reference is not None

    @property
    def path_str(self) -> str:
        return " -> ".join(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source.path),
            "output": str(self.model.path),
            "format": str(self.model.format),
            "path": self.path,
            "tools": self.tools,
            "precision": self.precision,
            "attempts": [a.to_dict() for a in self.attempts],
            "parity": self.parity.to_dict() if self.parity is not None else None,
            "verified": self.verified,
            "reference": self.reference,
            "warnings": self.warnings,
            "input_layouts": self.layouts,
        }


def output_path(out: str | os.PathLike, to: str) -> Path:
    """Where the result goes: `out` with the target format's suffix (a folder for savedmodel)."""
    p = Path(out)
    suffix = SUFFIX[to]
    if suffix and p.suffix.lower() != suffix:
        p = (
            p.with_suffix(suffix)
            if p.suffix.lower() in {*SUFFIX.values(), ".bin"}
            else Path(f"{p}{suffix}")
        )
    return p


def _place(built: Path, fmt: str, dest: Path) -> None:
    """Move a finished result into place; each file is renamed atomically over the old one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "savedmodel":
        if dest.exists():
            raise InputError(f"{dest}: already exists; remove it or choose another --out")
        os.replace(built, dest)
        return
    from edgekit.formats import reader_for
    from edgekit.outputs import replace_files

    # Weights before the .xml, so a reader never sees a new .xml with an old .bin.
    reader = reader_for(fmt)
    pairs = list(zip(reader.output_files(built), reader.output_files(dest), strict=True))
    replace_files(list(reversed(pairs)))


class _FailedBefore(Exception):
    """A path begins with hops that already failed on an earlier path: said once, not again."""


def _run_path(
    src: Model,
    path: list[Edge],
    work: Path,
    opts: EdgeOptions,
    cache: dict[tuple, Model],
    failed: set[tuple],
) -> Model:
    """Run each edge of `path`, reusing results of shared prefixes; returns the final Model.
    A prefix that raised before raises `_FailedBefore` (its error is already recorded)."""
    from edgekit.model import load

    current = src
    for i, edge in enumerate(path):
        key = tuple((e.src, e.dst, e.tool) for e in path[: i + 1])
        if key in failed:
            raise _FailedBefore
        if key in cache:
            current = cache[key]
            continue
        step_dir = Path(tempfile.mkdtemp(prefix="step", dir=work))
        target = step_dir / ("model" + SUFFIX[edge.dst] if SUFFIX[edge.dst] else "saved_model")
        hop_opts = opts if i == len(path) - 1 else EdgeOptions(opts.input_shapes, opts.opset)
        try:
            made = edge.runner()(current, target, hop_opts)
        except EdgekitError:
            if i < len(path) - 1:  # an intermediate hop: every longer path through it fails too
                failed.add(key)
            raise
        current = load(made, trust_model=src.trust_model)
        cache[key] = current
    return current


def convert(
    model: Model | str | os.PathLike,
    to: str,
    out: str | os.PathLike,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    opset: int | None = None,
    verify: bool = True,
    tolerance: float | None = None,
    *,
    precision: str = "fp32",
    count: int = 4,
    trust_model: bool = False,
    feeds: Sequence[Mapping[str, Any]] | str | os.PathLike | None = None,
    channels_last: bool = False,
) -> ConversionResult:
    """Convert `model` to format `to`, written at `out` (suffix added when missing).

    Tries the paths of the conversion graph shortest first; with `verify`, a result
    whose outputs differ from the source's beyond the tolerance of `precision`
    (`tolerance` overrides the absolute bound) counts as a failed path and the
    next one is tried. `input_shapes` fixes dynamic input dimensions
    (``{"input": (1, 224, 224, 3)}``); `opset` is the ONNX opset for ONNX results.
    `precision` is "fp32" or "fp16" (weights stored in float16 where the target
    format supports it). `feeds`, keyed by the source's input names, are the inputs
    verification runs on (the user's own samples), or a .npz holding them (one array
    per input, optionally with a leading sample axis: `edgekit.bench.inputs.load_npz`);
    when None, `count` are generated from the signature. `channels_last` makes a PyTorch model's 4-D inputs and outputs
    NHWC in a TFLite result (litert-torch). Raises UnsupportedModelError naming every path's reason
    when none converts, VerificationError when some converted but none matched.
    """
    from edgekit.convert._common import quiet_tensorflow
    from edgekit.model import load

    quiet_tensorflow()
    src = model if isinstance(model, Model) else load(model, trust_model=trust_model)
    if to not in TARGETS:
        raise InputError(f"unknown target format {to!r}; valid formats: {', '.join(TARGETS)}")
    if precision not in ("fp32", "fp16"):
        raise InputError(
            f"convert makes fp32 or fp16 models, not {precision!r}; int8 is the optimize pass's job"
        )
    fmt = str(src.format)
    if fmt == to and (opset is None or to != "onnx"):
        more = "; pass --opset N to change its opset" if to == "onnx" else ""
        raise InputError(f"{src.path}: is already a {to} model; nothing to convert{more}")
    paths = find_paths(fmt, to)
    if not paths:
        raise UnsupportedModelError(
            f"{src.path}: edgekit has no conversion path from {fmt} to {to}"
        )
    dest = output_path(out, to)
    if dest.resolve() in {p.resolve() for p in src.files} or dest.resolve() == src.path.resolve():
        raise InputError(f"{dest}: is the source model; choose another --out")
    opts = EdgeOptions(dict(input_shapes or {}), opset, precision, channels_last)
    if feeds is not None:
        if not verify:
            raise InputError("samples given to verify on (--input) cannot go with --no-verify")
        feeds = _user_feeds(src, feeds)

    attempts: list[Attempt] = []
    notes: list[str] = []
    reference: Any = None  # edgekit.convert.reference.Reference, computed on first need
    ref_error: str | None = None
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A second run on the same --out fails at once instead of mixing its files with ours.
    with output_lock(dest):
        work = Path(tempfile.mkdtemp(prefix=".edgekit-convert-", dir=dest.parent))
        cache: dict[tuple, Model] = {}
        failed: set[tuple] = set()
        try:
            for path in paths:
                formats = [fmt] + [e.dst for e in path]
                tools = [e.tool for e in path]
                try:
                    result = _run_path(src, path, work, opts, cache, failed)
                except _FailedBefore:
                    continue
                except MissingDependencyError as exc:
                    attempts.append(Attempt(formats, tools, False, str(exc), "convert"))
                    continue
                except EdgekitError as exc:
                    attempts.append(
                        Attempt(formats, tools, False, _strip(str(exc), src), "convert")
                    )
                    continue
                parity, note = None, None
                if verify:
                    if reference is None and ref_error is None:
                        reference, ref_error = _reference(src, opts, count, feeds)
                    if ref_error is not None:
                        attempts.append(Attempt(formats, tools, True))
                        raise VerificationError(
                            f"{src.path}: converted to {to} via {path_str(path)} "
                            f"({', '.join(tools)}), but {ref_error}, so the result cannot be "
                            "verified; pass --no-verify to keep it unverified"
                        )
                    parity, note = _check(src, result, reference, opts, tolerance,
                                          given=feeds is not None)  # fmt: skip
                    if not parity.passed:
                        why = f"converted, but {parity.reason}"
                        if note:
                            why += f" ({note})"
                        why += _divergence(src, result, reference, tools[-1], parity)
                        attempts.append(Attempt(formats, tools, False, why, "verify"))
                        continue
                attempts.append(Attempt(formats, tools, True))
                if note:
                    notes.append(note)
                _place(result.path, to, dest)
                final = load(dest, trust_model=trust_model)
                for a, b in zip(src.signature.inputs, final.signature.inputs, strict=False):
                    if a.is_dynamic and not b.is_dynamic and not opts.input_shapes:
                        notes.append(f"input '{a.name}': dynamic shape fixed to {list(b.shape or ())} "
                                     f"by {' and '.join(tools)}")  # fmt: skip
                notes += _dtype_notes(src, final, tools)
                layouts = input_layouts(src, final)
                notes += layout_notes(src, final, layouts)
                if reference is not None and reference.notes:
                    notes.append(f"verified against {reference.runtime}: "
                                 f"{'; '.join(reference.notes)}")  # fmt: skip
                return ConversionResult(src, final, formats, tools, attempts, parity, precision,
                                        notes, reference.runtime if parity else None,
                                        layouts)  # fmt: skip

        finally:
            shutil.rmtree(work, ignore_errors=True)
        tried = "; ".join(f"{a.path_str}: {a.error}" for a in attempts)
        if any(a.stage == "verify" for a in attempts):
            raise VerificationError(
                f"{src.path}: no conversion to {to} reproduces the source's outputs ({tried}); "
                f"{_next_step(src, to, opts, verified=True)}"
            )
        raise UnsupportedModelError(
            f"{src.path}: cannot convert to {to}: {tried}; {_next_step(src, to, opts)}"
        )


def _dtype_notes(src: Model, final: Model, tools: list[str]) -> list[str]:
    """A note per input whose dtype the converters changed (a float64 source may become a
    float32 .tflite): verification casts the samples, but the user's own code must too."""
    from edgekit.verify import match_inputs

    order = match_inputs(src.signature, final.signature)
    notes = []
    for t, j in zip(final.signature.inputs, order, strict=True):
        a = src.signature.inputs[j]
        if a.dtype != t.dtype:
            notes.append(f"input '{a.name}': {a.dtype} in the source, {t.dtype} in the result "
                         f"({' and '.join(tools)}); cast samples to {t.dtype} to run it")  # fmt: skip
    return notes


def _user_feeds(
    src: Model, feeds: Sequence[Mapping[str, Any]] | str | os.PathLike
) -> list[dict[str, Any]]:
    """The user's samples checked against the source's inputs before anything converts, so a
    wrong name, shape or dtype is one sentence rather than "the source does not run"."""
    from edgekit.bench.inputs import load_npz
    from edgekit.runtimes.base import check_feeds

    if isinstance(feeds, (str, os.PathLike)):
        feeds = load_npz(feeds, src.signature, model_path=src.path)
    if not feeds:
        raise InputError("feeds is an empty list of samples")
    return [check_feeds(src.signature, f, src) for f in feeds]


def _next_step(src: Model, to: str, opts: EdgeOptions, verified: bool = False) -> str:
    """What the user can do after every path failed, as the end of one sentence."""
    steps = []
    if verified:
        steps.append("pass --tolerance to accept a larger error or --no-verify to skip the check")
    if any(t.is_dynamic for t in src.signature.inputs) and not opts.input_shapes:
        steps.append("fix dynamic inputs with --input-shape NAME=D1,D2,...")
    if str(src.format) == "onnx" and opts.opset is None:
        steps.append("try another opset with --opset N")
    steps.append(f"run `edgekit debug reduce {src.path.name} --to {to}` to save the smallest "
                 "failing subgraph for a report to the converter's project")  # fmt: skip
    return ", ".join(steps[:-1]) + (", or " if len(steps) > 1 else "") + steps[-1]


def _strip(message: str, src: Model) -> str:
    """Drop 'path: ' prefixes from a converter's error: the summary names the model once, and
    intermediate files live in a temporary folder that is gone when the user reads it."""
    import re

    message = message.replace(f"{src.path}: ", "")
    message = re.sub(r"\S*\.edgekit-convert-[^/\s]+/\S*?(model\.\w+|saved_model): ",
                     lambda m: f"the intermediate {m.group(1)}: ", message)  # fmt: skip
    return message.rstrip(".")


def _reference(
    src: Model, opts: EdgeOptions, count: int, feeds: Sequence[Mapping[str, Any]] | None
) -> tuple[Any, str | None]:
    """The source's outputs on generated inputs (`edgekit.convert.reference`), or why there
    are none, as a clause: no input can be generated, or no reference runtime runs it here."""
    from edgekit.convert.reference import reference_outputs
    from edgekit.inputs import generate_inputs

    if feeds is None:
        shapes = {k: v for k, v in opts.input_shapes.items()}
        try:
            feeds = generate_inputs(src, count=count, seed=0, shapes=shapes)
        except InputError as exc:  # strings: no sample edgekit could make means anything
            return None, f"verification needs inputs and {_strip(str(exc), src)}"
    try:
        return reference_outputs(src, feeds), None
    except EdgekitError as exc:
        return None, f"the source itself does not run here ({_strip(str(exc), src)})"


def _divergence(src: Model, result: Model, reference: Any, tool: str, parity: Any) -> str:
    """' (tool: the first node that diverges is ...)' for a wrong result, '' when not found."""
    from edgekit.debug.diverge import first_divergence

    try:
        found = first_divergence(src, result, reference.feeds[:1], precision=parity.precision,
                                 tolerance=parity.tolerance.atol)  # fmt: skip
    except EdgekitError:
        return ""
    return "" if found is None else f" ({tool}: {found.sentence()})"


def _check(
    src: Model,
    result: Model,
    reference: Any,
    opts: EdgeOptions,
    tolerance: float | None,
    given: bool = False,
) -> tuple[Any, str | None]:
    """The result's Parity against the reference, and a note on how it was compared.

    A float64 source whose target computes float32 is compared at float32 tolerance on
    the user's own samples (`given`): their values say whether float32 holds them. On
    generated inputs it stays at float64's bound, since values beyond float32's range
    (which small generated inputs never reach) would overflow unseen.
    """
    from edgekit.convert.reference import FP64_AS_FP32, check_precision, computes_float32
    from edgekit.verify import compare_outputs, model_precision

    feeds, outs = reference.feeds, reference.outputs
    precision = "int8" if model_precision(src) == "int8" else opts.precision
    checked, atol = check_precision(src, precision, tolerance)
    note = None
    if checked == "fp64" and computes_float32(result):
        if given:
            note, checked, atol = FP64_AS_FP32, precision, tolerance
        else:
            note = ("source is float64 and the target computes float32: on generated inputs it "
                    "is held to float64's bound, since only real data says whether its values "
                    "stay within float32's range; verify on samples of your data (--input FILE.npz, or feeds=) to "
                    "compare at float32 tolerance, or pass --tolerance to accept the error")  # fmt: skip
    try:
        try:
            return compare_outputs(src, result, feeds, reference=outs, precision=checked,
                                   tolerance=atol), note  # fmt: skip
        except EdgekitError:
            if str(result.format) != "onnx":
                raise
            # An ONNX result at an opset ONNX Runtime dropped runs on the specification's own.
            return compare_outputs(src, result, feeds, reference=outs, precision=checked,
                                   tolerance=atol, dst_runtime="onnx-reference"), note  # fmt: skip
    except EdgekitError as exc:
        from edgekit.verify import Parity, tolerance_for

        return Parity(float("inf"), float("inf"), 0.0, None, len(feeds), False,
                      tolerance_for(checked, atol), checked,
                      f"the result does not run: {_strip(str(exc), result)}"), note  # fmt: skip
