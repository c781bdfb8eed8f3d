"""The candidates `optimize` tries, and the rule that chooses among them.

Within the accuracy budget the fastest wins, except that an earlier candidate (the
profile's order of preference) wins when it is not measurably slower: its latency ratio
to the fastest has a confidence interval that includes 1 (from the raw samples of the
one interleaved measurement), or, without samples, it is within SLOWER_MARGIN of it.
When none meets the budget, the one with the smallest drop is kept, labelled as such.
On a target whose compiler places ops (Vela for Ethos-U), the candidates with the fewest
ops left on the CPU are chosen among first: host latency says nothing about the NPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SLOWER_MARGIN = 1.03  # within 3% counts as "not slower" on a noisy shared machine


@dataclass
class Candidate:
    """One optimized model tried: how it was made and what it measured."""

    name: str
    precision: str
    path: Path | None = None
    kept_float: list[str] = field(default_factory=list)
    kept_float_why: list[str] = field(default_factory=list)  # one measured reason per op
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    accuracy: float | None = None
    parity: Any = None  # edgekit.verify.Parity against the baseline
    accuracy_drop: float | None = None  # points vs baseline (or disagreement when unlabelled)
    latency: dict[str, Any] | None = None  # edgekit.bench statistics, in ms
    # edgekit.bench.stats.ratio_verdict against the baseline, from the same measurement
    vs_baseline: dict[str, Any] | None = None
    confusion: list[list[int]] | None = None  # rows: true class, columns: predicted
    meets_budget: bool = False
    error: str | None = None
    cpu_ops: int | None = None  # ops the target's compiler leaves on the CPU (its estimate)
    # runtime options it is compiled with (an inference precision), and what the runtime
    # then computed in, read back from the compiled model (`Session.inference_precision`)
    options: dict[str, Any] | None = None
    ran: dict[str, Any] | None = None

    @property
    def latency_ms(self) -> float | None:
        """The median latency: what candidates are compared and chosen by."""
        return None if self.latency is None else float(self.latency["median"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "precision": self.precision,
            "kept_float": self.kept_float,
            "kept_float_why": self.kept_float_why,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "accuracy": rounded(self.accuracy),
            "accuracy_drop": rounded(self.accuracy_drop, 3),
            "parity": parity_dict(self.parity),
            "latency_ms": self.latency,
            "vs_baseline": self.vs_baseline,
            "meets_budget": self.meets_budget,
            "error": self.error,
            "cpu_ops": self.cpu_ops,
            "runtime_options": self.options,
            "inference_precision": self.ran,
        }


def parity_dict(p: Any) -> dict[str, Any] | None:
    """The report's three parity figures of an `edgekit.verify.Parity`, whether they are
    within the precision's tolerance, and that tolerance (the bound it was verified at)."""
    if p is None:
        return None
    err = float(p.max_abs_error)
    return {
        "top1_agreement": None if p.top1_agreement is None else round(p.top1_agreement, 6),
        "max_abs_error": float(f"{err:.6g}") if np.isfinite(err) else None,
        "cosine": round(float(p.cosine), 6),
        "passed": bool(p.passed),
        "tolerance": p.tolerance.to_dict(),
    }


def rounded(v: float | None, nd: int = 6) -> float | None:
    """`v` rounded to `nd` digits, None kept."""
    return None if v is None else round(float(v), nd)


def accuracy_drop(base: Candidate, c: Candidate, labelled: bool) -> float:
    """`c`'s drop in points: of accuracy when labelled, else of top-1 agreement with the
    baseline (0 or 100 for outputs that have no top-1)."""
    if labelled and base.accuracy is not None and c.accuracy is not None:
        return 100.0 * (base.accuracy - c.accuracy)
    p = c.parity
    if p is None:
        return 100.0
    if p.top1_agreement is None:  # one score per sample, or outputs that did not compare
        return 0.0 if np.isfinite(p.max_abs_error) else 100.0
    return 100.0 * (1.0 - p.top1_agreement)


def verdict(c: Candidate) -> str | None:
    """ "slower", "faster" or "same" than the baseline (its ratio's interval decides), or None
    when `c` has no ratio from an interleaved measurement."""
    return None if c.vs_baseline is None else c.vs_baseline["verdict"]


def _ties(c: Candidate, best: Candidate) -> bool:
    """`c` is not measurably slower than `best`."""
    a, b = c.latency or {}, best.latency or {}
    if a.get("samples_ns") and b.get("samples_ns"):
        from edgekit.bench.interleaved import ratios

        return ratios([b, a])[1]["verdict"] != "slower"
    return (c.latency_ms or 0.0) <= (best.latency_ms or 0.0) * SLOWER_MARGIN


def fastest(pool: list[Candidate]) -> Candidate:
    """The fastest candidate; an earlier one (the profile's order of preference) wins when
    it is not measurably slower than it (see the module docstring), so that a tie on a
    noisy machine does not flip the choice between near-identical models from run to run."""
    best = min(pool, key=lambda c: c.latency_ms if c.latency_ms is not None else 0.0)
    return next(c for c in pool if c is best or _ties(c, best))


def fewest_cpu_ops(pool: list[Candidate]) -> list[Candidate]:
    """The candidates with the fewest CPU-fallback ops, where the compiler counted them."""
    counted = [c for c in pool if c.cpu_ops is not None]
    if not counted:
        return pool
    least = min(c.cpu_ops for c in counted)  # type: ignore[type-var]
    return [c for c in counted if c.cpu_ops == least]


def choose(
    ok: list[Candidate], max_drop: float, explicit: str | None, baseline: Candidate | None = None
) -> tuple[Candidate, bool, str | None]:
    """(chosen, met the budget, warning): the fastest of those within the budget (of the
    `explicit` precision asked for, when any meet it), else the smallest drop. A `baseline`
    given (auto mode, nothing pruned) competes last in order: it is chosen only when every
    candidate within the budget measured slower than it, so auto is never slower than fp32
    (an fp32 candidate through graph passes that did not pay in the final run included)."""
    meeting = [c for c in ok if c.meets_budget]
    if meeting:
        same = [c for c in meeting if c.precision == explicit] if explicit else []
        pool = fewest_cpu_ops(same or meeting)
        if baseline is not None and not explicit and baseline.latency is not None:
            pool = [*pool, baseline]
        return fastest(pool), True, None
    chosen = min(ok, key=lambda c: (c.accuracy_drop, c.latency_ms or 0.0))
    warning = (
        f"NO candidate meets the accuracy budget of {max_drop:g} points; tried "
        + ", ".join(f"{c.name} ({c.accuracy_drop:.2f} pts)" for c in ok)
        + f"; saved the best ({chosen.name}) labelled as NOT meeting the budget"
    )
    return chosen, False, warning


def bench_warnings(models: list[Candidate]) -> list[str]:
    """The bench harness's warnings, once: those of every run (the machine's) as they are,
    the others as one line naming the models (each run's are in its latency_ms)."""
    runs = [(c.name, (c.latency or {}).get("warnings") or []) for c in models]
    common = [w for w in runs[0][1] if all(w in ws for _, ws in runs)] if runs else []
    own = [name for name, ws in runs if set(ws) - set(common)]
    out = [f"latency: {w}" for w in common]
    if own:
        out.append(
            f"the latency harness warned about its runs of {', '.join(own)} "
            "(see latency_ms.warnings in report.json)"
        )
    return out
