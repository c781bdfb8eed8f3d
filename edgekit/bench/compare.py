"""Compare benchmark reports: aligned by model and runtime configuration, tested, never re-run.

Per pair (baseline, candidate): the ratio of medians with a seeded bootstrap
confidence interval, a two-sided Mann-Whitney U test on the raw samples
(Holm-corrected across all pairs), the p99 ratio, and size and memory ratios.
A change is a regression only when it is significant AND its whole interval
lies beyond the threshold. Reports that differ in model hash, runtime
version, device, provider, threads, batch, mode or CPU are refused unless
the caller allows the mismatch, and then shown loudly.

Imports no framework: numpy and scipy only (matplotlib for the HTML page).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.report import Report, load_report, validate_report
from edgekit.bench.stats import bootstrap_ratio_ci, holm, mann_whitney
from edgekit.errors import InputError, ReportError

ALPHA = 0.05

# (label, getter) of the facts two comparable reports must share.
_MUST_MATCH = (
    ("model sha256", lambda r: r["model"]["sha256"]),
    ("runtime", lambda r: r["runtime"]["name"]),
    ("runtime version", lambda r: r["runtime"]["version"]),
    ("device", lambda r: r["runtime"]["device"]),
    ("provider", lambda r: r["runtime"]["provider"]),
    ("threads", lambda r: r["runtime"]["threads"]),
    ("batch", lambda r: r["protocol"].get("batch", 1)),
    ("mode", lambda r: r["protocol"]["mode"]),
    ("concurrency", lambda r: r["protocol"].get("concurrency", 1)),
    ("cpu", lambda r: r["environment"]["cpu_model"]),
)


def parse_threshold(value: str | float) -> float:
    """`5%` or `0.05` -> 0.05."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            out = float(text[:-1]) / 100
        else:
            out = float(text)
            if out >= 1:
                raise InputError(
                    f"--threshold {value!r} is ambiguous; write a percentage (5%) or a fraction (0.05)"
                )
    except ValueError:
        raise InputError(f"--threshold {value!r} is not a percentage like 5% or 0.05") from None
    if not 0 <= out < 1:
        raise InputError(f"--threshold {value!r} must lie between 0% and 100%")
    return out


@dataclass
class Pair:
    """One baseline/candidate comparison."""

    baseline: str
    candidate: str
    model: str
    runtime: str
    median_base_ms: float
    median_new_ms: float
    median_ratio: float
    ci_low: float
    ci_high: float
    ci_level: float
    p_value: float
    p_holm: float = 1.0
    p99_ratio: float | None = None
    size_ratio: float | None = None
    memory_ratio: float | None = None
    # the device's tensor arena (TFLite Micro's planner) in each report, where both have one
    arena_base_bytes: int | None = None
    arena_new_bytes: int | None = None
    mismatches: list[str] = field(default_factory=list)
    verdict: str = ""

    @property
    def regressed(self) -> bool:
        return self.verdict == "regression"


@dataclass
class Comparison:
    """The result of `compare`: labelled reports, pairs, and the settings used."""

    labels: list[str]
    reports: list[dict[str, Any]]
    pairs: list[Pair]
    threshold: float
    alpha: float
    seed: int
    unpaired: list[str] = field(default_factory=list)
    allow_mismatch: bool = False

    @property
    def regressions(self) -> list[Pair]:
        return [p for p in self.pairs if p.regressed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "alpha": self.alpha,
            "seed": self.seed,
            "method": {
                "median_ratio_ci": "percentile bootstrap of median(candidate)/median(baseline), "
                "2000 resamples, seeded",
                "test": "two-sided Mann-Whitney U on raw samples, Holm-corrected across pairs",
                "regression": "p_holm < alpha and the whole CI above 1 + threshold",
            },
            "reports": [
                {
                    "label": label,
                    "model": r["model"]["path"],
                    "sha256": r["model"]["sha256"],
                    "runtime": r["runtime"],
                    "median_ms": r["latency_ms"]["median"],
                    "p99_ms": r["latency_ms"]["p99"],
                    "n": r["latency_ms"]["n"],
                    "timestamp_utc": r["timestamp_utc"],
                    "target_figures": r.get("target_figures"),
                }
                for label, r in zip(self.labels, self.reports, strict=True)
            ],
            "pairs": [{**asdict(p), "regressed": p.regressed} for p in self.pairs],
            "unpaired": self.unpaired,
            "regressions": len(self.regressions),
        }


