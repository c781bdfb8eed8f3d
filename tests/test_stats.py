"""Statistics of the benchmark harness against known distributions and textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.bench import stats
from edgekit.bench.protocol import parse_warmup
from edgekit.errors import InputError


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=300))
def test_percentiles_match_numpy_linear(samples: list[int]) -> None:
    s = stats.summarize(samples)
    x = np.asarray(samples, dtype=np.float64) / 1e6
    for key, q in stats.PERCENTILES.items():
        assert s[key] == pytest.approx(np.percentile(x, q, method="linear"), rel=1e-12)
    assert s["median"] == pytest.approx(np.median(x), rel=1e-12)
    assert s["min"] == pytest.approx(x.min()) and s["max"] == pytest.approx(x.max())
    assert s["n"] == len(samples)
    assert s["min"] <= s["p5"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["p999"]


def test_summary_of_a_known_sample() -> None:
    s = stats.summarize([1_000_000, 2_000_000, 3_000_000, 4_000_000, 100_000_000])
    assert s["median"] == 3.0
    assert s["mean"] == pytest.approx(22.0)
    assert s["mad"] == 1.0  # |x - 3| = 2,1,0,1,97 -> median 1
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    with pytest.raises(ValueError):
        stats.summarize([])


@pytest.mark.parametrize(
    ("n", "ranks"),
    [(5, None), (6, (0, 5)), (10, (1, 8)), (20, (5, 14)), (100, (39, 60))],
)
def test_median_ci_ranks_match_binomial_tables(n: int, ranks: tuple[int, int] | None) -> None:
    # 1-based textbook ranks: n=10 -> (2, 9), n=20 -> (6, 15), n=100 -> (40, 61)
    assert stats.median_ci_ranks(n) == ranks


@pytest.mark.parametrize("n", [7, 31, 200, 5001])
def test_median_ci_ranks_are_the_narrowest_with_nominal_coverage(n: int) -> None:
    from scipy.stats import binom

    j, k = stats.median_ci_ranks(n)
    assert k == n - 1 - j
    coverage = 1 - 2 * binom.cdf(j, n, 0.5)
    narrower = 1 - 2 * binom.cdf(j + 1, n, 0.5)
    assert coverage >= 0.95 - 1e-12
    assert narrower < 0.95


@pytest.mark.parametrize(
    ("dist", "true_median"),
    [
        (lambda r, n: r.exponential(size=n), math.log(2)),
        (lambda r, n: r.lognormal(0.0, 1.0, size=n), 1.0),
        (lambda r, n: r.standard_t(2, size=n), 0.0),
    ],
)
@pytest.mark.parametrize("n", [25, 400])
def test_median_ci_coverage_is_nominal_over_many_seeds(dist, true_median: float, n: int) -> None:
    hits, reps = 0, 600
    for seed in range(reps):
        ci = stats.median_ci(dist(np.random.default_rng(seed), n))
        hits += ci["low"] <= true_median <= ci["high"]
    # the exact coverage is >= 95% (discrete ranks); 600 reps give ±1.8% at 2 sigma
    assert 0.93 <= hits / reps <= 0.995


def test_median_ci_of_tiny_samples_says_so() -> None:
    ci = stats.median_ci([1.0, 2.0, 3.0])
    assert ci["low"] is None and "too small" in ci["method"]


def test_holm_matches_textbook_example() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 2 * 0.8 capped at 1
    assert stats.holm([0.02, 0.001]) == pytest.approx([0.02, 0.002])


def test_bootstrap_ratio_ci_covers_one_for_equal_distributions() -> None:
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        a, b = rng.gamma(4, size=300), rng.gamma(4, size=300)
        ci = stats.bootstrap_ratio_ci(a, b, n_boot=400, seed=seed)
        covered += ci["low"] <= 1.0 <= ci["high"]
        assert ci["low"] <= ci["ratio"] <= ci["high"]
    assert covered >= 34  # nominal 95% of 40 = 38


def test_bootstrap_ratio_ci_finds_a_doubling_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    a = rng.gamma(4, size=2000)
    b = 2 * rng.gamma(4, size=2000)
    ci = stats.bootstrap_ratio_ci(a, b, n_boot=500, seed=3)
    assert 1.8 < ci["low"] < ci["ratio"] < ci["high"] < 2.2
    assert stats.bootstrap_ratio_ci(a, b, n_boot=500, seed=3) == ci


def test_mann_whitney_separates_shift_from_noise() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10, 1, 500)
    assert stats.mann_whitney(a, rng.normal(10, 1, 500)) > 0.001
    assert stats.mann_whitney(a, rng.normal(11, 1, 500)) < 1e-10


def test_drift_sees_a_slowdown_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    flat = rng.normal(100, 1, 3000)
    assert abs(stats.drift(flat)) < 0.01
    ramp = flat * np.linspace(1.0, 1.3, 3000)
    assert stats.drift(ramp) > 0.15
    assert stats.drift([1, 2, 3]) is None


def test_window_medians_agree() -> None:
    assert stats.window_medians_agree(np.array([10.0] * 10 + [10.2] * 10), 10, 0.05)
    assert not stats.window_medians_agree(np.array([10.0] * 10 + [12.0] * 10), 10, 0.05)
    assert not stats.window_medians_agree(np.array([10.0] * 15), 10, 0.05)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20", (20, None)), (20, (20, None)), ("1.5s", (None, 1.5)), ("0.5", (None, 0.5)),
     (2.0, (None, 2.0)), (None, (None, None)), ("0", (0, None))],
)  # fmt: skip
def test_parse_warmup(text, expected) -> None:
    assert parse_warmup(text) == expected


@pytest.mark.parametrize("bad", ["abc", "-3", "-1s", "nan"])
def test_parse_warmup_refuses_nonsense(bad: str) -> None:
    with pytest.raises(InputError):
        parse_warmup(bad)
