"""The profile schema: which keys a profile file may hold, of which kind, in which range.

Every choice list comes from `edgekit.vocab` (formats, precisions, arches, dtypes,
which runtime reads which format), so the schema, the error hints and `--help`
agree with the rest of edgekit. `edgekit.profiles` builds `Profile`s on top.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from edgekit.errors import ProfileError
from edgekit.vocab import (
    ARCHES,
    DTYPES,
    INFERENCE_PRECISIONS,
    PRECISIONS,
    PROFILE_FORMATS,
    REFERENCE_RUNTIMES,
    RUNTIME_FORMATS,
)

__all__ = [
    "ARCHES",
    "DELEGATES",
    "DEVICES",
    "DTYPES",
    "FORMATS",
    "PRECISIONS",
    "PROVIDERS",
    "QUANT_FORMATS",
    "QUANT_TYPES",
    "RANGES",
    "RUNTIME_KEYS",
    "RUNTIME_KEY_DEFAULTS",
    "RUNTIMES",
    "RUNTIME_FORMATS",
    "SCHEMA",
    "check_table",
    "format_bytes",
    "check_value",
    "hint",
    "key_name",
    "parse_size",
]

# --- capabilities as data: the vocabularies a profile may use -------------------

# Arches, formats, precisions, dtypes and which runtime reads which format come from
# edgekit.vocab; the lists below are knobs only a profile has.
RUNTIMES = tuple(r for r in RUNTIME_FORMATS if r not in REFERENCE_RUNTIMES)
FORMATS = PROFILE_FORMATS
DELEGATES = ("none", "xnnpack", "gpu", "edgetpu", "nnapi", "hexagon")
DEVICES = ("CPU", "GPU", "NPU", "TPU", "AUTO")
PROVIDERS = (
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "QNNExecutionProvider",
    "OpenVINOExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "NnapiExecutionProvider",
    "XnnpackExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
)
# Compute precisions a profile may list for `optimize` to try (f32 is the baseline's).
INFERENCE_CANDIDATES = tuple(p for p in INFERENCE_PRECISIONS if p != "f32")
QUANT_TYPES = ("int8", "uint8", "int16", "uint16")
QUANT_FORMATS = ("QDQ", "QOperator")
# `target` keys that only some runtimes read (a profile giving one to another runtime is
# refused), and what the key means where a profile of such a runtime leaves it out.
RUNTIME_KEYS: dict[str, tuple[str, ...]] = {
    "providers": ("onnxruntime",),
    "delegate": ("litert", "tflite-micro"),
    "inference_precision": ("openvino",),
}
RUNTIME_KEY_DEFAULTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("onnxruntime", "providers"): ("CPUExecutionProvider",),
}

# --- the schema: table -> key -> (kind, required, choices) ----------------------
# kinds: "str", "int", "bool", "size" (bytes: int or "256 KiB"), "str-list", "enum",
# "enum-list", "table".

_Spec = tuple[str, bool, tuple[str, ...]]

SCHEMA: dict[str, dict[str, _Spec]] = {
    "": {
        "name": ("str", True, ()),
        "description": ("str", True, ()),
        "source": ("str", True, ()),
        "target": ("table", True, ()),
        "quantization": ("table", False, ()),
        "compiler": ("table", False, ()),
        "limits": ("table", False, ()),
    },
    "target": {
        "arch": ("enum", True, ARCHES),
        "runtime": ("enum", True, RUNTIMES),
        "format": ("enum", True, FORMATS),
        "precision": ("enum-list", True, PRECISIONS),
        "device": ("enum", False, DEVICES),
        "providers": ("enum-list", False, PROVIDERS),
        "delegate": ("enum", False, DELEGATES),
        "threads": ("int", False, ()),
        # compute precisions of the fp32 model that `optimize` tries as candidates
        "inference_precision": ("enum-list", False, INFERENCE_CANDIDATES),
        "input_dtype": ("enum", False, DTYPES),
        "output_dtype": ("enum", False, DTYPES),
    },
    "quantization": {
        "activation_type": ("enum", False, QUANT_TYPES),
        "weight_type": ("enum", False, QUANT_TYPES),
        "per_channel": ("bool", False, ()),
        "reduce_range": ("bool", False, ()),
        "quant_format": ("enum", False, QUANT_FORMATS),
    },
    "compiler": {
        "name": ("str", True, ()),
        "command": ("str-list", True, ()),
    },
    "limits": {
        "max_model_bytes": ("size", False, ()),
        "max_arena_bytes": ("size", False, ()),
        "static_shapes": ("bool", False, ()),
        "unsupported_ops": ("str-list", False, ()),
        "int8_only": ("bool", False, ()),
    },
}

_KIND_WORDS = {
    "str": "a string",
    "int": "an integer",
    "bool": "a boolean (true or false)",
    "size": "a byte count (an integer, or a string such as '256 KiB')",
    "str-list": "a list of strings",
    "enum": "a string",
    "enum-list": "a list of strings",
    "table": "a table",
}

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


TIB = 1024**4

# Every numeric key's finite range, (table, key) -> (lowest, highest), both inclusive;
# tests/test_profiles.py holds that each "int" and "size" key of SCHEMA has one.
RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("target", "threads"): (1, 1024),
    ("limits", "max_model_bytes"): (1, TIB),
    ("limits", "max_arena_bytes"): (1, TIB),
}


def where(table: str) -> str:
    return f"in [{table}]" if table else "at the top level"


def key_name(table: str, key: str) -> str:
    return f"'{table}.{key}'" if table else f"'{key}'"


def hint(word: str, choices: Iterable[str], noun: str) -> str:
    """'; did you mean 'x'? Valid keys: a, b.' (or '; valid keys: a, b.' when nothing is close)."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    listed = ", ".join(choices) or "(none)"
    if close:
        return f"; did you mean '{close[0]}'? {noun.capitalize()}: {listed}."
    return f"; {noun}: {listed}."


