"""report.json and report.md of one `optimize` run.

report.json (``schema_version`` 1) holds ``baseline`` (the source converted to the
profile's format at fp32, measured on the same runtime and settings) and
``optimized``, each ``{format, precision, size_bytes, gzip_bytes, params, sparsity,
accuracy, latency_ms}`` (accuracy null when unproven; latency_ms the `edgekit.bench`
statistics of one interleaved measurement of all candidates: median, median_ci,
percentiles, cv..., and the raw ``samples_ns``, or null when not measured);
``speedup`` and ``speedup_ci`` (and each candidate's ``vs_baseline``) from that run;
``parity {top1_agreement, max_abs_error, cosine}`` of the optimized model against the
baseline (`edgekit.verify.compare_outputs` on the eval samples);
``accuracy_drop`` (points); ``kept_float``; ``candidates``; ``layer_errors``;
``warnings``; and where and how it was measured.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.optimize.flow import Run

SCHEMA_VERSION = 1
REQUIRED = (
    "schema_version", "baseline", "optimized", "parity", "accuracy_drop", "kept_float",
    "candidates", "warnings", "meets_budget", "profile", "measurement",
)  # fmt: skip
ENTRY_KEYS = ("format", "precision", "size_bytes", "params", "sparsity", "accuracy", "latency_ms")


def _entry(c: Any, fmt: str, stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": fmt,
        "precision": c.precision,
        "name": c.name,
        "size_bytes": c.size_bytes,
        "gzip_bytes": c.gzip_bytes,
        "params": stats.get("params"),
        "sparsity": stats.get("sparsity"),
        "accuracy": None if c.accuracy is None else round(c.accuracy, 6),
        "latency_ms": c.latency,
        "confusion": c.confusion,
        # the runtime options it must be compiled with (a bf16 inference precision), and
        # what the runtime computed in, read back from the compiled model
        "runtime_options": c.options,
        "inference_precision": c.ran,
    }


def build_report(run: Run, *, source: Any, threads_from: str, elapsed_s: float) -> dict[str, Any]:
    """The report of a finished flow `run` of the model `source` (see the module docstring)."""
    from edgekit.bench.machine import package_versions
    from edgekit.devices import cpu
    from edgekit.optimize.candidates import parity_dict
    from edgekit.optimize.quantize.onnx import has_vnni
    from edgekit.runtimes import get_runtime

    profile, runtime, data, threads = run.prof, run.runtime, run.data, run.threads
    baseline, chosen, candidates = run.base, run.chosen, run.candidates
    recovery, max_drop = run.recovery, run.max_drop
    fmt = profile.format
    warns = list(run.warnings)
    host = host_note(profile, threads)
    if host:
        warns.insert(0, host)
    info = cpu()
    if chosen.precision in ("int8", "int8-float-fallback") and not has_vnni():
        warns.append(
            "this CPU has no VNNI (or dot-product) instructions: int8 may not be faster here"
        )
    if not data.labelled:
        warns.append("accuracy is unproven: no labelled evaluation data")
    if not any(c.options for c in candidates):  # else the faster precision was tried
        warns += get_runtime(runtime).precision_notes(set(info["isa_features"]))
    ratio = chosen.vs_baseline
    if ratio is not None:
        speedup = ratio["speedup"]
    elif baseline.latency_ms and chosen.latency_ms:
        speedup = baseline.latency_ms / chosen.latency_ms
    else:
        speedup = None
    kept = list(chosen.kept_float)
    rep: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source": {"path": str(source.path), "format": str(source.format), "sha256": source.sha256},
        # every framework that may have touched the model, for reproducing the result
        "versions": package_versions(),
        "profile": {
            "name": profile.name,
            "runtime": profile.runtime,
            "format": fmt,
            "device": profile.device_label,
            "arch": profile.arch,
            "precision": list(profile.precision),
        },
        "measurement": {
            "runtime": runtime,
            "threads": threads,
            "threads_from": threads_from,
            "batch": 1,
            "host": info["model"],
            "host_arch": info["arch"],
            "isa_features": info["isa_features"],
            "vnni": has_vnni(),
            "host_measurement": host is not None,
            "statistic": "median of ONE interleaved measurement (edgekit.bench runs round-robin "
            "over the baseline and every candidate, reversed every other round); ratios with "
            "a bootstrap interval, 'faster'/'slower' only when it excludes 1",
        },
        "data": {
            "source": data.source,
            "labelled": data.labelled,
            "preprocess": _preprocess(source),
            "feed": data.feed,
        },
        "baseline": _entry(baseline, fmt, run.before_stats),
        "optimized": _entry(chosen, fmt, run.after_stats),
        "parity": parity_dict(chosen.parity),
        "accuracy_drop": None if chosen.accuracy_drop is None else round(chosen.accuracy_drop, 3),
        "accuracy_drop_unit": "points" if data.labelled else "points of top-1 disagreement",
        "max_accuracy_drop": max_drop,
        "meets_budget": run.met,
        "speedup": None if speedup is None else round(speedup, 3),
        # baseline median / optimized median, with its interval, from the same interleaved run
        "speedup_ci": None
        if ratio is None
        else {
            "low": round(ratio["speedup_low"], 4),
            "high": round(ratio["speedup_high"], 4),
            "level": ratio["level"],
            "verdict": ratio["verdict"],
            "method": ratio["method"],
        },
        "size_ratio": round(chosen.size_bytes / baseline.size_bytes, 4)
        if chosen.size_bytes and baseline.size_bytes
        else None,
        "kept_float": kept,
        "pruning": run.prune_info,
        "graph_opt": run.graph_info,
        "layer_errors": [e.to_dict() for e in run.layer_errors],
        "recovery": None
        if recovery is None
        else {
            "met": recovery.met,
            "steps": [
                {
                    "kept_float": s.kept_float,
                    "accuracy_drop": None if s.path is None else round(s.accuracy_drop, 3),
                    "latency_ms": None if s.path is None else s.path.latency,
                    **s.extra,
                }
                for s in recovery.steps
            ],
        },
        "candidates": [c.to_dict() for c in candidates],
        "slow_ops": run.slow_ops,
        # what int8-where-it-pays tried (each op type's per-op and whole-model times)
        "int8_where_it_pays": run.selective,
        "warnings": warns,
        "elapsed_s": elapsed_s,
    }
    if kept and recovery is not None:
        plain = next((c for c in candidates if c.precision == "int8" and not c.kept_float), None)
        if plain is not None and plain.latency_ms and chosen.latency_ms:
            rep["kept_float_latency_cost_ms"] = round(chosen.latency_ms - plain.latency_ms, 4)
    validate(rep)
    return rep


def host_note(prof: Any, threads: int) -> str | None:
    """The warning that labels numbers measured here for a profile of another machine."""
    if prof.runnable_here():
        return None
    target = f"{prof.threads} thread(s)" if prof.threads else "its runtime's default threads"
    return (
        f"profile {prof.name} targets {prof.arch} ({prof.device_label}); these numbers are "
        f"HOST MEASUREMENTS on this {platform.machine()} machine with the profile's runtime "
        f"on {threads} thread(s) (the target runs {target}), not the target's"
    )


def validate(rep: dict[str, Any]) -> None:
    """Check the keys every reader relies on; a failure is a bug in edgekit."""
    missing = [k for k in REQUIRED if k not in rep]
    if missing:
        raise AssertionError(f"optimize report lacks {missing}")
    for side in ("baseline", "optimized"):
        lacking = [k for k in ENTRY_KEYS if k not in rep[side]]
        if lacking:
            raise AssertionError(f"optimize report {side} lacks {lacking}")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, s in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= s:
            return f"{n / s:.1f} {unit}"
    return f"{n} B"


def _pct(v: float | None) -> str:
    return "unproven" if v is None else f"{100 * v:.2f}%"


def _ms(lat: dict[str, Any] | None) -> str:
    """A latency_ms object as its median, with the median's confidence interval."""
    if lat is None:
        return "-"
    ci = lat.get("median_ci") or {}
    if ci.get("low") is None:
        return f"{lat['median']:.4g} ms"
    return f"{lat['median']:.4g} ms ({ci['level']:.0%} CI {ci['low']:.4g}-{ci['high']:.4g})"


