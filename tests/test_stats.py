"""regbench.stats on literal arrays, each result checked against an independent computation:
the textbook formulas with scipy's t quantiles, or scipy's own t-tests run separately."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from regbench import stats


# ----------------------------------------------------------------------------- direct maths
# Reference computations, also used by the whole-comparison tests (test_compare, test_sweep).
def direct_stats(values: list[float]) -> tuple[float, float, float, float]:
    x = np.array(values)
    n, mean, std = len(x), x.mean(), x.std(ddof=1)
    half = sp.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def direct_paired(x: list[float], y: list[float]) -> tuple[float, float, float, float]:
    d = np.array(x) - np.array(y)
    n, mean, se = len(d), d.mean(), d.std(ddof=1) / math.sqrt(len(d))
    t = mean / se
    half = sp.t.ppf(0.975, n - 1) * se
    return mean, mean - half, mean + half, 2 * sp.t.sf(abs(t), n - 1)


def direct_welch(x: list[float], y: list[float]) -> tuple[float, float, float, float]:
    a, b = np.array(x), np.array(y)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = a.mean() - b.mean()
    half = sp.t.ppf(0.975, df) * se
    return diff, diff - half, diff + half, 2 * sp.t.sf(abs(diff / se), df)


# ----------------------------------------------------------------------------- describe
def test_describe_matches_student_t() -> None:
    values = [0.31, 0.35, 0.29, 0.4]
    result = stats.describe(values)
    mean, std, low, high = direct_stats(values)
    assert result.n == 4
    assert result.mean == pytest.approx(mean, rel=1e-12)
    assert result.std == pytest.approx(std, rel=1e-12)
    assert result.ci == pytest.approx((low, high), rel=1e-12)
    single = stats.describe([0.5])
    assert single.mean == 0.5 and math.isnan(single.std) and math.isnan(single.ci[0])


def test_describe_by_hand() -> None:
    # 1..5: mean 3, sum of squared deviations 10, so the sample variance is 10 / 4 = 2.5.
    result = stats.describe(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    half = sp.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)
    assert (result.n, result.mean) == (5, 3.0)
    assert result.std == pytest.approx(math.sqrt(2.5), rel=1e-12)
    assert result.ci == pytest.approx((3.0 - half, 3.0 + half), rel=1e-12)
    # A 90% interval uses the 0.95 quantile.
    narrow = stats.describe([1.0, 2.0, 3.0, 4.0, 5.0], confidence=0.90)
    half = sp.t.ppf(0.95, 4) * math.sqrt(2.5) / math.sqrt(5)
    assert narrow.ci == pytest.approx((3.0 - half, 3.0 + half), rel=1e-12)


def test_describe_without_spread_is_exact() -> None:
    result = stats.describe([0.25, 0.25, 0.25])
    assert (result.n, result.mean, result.std, result.ci) == (3, 0.25, 0.0, (0.25, 0.25))


# ----------------------------------------------------------------------------- paired and Welch
def test_paired_matches_scipy_ttest_rel() -> None:
    x, y = [0.52, 0.48, 0.61, 0.55, 0.50], [0.50, 0.47, 0.55, 0.56, 0.45]
    result = stats.paired(x, y)
    reference = sp.ttest_rel(x, y)
    d = [a - b for a, b in zip(x, y, strict=True)]  # 0.02, 0.01, 0.06, -0.01, 0.05
    assert result.value == pytest.approx(sum(d) / 5, rel=1e-12)
    assert result.p == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.ci == pytest.approx(direct_paired(x, y)[1:3], rel=1e-12)
    assert (result.test, result.n) == ("paired", 5)


def test_paired_with_a_constant_difference_has_no_p() -> None:
    result = stats.paired([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])
    assert result.value == 0.5 and result.ci == (0.5, 0.5) and math.isnan(result.p)


def test_welch_matches_scipy_ttest_ind() -> None:
    x, y = [0.30, 0.36, 0.33, 0.41, 0.35], [0.45, 0.38, 0.52]
    result = stats.welch(x, y)
    reference = sp.ttest_ind(x, y, equal_var=False)
    assert result.value == pytest.approx(np.mean(x) - np.mean(y), rel=1e-12)
    assert result.p == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.ci == pytest.approx(direct_welch(x, y)[1:3], rel=1e-12)
    assert (result.test, result.n) == ("Welch", 5)


def test_welch_without_spread_is_exact() -> None:
    result = stats.welch([1.0, 1.0], [0.25, 0.25, 0.25])
    assert result.value == 0.75 and result.ci == (0.75, 0.75) and math.isnan(result.p)


# ----------------------------------------------------------------------------- difference
def test_difference_is_paired_over_shared_seeds_else_welch() -> None:
    group = [(1, 0.30), (2, 0.36), (3, 0.33), (4, 0.41)]
    base = [(1, 0.35), (2, 0.38), (3, 0.39), (5, 0.30)]
    paired = stats.difference(group, base)
    assert paired.test == "paired" and paired.n == 3
    expected = direct_paired([0.30, 0.36, 0.33], [0.35, 0.38, 0.39])
    assert (paired.value, *paired.ci, paired.p) == pytest.approx(expected, rel=1e-9)

    disjoint = [(7, 0.35), (8, 0.38), (9, 0.39)]
    welch = stats.difference(group, disjoint)
    assert welch.test == "Welch"
    expected = direct_welch([0.30, 0.36, 0.33, 0.41], [0.35, 0.38, 0.39])
    assert (welch.value, *welch.ci, welch.p) == pytest.approx(expected, rel=1e-9)

    # A seed twice in a group (runs pooled with --over) cannot be paired.
    pooled = [(1, 0.30), (1, 0.31), (2, 0.36)]
    assert stats.difference(pooled, base).test == "Welch"


def test_difference_pairs_by_seed_not_by_position() -> None:
    group = [(3, 0.9), (1, 0.7), (2, 0.8)]
    base = [(1, 0.6), (2, 0.65), (3, 0.85)]
    result = stats.difference(group, base)
    reference = sp.ttest_rel([0.9, 0.7, 0.8], [0.85, 0.6, 0.65])
    assert result.test == "paired" and result.p == pytest.approx(reference.pvalue, rel=1e-12)


def test_one_shared_seed_is_not_enough_to_pair() -> None:
    group, base = [(1, 0.5), (2, 0.7), (3, 0.6)], [(1, 0.4), (8, 0.45), (9, 0.35)]
    result = stats.difference(group, base)
    reference = sp.ttest_ind([0.5, 0.7, 0.6], [0.4, 0.45, 0.35], equal_var=False)
    assert result.test == "Welch" and result.p == pytest.approx(reference.pvalue, rel=1e-12)


def test_a_single_value_gives_no_test() -> None:
    result = stats.difference([(1, 0.5)], [(1, 0.25), (2, 0.75), (3, 0.5)])
    assert (result.value, result.test, result.n) == (0.0, "", 1)
    assert math.isnan(result.p) and all(math.isnan(c) for c in result.ci)


def test_shared_seeds_keep_order_and_refuse_repeats() -> None:
    assert stats.shared_seeds([3, 1, 2], [2, 3, 9]) == [3, 2]
    assert stats.shared_seeds([1, 1, 2], [1, 2]) == []
    assert stats.shared_seeds([1, 2], [2, 2]) == []