def _coerce(item: Any, index: int) -> tuple[str, dict[str, Any]]:
    if isinstance(item, Report):
        return f"report{index + 1}", validate_report(item.to_dict(), f"report {index + 1}")
    if isinstance(item, dict):
        return f"report{index + 1}", validate_report(item, f"report {index + 1}")
    p = Path(item)
    return str(p), load_report(p)


def _labels(paths: list[str]) -> list[str]:
    """Shortest unambiguous labels: file names when unique, else the paths."""
    names = [Path(p).name for p in paths]
    if len(set(names)) == len(names):
        return names
    return paths


def _group_key(r: dict[str, Any]) -> tuple:
    return (Path(r["model"]["path"]).name, r["runtime"]["name"], r["protocol"]["mode"])


def _mismatches(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for label, get in _MUST_MATCH:
        va, vb = get(a), get(b)
        if va != vb:
            if label == "model sha256":
                va, vb = str(va)[:12], str(vb)[:12]
            out.append(f"{label} ({va} vs {vb})")
    return out


def _arena(r: dict[str, Any]) -> int | None:
    return (r.get("target_figures") or {}).get("arena_bytes")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a in (None, 0) or b is None:
        return None
    return float(b) / float(a)


def compare(
    reports: list[Any],
    *,
    baseline: str | os.PathLike | int | None = None,
    threshold: str | float = 0.05,
    alpha: float = ALPHA,
    allow_mismatch: bool = False,
    seed: int = 0,
) -> Comparison:
    """Compare reports (paths, dicts or Reports) against a baseline.

    Reports are grouped by model file name, runtime and mode; within each group
    every report is compared with the baseline (the `baseline` report when it is
    in the group, else the group's first). When no two reports share a group,
    all are compared with the baseline (the first by default), which is a
    mismatch. Raises ReportError when compared reports differ in hash, runtime
    version, device, provider, threads, batch, mode or CPU, unless
    `allow_mismatch`.

    Example:
        result = compare(["old.json", "new.json"], threshold="5%")
        print(result.regressions)
    """
    if len(reports) < 2:
        raise InputError("compare needs at least two reports")
    thr = parse_threshold(threshold)
    loaded = [_coerce(item, i) for i, item in enumerate(reports)]
    paths = [p for p, _ in loaded]
    data = [d for _, d in loaded]
    labels = _labels(paths)

    base_idx = 0
    if baseline is not None:
        if isinstance(baseline, int):
            base_idx = baseline
        else:
            want = Path(baseline)
            hits = [i for i, p in enumerate(paths) if Path(p) == want or Path(p).name == want.name]
            if not hits:
                raise InputError(f"--baseline {baseline} is not one of the reports given")
            base_idx = hits[0]

    groups: dict[tuple, list[int]] = {}
    for i, d in enumerate(data):
        groups.setdefault(_group_key(d), []).append(i)
    index_pairs: list[tuple[int, int]] = []
    unpaired: list[str] = []
    if all(len(g) == 1 for g in groups.values()):
        index_pairs = [(base_idx, i) for i in range(len(data)) if i != base_idx]
    else:
        for members in groups.values():
            if len(members) == 1:
                unpaired.append(labels[members[0]])
                continue
            b = base_idx if base_idx in members else members[0]
            index_pairs += [(b, i) for i in members if i != b]

    pairs = []
    refused = []
    for bi, ci in index_pairs:
        a, b = data[bi], data[ci]
        mism = _mismatches(a, b)
        if mism:
            refused.append(f"{labels[bi]} vs {labels[ci]}: {', '.join(mism)}")
        sa = np.asarray(a["samples_ns"], dtype=np.float64)
        sb = np.asarray(b["samples_ns"], dtype=np.float64)
        boot = bootstrap_ratio_ci(sa, sb, seed=seed)
        pairs.append(
            Pair(
                baseline=labels[bi],
                candidate=labels[ci],
                model=Path(b["model"]["path"]).name,
                runtime=b["runtime"]["name"],
                median_base_ms=a["latency_ms"]["median"],
                median_new_ms=b["latency_ms"]["median"],
                median_ratio=boot["ratio"],
                ci_low=boot["low"],
                ci_high=boot["high"],
                ci_level=boot["level"],
                p_value=mann_whitney(sa, sb),
                p99_ratio=_ratio(a["latency_ms"]["p99"], b["latency_ms"]["p99"]),
                size_ratio=_ratio(a["model"]["size_bytes"], b["model"]["size_bytes"]),
                memory_ratio=_ratio(a["memory_mb"]["peak_rss"], b["memory_mb"]["peak_rss"]),
                arena_base_bytes=_arena(a),
                arena_new_bytes=_arena(b),
                mismatches=mism,
            )
        )
    if refused and not allow_mismatch:
        raise ReportError(
            "the reports were measured under different conditions, so their latencies are not "
            f"comparable: {'; '.join(refused)}; pass --allow-mismatch to compare them anyway"
        )
    for p, adj in zip(pairs, holm([p.p_value for p in pairs]), strict=True):
        p.p_holm = adj
        significant = adj < alpha
        if significant and p.ci_low > 1 + thr:
            p.verdict = "regression"
        elif significant and p.ci_high < 1 - thr:
            p.verdict = "improvement"
        elif significant:
            p.verdict = "change within threshold"
        else:
            p.verdict = "no significant change"
    return Comparison(
        labels=labels,
        reports=data,
        pairs=pairs,
        threshold=thr,
        alpha=alpha,
        seed=seed,
        unpaired=unpaired,
        allow_mismatch=allow_mismatch,
    )


# ----------------------------------------------------------------------------- rendering


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def _has_arena(result: Comparison) -> bool:
    return any(p.arena_base_bytes is not None or p.arena_new_bytes is not None
               for p in result.pairs)  # fmt: skip


def _arena_cell(p: Pair) -> str:
    a, b = p.arena_base_bytes, p.arena_new_bytes
    if a is None or b is None:
        return f"{_fmt(a, ',')} → {_fmt(b, ',')}"
    return f"{a:,} → {b:,} ({b - a:+,} B)"


def timing_notes(result: Comparison) -> list[str]:
    """Whose time each report's latencies are, once per distinct statement, for reports
    that say (a TFLM report's times are this host's reference kernels, not the device's)."""
    notes = [r["protocol"].get("timing_source") for r in result.reports]
    return list(dict.fromkeys(n for n in notes if n))


def headers(result: Comparison) -> list[str]:
    """The pair table's column names: `HEADERS`, and the device's arena where a report has one."""
    return HEADERS + ([ARENA_HEADER] if _has_arena(result) else [])


def rows(result: Comparison) -> list[list[str]]:
    """The pair table as strings: one row per pair, in the columns of `headers`."""
    arena = _has_arena(result)
    out = []
    for p in result.pairs:
        out.append(
            [
                p.baseline,
                p.candidate,
                f"{p.median_base_ms:.4g} → {p.median_new_ms:.4g}",
                f"{p.median_ratio:.3f} [{p.ci_low:.3f}, {p.ci_high:.3f}]",
                f"{p.p_holm:.2g}",
                _fmt(p.p99_ratio),
                _fmt(p.size_ratio),
                _fmt(p.memory_ratio),
                p.verdict + (" (MISMATCH)" if p.mismatches else ""),
            ]
            + ([_arena_cell(p)] if arena else [])
        )
    return out


HEADERS = [
    "baseline",
    "candidate",
    "median ms",
    "median ratio [95% CI]",
    "p (Holm)",
    "p99 ratio",
    "size ratio",
    "memory ratio",
    "verdict",
]
# Bytes, not a ratio: the arena is exact (the planner's) and what a firmware reserves.
ARENA_HEADER = "device arena bytes (TFLM planner)"


def to_markdown(result: Comparison) -> str:
    lines = [
        f"Threshold {result.threshold:.0%}, α = {result.alpha} (Mann-Whitney U, Holm-corrected); "
        "ratio = candidate / baseline.",
        "",
        "| " + " | ".join(headers(result)) + " |",
        "|" + "---|" * len(headers(result)),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(result)]
    lines += [f"\nTimings: {note}." for note in timing_notes(result)]
    for p in result.pairs:
        if p.mismatches:
            lines.append(f"\n**MISMATCH** {p.baseline} vs {p.candidate}: {', '.join(p.mismatches)}")
    if result.unpaired:
        lines.append(f"\nNot compared (no partner with the same model and runtime): "
                     f"{', '.join(result.unpaired)}")  # fmt: skip
    return "\n".join(lines) + "\n"
