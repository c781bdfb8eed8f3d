"""Channels-first vs channels-last: which inputs a converted model takes NHWC where its
source took NCHW (onnx2tf's output does), and data moved to that layout."""

from __future__ import annotations

import dataclasses
from typing import Any

from edgekit.model import Model

NCHW_TO_NHWC = (0, 2, 3, 1)


def _dims(shape: Any) -> list[Any]:
    """A shape with every dynamic dimension (None, a symbol such as torch's 's77', or -1)
    as None: formats name the same unknown batch differently."""
    return [d if isinstance(d, int) and d >= 0 else None for d in (shape or ())]


def input_layouts(src: Model, result: Model) -> dict[str, str]:
    """``{result input name: "nhwc"}`` for each 4-D input that `result` takes transposed."""
    out: dict[str, str] = {}
    for a, b in zip(src.signature.inputs, result.signature.inputs, strict=False):
        sa, sb = _dims(a.shape), _dims(b.shape)
        if len(sa) == 4 and sa != sb and [sa[i] for i in NCHW_TO_NHWC] == sb:
            out[b.name] = "nhwc"
    return out


def layout_notes(src: Model, result: Model, layouts: dict[str, str]) -> list[str]:
    """One line per transposed input, for the conversion's warnings."""
    by_name = {t.name: t for t in result.signature.inputs}
    notes = []
    for (name, _), a in zip(layouts.items(), src.signature.inputs, strict=False):
        notes.append(f"input '{name}': the {result.format} model takes NHWC "
                     f"{list(by_name[name].shape or ())} where the source takes NCHW "
                     f"{list(a.shape or ())}; feed it transposed {NCHW_TO_NHWC}")  # fmt: skip
    return notes


def data_to_nhwc(data: Any) -> Any:
    """A copy of a dataclass of arrays (edgekit.optimize.data.Data) with every 4-D
    array field transposed from NCHW to NHWC; labels and other fields are kept."""
    changes = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if getattr(value, "ndim", 0) == 4:
            changes[f.name] = value.transpose(NCHW_TO_NHWC).copy()
    return dataclasses.replace(data, **changes)