def parse_size(value: object) -> int | float | None:
    """Bytes of an integer or a string such as '256 KiB'; None when it is neither.

    A string too large for a float gives inf, which the range check then refuses.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = (m.group(2) or "b").lower()
            size = float(m.group(1)) * _SIZE_UNITS[unit]
            return int(size) if math.isfinite(size) else size
    return None


def format_bytes(n: int) -> str:
    """A byte count in binary units, as a profile may write it: ``262144`` -> ``'256 KiB'``."""
    for unit, size in (("TiB", TIB), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def _check_range(source: str, table: str, key: str, number: int | float, shown: object) -> None:
    low, high = RANGES[(table, key)]
    if number > high:
        if key.endswith("_bytes"):
            span = f"{format_bytes(low)} and {format_bytes(high)}"
        else:
            span = f"{low} and {high}"
        raise ProfileError(
            f"{source}: {key_name(table, key)} must be between {span}, got {shown!r}."
        )


def check_value(source: str, table: str, key: str, spec: _Spec, value: object) -> object:
    """Check one value against its spec and return it normalized (tuples for lists)."""
    kind, _, choices = spec
    name = key_name(table, key)

    def wrong_type() -> ProfileError:
        return ProfileError(
            f"{source}: {name} must be {_KIND_WORDS[kind]}, got {value!r} ({type(value).__name__})."
        )

    if kind == "table":
        if not isinstance(value, Mapping):
            raise wrong_type()
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong_type()
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type()
        if value < 1:
            raise ProfileError(f"{source}: {name} must be at least 1, got {value}.")
        _check_range(source, table, key, value, value)
        return value
    if kind == "size":
        size = parse_size(value)
        if size is None:
            raise wrong_type()
        if size < 1:
            raise ProfileError(f"{source}: {name} must be a positive byte count, got {value!r}.")
        _check_range(source, table, key, size, value)
        return int(size)
    if kind in ("str", "enum"):
        if not isinstance(value, str):
            raise wrong_type()
        if not value.strip():
            raise ProfileError(f"{source}: {name} must not be empty.")
        if kind == "enum" and value not in choices:
            raise ProfileError(
                f"{source}: unknown value {value!r} for {name}"
                f"{hint(value, choices, 'valid values')}"
            )
        return value
    if kind in ("str-list", "enum-list"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong_type()
        if kind == "enum-list":
            for item in value:
                if item not in choices:
                    raise ProfileError(
                        f"{source}: unknown value {item!r} in {name}"
                        f"{hint(item, choices, 'valid values')}"
                    )
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ProfileError(f"{source}: {name} lists {dupes[0]!r} more than once.")
        return tuple(value)
    raise AssertionError(f"unknown schema kind {kind!r}")  # a bug in SCHEMA, not the user's


def check_table(source: str, table: str, data: Mapping[str, Any]) -> dict[str, Any]:
    specs = SCHEMA[table]
    for key in data:
        if key not in specs:
            raise ProfileError(
                f"{source}: unknown key '{key}' {where(table)}{hint(key, specs, 'valid keys')}"
            )
    for key, (_, required, _) in specs.items():
        if required and key not in data:
            what = "table" if specs[key][0] == "table" else "key"
            raise ProfileError(f"{source}: missing required {what} {key_name(table, key)}.")
    return {key: check_value(source, table, key, specs[key], v) for key, v in data.items()}