def markdown(rep: dict[str, Any]) -> str:
    """report.md: the before/after table, worst layers, candidates and warnings."""
    b, o, p = rep["baseline"], rep["optimized"], rep["parity"] or {}
    prof = rep["profile"]
    lines = [
        f"# edgekit optimize: {Path(rep['source']['path']).name} for {prof['name']}",
        "",
        f"Target: {prof['runtime']} on {prof['device']} ({prof['format']}); measured with "
        f"{rep['measurement']['runtime']}, {rep['measurement']['threads']} thread(s), batch 1, "
        f"on {rep['measurement']['host']}"
        + (" (**host measurement**)" if rep["measurement"]["host_measurement"] else "")
        + ".",
        "",
        f"**Result: {o['name']}** — "
        + ("meets" if rep["meets_budget"] else "**does NOT meet**")
        + f" the accuracy budget of {rep['max_accuracy_drop']:g} points.",
        "",
        "| | baseline (fp32) | optimized | change |",
        "|---|---|---|---|",
        f"| precision | {b['precision']} | {o['name']} | |",
        f"| size on disk | {_size(b['size_bytes'])} | {_size(o['size_bytes'])} | "
        f"{_ratio(o['size_bytes'], b['size_bytes'])} |",
        f"| size gzipped | {_size(b['gzip_bytes'])} | {_size(o['gzip_bytes'])} | "
        f"{_ratio(o['gzip_bytes'], b['gzip_bytes'])} |",
        f"| parameters | {b['params'] if b['params'] is not None else '-'} | "
        f"{o['params'] if o['params'] is not None else '-'} | "
        f"{_ratio(o['params'], b['params'])} |",
        f"| sparsity (zero weights) | {_pct(b['sparsity']) if b['sparsity'] is not None else '-'}"
        f" | {_pct(o['sparsity']) if o['sparsity'] is not None else '-'} | |",
        f"| accuracy | {_pct(b['accuracy'])} | {_pct(o['accuracy'])} | "
        + (
            f"{0.0 - rep['accuracy_drop'] + 0.0:+.2f} pts"
            if rep["accuracy_drop"] is not None
            else ""
        )
        + " |",
        f"| top-1 agreement with baseline | 100% | {_pct(p.get('top1_agreement'))} | |",
        f"| max abs error / cosine | | {p.get('max_abs_error', '-')} / {p.get('cosine', '-')} | |",
        f"| median latency | {_ms(b['latency_ms'])} | {_ms(o['latency_ms'])} | "
        + (f"{rep['speedup']:.2f}x speedup" if rep["speedup"] else "")
        + _ci(rep.get("speedup_ci"))
        + " |",
        "",
    ]
    if rep.get("pruning"):
        pr = rep["pruning"]
        lines += [f"## Pruning ({pr['method']}, target {pr['target_sparsity']:.0%})", ""]
        lines += ["| layer | sparsity |", "|---|---|"]
        lines += [f"| `{k}` | {v:.1%} |" for k, v in pr["layer_sparsity"].items()]
        if pr.get("note"):
            lines += ["", f"Note: {pr['note']}."]
        lines.append("")
    if rep["layer_errors"]:
        from edgekit.optimize.quantize import LayerError, describe

        lines += ["## Layers with the largest quantization error", ""]
        for e in rep["layer_errors"][:5]:
            lines.append(f"1. {describe(LayerError(**e))}")
        lines.append("")
    if rep["kept_float"]:
        cost = rep.get("kept_float_latency_cost_ms")
        lines += [
            "## Kept in float",
            "",
            ", ".join(f"`{k}`" for k in rep["kept_float"])
            + (f" (latency cost vs plain int8: {cost:+.3f} ms)" if cost is not None else ""),
            "",
        ]
    sel = rep.get("int8_where_it_pays")
    if sel:
        lines += ["## int8 where it pays", ""]
        lines += [f"1. kept float: {w}" for w in sel["why"]] or [f"None kept float: {sel['note']}."]
        lines.append("")
    lines += [
        "## Candidates",
        "",
        "| candidate | size | accuracy | drop (pts) | agreement | median latency "
        "| speedup vs baseline | budget |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in rep["candidates"]:
        if c["error"]:
            lines.append(f"| {c['name']} | failed: {c['error'][:80]} | | | | | | |")
            continue
        agree = (c["parity"] or {}).get("top1_agreement")
        lines.append(
            f"| {c['name']} | {_size(c['size_bytes'])} | {_pct(c['accuracy'])} | "
            f"{c['accuracy_drop']:.2f} | {_pct(agree)} | {_ms(c['latency_ms'])} | "
            f"{_vs(c.get('vs_baseline'))} | {'ok' if c['meets_budget'] else 'MISSES'} |"
        )
    lines.append("")
    if rep.get("graph_opt"):
        g = rep["graph_opt"]
        lines += [
            f"ONNX Runtime offline graph optimization: {'kept' if g['kept'] else 'not kept'} "
            f"({g['reason']}).",
            "",
        ]
    if rep["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in rep["warnings"]] + [""]
    return "\n".join(lines)


def _ci(ci: dict[str, Any] | None) -> str:
    """A speedup's interval and verdict, for the before/after table."""
    if not ci:
        return ""
    return f" ({ci['level']:.0%} CI {ci['low']:.2f}-{ci['high']:.2f}x: {ci['verdict']})"


def _vs(r: dict[str, Any] | None) -> str:
    """A candidate's `vs_baseline` as "1.23x (1.18-1.29) faster"."""
    if not r:
        return "-"
    return f"{r['speedup']:.2f}x ({r['speedup_low']:.2f}-{r['speedup_high']:.2f}) {r['verdict']}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return ""
    return f"{a / b:.2f}x"


def _preprocess(src: Any) -> dict[str, Any] | None:
    """The preprocess.json the data was prepared with (None: fed as stored)."""
    from edgekit.data import Preprocess

    pre = Preprocess.find_for(src.path)
    return None if pre is None else pre.to_dict()


def write(rep: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write report.json, report.md and report.html into `folder` atomically."""
    from edgekit.outputs import atomic_write_text
    from edgekit.reports import write_page

    text = json.dumps(rep, indent=2) + "\n"
    paths = (
        atomic_write_text(folder / "report.json", text),
        atomic_write_text(folder / "report.md", markdown(rep)),
    )
    write_page(json.loads(text), folder)  # from the JSON, as `edgekit report` rebuilds it
    return paths
