"""``--profile auto``: the shipped profile this machine runs the model fastest on, measured."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.deploy.host import host_placement, machine_arch, measure_latency
from edgekit.deploy.precision import FLOAT_PRECISIONS
from edgekit.errors import EdgekitError, InputError
from edgekit.model import Model

if TYPE_CHECKING:
    from edgekit.profiles import Profile

__all__ = ["choose_auto_profile"]


def _candidates() -> list[tuple[Profile, str, str, str | None]]:
    """(profile, runtime, device, provider) for every shipped profile this machine runs as
    its target would: same arch, runtime installed, device present, a float precision."""
    from edgekit.profiles import list_profiles

    found = []
    for p in list_profiles():
        if not p.runnable_here() or not any(x in FLOAT_PRECISIONS for x in p.precision):
            continue
        runtime, device, provider, note = host_placement(p)
        if note is None:  # else its device is not here: timing it on CPU would not measure it
            found.append((p, runtime, device, provider))
    return found


def _label(n: int | None) -> str:
    return "default threads" if n is None else f"{n} thread{'s' if n != 1 else ''}"


def choose_auto_profile(
    model: Model,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Profile, dict[str, Any]]:
    """Among shipped profiles this machine runs (same arch, runtime installed, device present,
    float precision allowed), measure the model briefly on each and pick the fastest.

    Each candidate is timed at its own thread count, one thread, and every core
    (CPU devices only). Returns the profile and a record of every timing, for the
    manifest.
    """
    say = log or (lambda _msg: None)
    candidates = _candidates()
    if not candidates:
        raise InputError(
            "--profile auto found no shipped profile this machine can run "
            f"({machine_arch()}, runtimes installed here); name a profile instead"
        )
    results: list[tuple[float, Profile, int | None]] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-auto-") as tmp:
        for p, runtime, device, provider in candidates:
            try:
                if str(model.format) == p.format:
                    m = model
                else:
                    from edgekit.convert import convert

                    m = convert(model, p.format, Path(tmp) / p.name, input_shapes=input_shapes,
                                verify=False).model  # fmt: skip
                counts = [p.threads]
                if device == "CPU":
                    counts += [n for n in (1, os.cpu_count()) if n not in counts]
                for n in counts:
                    lat = measure_latency(m, runtime, device, provider, n, input_shapes)
                    results.append((float(lat["latency_ms"]["median"]), p, n))
            except EdgekitError as exc:
                say(f"auto: {p.name} skipped ({exc})")
    if not results:
        raise InputError("--profile auto could not run the model on any candidate profile")
    results.sort(key=lambda r: r[0])
    best_per: dict[str, tuple[float, Profile, int | None]] = {}
    for ms, p, n in results:
        best_per.setdefault(p.name, (ms, p, n))
    ranked = sorted(best_per.values(), key=lambda r: r[0])
    best_ms, best, best_threads = ranked[0]
    runners = ", ".join(f"{p.name} {ms:.3g} ms ({_label(n)})" for ms, p, n in ranked[1:])
    say(f"auto: chose {best.name} with {_label(best_threads)} ({best_ms:.3g} ms median)"
        + (f"; runners-up: {runners}" if runners else ""))  # fmt: skip
    info = {"chosen": best.name, "threads": best_threads,
            "candidates": [{"profile": p.name, "threads": n, "median_ms": ms}
                           for ms, p, n in results]}  # fmt: skip
    return best, info
