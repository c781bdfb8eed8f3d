"""`optimize MODEL --profile host` (or a list of profiles): the fastest target for a model.

Each profile gets its normal `optimize` run (its own candidates, its own choice within the
budget) into OUT/<profile>/. Then every profile's chosen model is timed side by side, at
each thread count worth trying, in ONE interleaved measurement across runtimes
(`edgekit.bench.interleaved.measure_interleaved`), so that the ratios between runtimes are
not a shared machine's drift; the fastest row whose model meets the budget wins.
OUT/summary.json holds the table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, InputError

HOST = "host"
SUMMARY = "summary.json"
SUMMARY_SCHEMA_VERSION = 1


@dataclass
class FastestResult:
    """What `optimize_for_targets` wrote: OUT/summary.json and the summary itself."""

    summary_path: Path
    summary: dict[str, Any]


def is_many(profile: Any) -> bool:
    """Whether a --profile value asks for several targets ("host", or "a,b,c")."""
    return isinstance(profile, str) and (profile == HOST or "," in profile)


def host_profiles() -> tuple[list[Any], list[dict[str, str]]]:
    """The shipped profiles this machine runs as their target would (same arch, runtime
    installed, device present, no target compiler whose figures would decide), and the
    others with why they were left out."""
    from edgekit.deploy.host import host_placement
    from edgekit.profiles import list_profiles

    found, skipped = [], []
    for p in list_profiles():
        why = None
        if not p.runnable_here():
            why = (
                f"{p.arch} / {p.runtime}: not this machine's arch, or the runtime is not installed"
            )
        elif p.compiler is not None:
            why = f"its {p.compiler.name} compiler's placement decides, not host latency"
        else:
            why = host_placement(p)[3]  # the device (GPU, NPU) is not here
        if why is None:
            found.append(p)
        else:
            skipped.append({"profile": p.name, "reason": why})
    return found, skipped


def resolve_profiles(profile: str) -> tuple[list[Any], list[dict[str, str]]]:
    """The profiles "host" or "a,b,c" names (each loaded, so a typo is a ProfileError)."""
    from edgekit.profiles import load_profile

    if profile == HOST:
        profs, skipped = host_profiles()
        if not profs:
            raise InputError("--profile host found no shipped profile this machine can run; "
                             "name the profiles instead (--profile a,b)")  # fmt: skip
        return profs, skipped
    names = [n.strip() for n in profile.split(",") if n.strip()]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"--profile {profile!r} must name each profile once, comma-separated")
    return [load_profile(n) for n in names], []


def thread_counts(prof: Any) -> list[int]:
    """The thread counts a profile's model is timed at: 1, the profile's own, every core."""
    counts = [1, prof.threads or 1, os.cpu_count() or 1]
    return sorted(set(counts))


def _eval_inputs(model: Path, n: int, seed: int) -> Any:
    """`n` seeded inputs for the side-by-side run, from the source's first input."""
    import numpy as np

    from edgekit.inputs import generate_inputs
    from edgekit.model import load

    sig = load(model).signature
    feeds = generate_inputs(sig, count=n, seed=seed)
    name = sig.inputs[0].name
    return np.concatenate([np.asarray(f[name], np.float32) for f in feeds])


