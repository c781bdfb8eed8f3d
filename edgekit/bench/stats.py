"""Statistics of latency samples, written once and shared by bench and compare.

Quantiles use numpy's "linear" method (Hyndman & Fan type 7). The median's
confidence interval comes from order statistics (binomial, distribution-free);
ratios of medians between two reports from a seeded percentile bootstrap.
Only numpy is needed here; scipy is imported inside the functions that use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

QUANTILE_METHOD = "linear"
QUANTILE_METHOD_NAME = "numpy 'linear' (Hyndman-Fan type 7)"
PERCENTILES = {"p5": 5, "p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
CI_LEVEL = 0.95


def _binom_half_cdf(n: int) -> np.ndarray:
    """cdf[k] = P(X <= k) for X ~ Binomial(n, 1/2), k = 0..n, computed in log space."""
    k = np.arange(1, n + 1, dtype=np.float64)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log((n - k + 1) / k))])
    pmf = np.exp(log_choose - n * math.log(2.0))
    return np.cumsum(pmf)


def median_ci_ranks(n: int, level: float = CI_LEVEL) -> tuple[int, int] | None:
    """0-based order-statistic ranks (j, n-1-j) with P(x_(j) <= median <= x_(n-1-j)) >= level.

    The coverage of that interval is 1 - 2 P(B <= j) with B ~ Binomial(n, 1/2);
    j is the largest rank that keeps it at or above `level` (the narrowest
    symmetric interval). None when even (min, max) covers less than `level`.
    """
    if n < 1 or 1 - 2 * 0.5**n < level:
        return None
    cdf = _binom_half_cdf(n)
    ok = np.nonzero(1 - 2 * cdf[: (n + 1) // 2] >= level)[0]
    j = int(ok[-1]) if len(ok) else 0
    return j, n - 1 - j


def median_ci(samples: Sequence[float] | np.ndarray, level: float = CI_LEVEL) -> dict[str, Any]:
    """Distribution-free confidence interval of the median from order statistics."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    ranks = median_ci_ranks(len(x), level)
    if ranks is None:
        return {
            "low": None,
            "high": None,
            "level": level,
            "method": "order statistics (n too small)",
        }
    lo_r, hi_r = ranks
    return {
        "low": float(x[lo_r]),
        "high": float(x[hi_r]),
        "level": level,
        "method": "order statistics (binomial, distribution-free)",
    }


def drift(samples: Sequence[float] | np.ndarray) -> float | None:
    """Relative change of the median from the first to the last third of the run.

    (median(last third) - median(first third)) / median(all); near 0 for a
    stable run, positive when the machine slowed down (thermal throttling,
    another job starting).
    """
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < 9:
        return None
    third = len(x) // 3
    med = float(np.median(x))
    if med == 0:
        return None
    return float((np.median(x[-third:]) - np.median(x[:third])) / med)


def summarize(samples_ns: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """Latency statistics in milliseconds of raw nanosecond samples."""
    x = np.asarray(samples_ns, dtype=np.float64) / 1e6
    n = int(len(x))
    if n == 0:
        raise ValueError("no samples to summarize")
    qs = np.percentile(x, list(PERCENTILES.values()), method=QUANTILE_METHOD)
    med = float(qs[1])
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    out: dict[str, Any] = {
        "n": n,
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": mean,
        "std": std,
        "cv": std / mean if mean > 0 else None,
        "median": med,
        # unscaled median absolute deviation (multiply by 1.4826 for a normal sigma)
        "mad": float(np.median(np.abs(x - med))),
    }
    out.update({k: float(v) for k, v in zip(PERCENTILES, qs, strict=True)})
    out["median_ci"] = median_ci(x)
    out["drift"] = drift(x)
    return out


def bootstrap_ratio_ci(
    base: Sequence[float] | np.ndarray,
    new: Sequence[float] | np.ndarray,
    *,
    stat: str = "median",
    n_boot: int = 2000,
    level: float = CI_LEVEL,
    seed: int = 0,
    max_n: int = 20000,
) -> dict[str, float]:
    """Ratio stat(new) / stat(base) with a seeded percentile-bootstrap interval.

    Each sample is resampled independently; samples longer than `max_n` are
    first thinned to `max_n` evenly spaced values (keeping the run's time order
    spread) so memory stays bounded.
    """
    rng = np.random.default_rng(seed)
    a = _thin(np.asarray(base, dtype=np.float64), max_n)
    b = _thin(np.asarray(new, dtype=np.float64), max_n)
    q = 50.0 if stat == "median" else float(stat.lstrip("p").replace("999", "99.9"))
    point = float(np.percentile(b, q) / np.percentile(a, q))
    ratios = np.empty(n_boot)
    chunk = max(1, 4_000_000 // max(len(a), len(b)))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        ia = rng.integers(0, len(a), size=(m, len(a)))
        ib = rng.integers(0, len(b), size=(m, len(b)))
        sa = np.percentile(a[ia], q, axis=1, method=QUANTILE_METHOD)
        sb = np.percentile(b[ib], q, axis=1, method=QUANTILE_METHOD)
        ratios[start : start + m] = sb / sa
    alpha = 1 - level
    lo, hi = np.percentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {"ratio": point, "low": float(lo), "high": float(hi), "level": level}


def _thin(x: np.ndarray, max_n: int) -> np.ndarray:
    if len(x) <= max_n:
        return x
    idx = np.linspace(0, len(x) - 1, max_n).round().astype(int)
    return x[idx]


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (scipy; asymptotic for large samples)."""
    from scipy.stats import mannwhitneyu

    a = _thin(np.asarray(a, dtype=np.float64), 50000)
    b = _thin(np.asarray(b, dtype=np.float64), 50000)
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (monotone, capped at 1), in input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def window_medians_agree(x: np.ndarray, window: int, tolerance: float) -> bool:
    """True when the medians of the last two windows of `x` differ by at most `tolerance`."""
    if len(x) < 2 * window:
        return False
    m1 = float(np.median(x[-2 * window : -window]))
    m2 = float(np.median(x[-window:]))
    return abs(m2 - m1) <= tolerance * max(m1, m2)


def ratio_verdict(
    base: Sequence[float] | np.ndarray,
    new: Sequence[float] | np.ndarray,
    *,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """median(new) / median(base) of two samples from one interleaved measurement, with
    `bootstrap_ratio_ci`'s interval, the speedup (its inverse, interval inverted too) and a
    verdict: "slower" or "faster" only when the interval excludes 1, else "same"."""
    ci = bootstrap_ratio_ci(base, new, level=level, seed=seed)
    verdict = "slower" if ci["low"] > 1 else "faster" if ci["high"] < 1 else "same"
    return {
        "latency_ratio": ci["ratio"],
        "low": ci["low"],
        "high": ci["high"],
        "speedup": 1.0 / ci["ratio"],
        "speedup_low": 1.0 / ci["high"],
        "speedup_high": 1.0 / ci["low"],
        "level": level,
        "verdict": verdict,
        "method": "percentile bootstrap of the median ratio, 2000 resamples, seeded",
    }


def identical_verdict(level: float = CI_LEVEL) -> dict[str, Any]:
    """`ratio_verdict`'s record for a model that is the baseline itself (same bytes)."""
    return {
        "latency_ratio": 1.0, "low": 1.0, "high": 1.0, "speedup": 1.0, "speedup_low": 1.0,
        "speedup_high": 1.0, "level": level, "verdict": "same",
        "method": "identical to the baseline (same bytes): the baseline's own measurement",
    }  # fmt: skip