def optimize_for_targets(
    model: str | os.PathLike,
    profile: str,
    *,
    out: str | os.PathLike,
    measure_rounds: int | None = None,
    seed: int = 0,
    progress: Any = None,
    **optimize_kwargs: Any,
) -> FastestResult:
    """`optimize` for each profile `profile` names ("host": every shipped profile this
    machine runs as the target would; else "a,b,c"), into OUT/<profile>/, then every
    profile's chosen model timed side by side at each of its thread counts in one
    interleaved run; OUT/summary.json says which format, runtime, precision and thread
    count is fastest within the budget, with every row. `optimize_kwargs` go to each
    `optimize` run. A profile whose run fails is a row with its error, not the end.
    """
    from edgekit.bench.interleaved import ROUNDS, measure_interleaved, ratios
    from edgekit.optimize import optimize
    from edgekit.outputs import atomic_dir, atomic_write_text, output_lock

    say = progress or (lambda msg: None)
    profs, skipped = resolve_profiles(profile)
    out = Path(out)
    rows: list[dict[str, Any]] = []
    with output_lock(out), atomic_dir(out) as tmp:
        for prof in profs:
            say(f"optimizing for {prof.name}")
            row: dict[str, Any] = {"profile": prof.name, "format": prof.format,
                                   "runtime": prof.runtime, "device": prof.device_label}  # fmt: skip
            try:
                res = optimize(model, prof, out=tmp / prof.name, progress=say, seed=seed,
                               **optimize_kwargs)  # fmt: skip
            except EdgekitError as exc:
                rows.append({**row, "error": str(exc)})
                continue
            o = res.report["optimized"]
            row.update(
                model=f"{prof.name}/{res.model_path.name}",
                candidate=o["name"],
                precision=o["precision"],
                # the precision the runtime computed in, read back (None: as stored)
                computed_in=(o.get("inference_precision") or {}).get("ran"),
                runtime=res.report["measurement"]["runtime"],
                options=o.get("runtime_options"),
                meets_budget=res.met_budget,
                accuracy_drop=res.report["accuracy_drop"],
                size_bytes=o["size_bytes"],
                error=None,
            )
            rows.append(row)
        timed = [(r, n) for r in rows if r["error"] is None
                 for n in thread_counts(next(p for p in profs if p.name == r["profile"]))]  # fmt: skip
        if not timed:
            errs = "; ".join(f"{r['profile']}: {r['error']}" for r in rows)
            raise InputError(f"no profile could optimize {Path(model).name}: {errs}")
        say(f"measuring {len(timed)} (profile, threads) pairs side by side, interleaved")
        lats = measure_interleaved(
            [tmp / r["model"] for r, _ in timed],
            _eval_inputs(Path(model), 16, seed),
            runtime=[r["runtime"] for r, _ in timed],
            threads=[n for _, n in timed],
            options=[r["options"] for r, _ in timed],
            rounds=measure_rounds or ROUNDS,
        )
        table = []
        for (r, n), lat in zip(timed, lats, strict=True):
            table.append({**r, "threads": n, "latency_ms": lat})
        pool = [t for t in table if t["meets_budget"]] or table
        best = min(pool, key=lambda t: t["latency_ms"]["median"])
        vs = ratios([t["latency_ms"] for t in table], base=table.index(best))
        for t, v in zip(table, vs, strict=True):
            t["vs_fastest"] = v
        summary = {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "source": str(model),
            "fastest": {
                k: best[k]
                for k in (
                    "profile",
                    "format",
                    "runtime",
                    "precision",
                    "computed_in",
                    "threads",
                    "model",
                )
            },  # fmt: skip
            "fastest_meets_budget": bool(best["meets_budget"]),
            "rows": table,
            "failed": [r for r in rows if r["error"] is not None],
            "skipped": skipped,
            "measurement": "ONE interleaved measurement (edgekit.bench runs round-robin over "
            "every profile's chosen model at each thread count, reversed every other round); "
            "each row's ratio to the fastest with a bootstrap interval",
        }
        atomic_write_text(tmp / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return FastestResult(out / SUMMARY, summary)


def summary_table(summary: dict[str, Any]) -> Any:
    """The rich table of every (profile, threads) row, the fastest first."""
    from rich.table import Table

    t = Table(title="fastest target (one interleaved run)", title_justify="left")
    for col in ("profile", "format", "runtime", "precision", "threads", "median ms",
                "vs fastest", "budget"):  # fmt: skip
        t.add_column(col)
    best = summary["fastest"]
    for r in sorted(summary["rows"], key=lambda r: r["latency_ms"]["median"]):
        v = r["vs_fastest"] or {}
        prec = r["precision"] + (f" (ran {r['computed_in']})" if r["computed_in"] else "")
        mark = "[bold green]" if (r["profile"], r["threads"]) == (best["profile"],
                                                                  best["threads"]) else ""  # fmt: skip
        t.add_row(
            f"{mark}{r['profile']}", r["format"], r["runtime"], prec, str(r["threads"]),
            f"{r['latency_ms']['median']:.4g}",
            f"{v.get('latency_ratio', 1.0):.2f}x ({v.get('verdict', '-')})",
            "ok" if r["meets_budget"] else "MISSES",
        )  # fmt: skip
    return t
