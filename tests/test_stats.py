"""regbench.analysis.stats on literal arrays, each result checked against an independent
computation: the textbook formulas with scipy's t quantiles, or scipy's own
t-tests run separately."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from regbench.analysis import stats


# ----------------------------------------------------------------------------- direct maths
# Reference computations, also used by the whole-comparison tests (test_compare, test_sweep).
def direct_stats(values: list[float]) -> tuple[float, float, float, float]:
    x = np.array(values)
    n, mean, std = len(x), x.mean(), x.std(ddof=1)
    half = sp.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def direct_bounded(
    values: list[float], lo: float | None, hi: float | None
) -> tuple[float, float, float, float]:
    """direct_stats, with an interval that would leave (lo, hi) made on the log (one bound) or
    logit (two bounds) scale of the values and mapped back."""
    mean, std, low, high = direct_stats(values)
    if (lo is None or low >= lo) and (hi is None or high <= hi):
        return mean, std, low, high
    x = np.array(values)
    if hi is None:
        _, _, a, b = direct_stats(list(np.log(x - lo)))
        return mean, std, lo + math.exp(a), lo + math.exp(b)
    _, _, a, b = direct_stats(list(np.log((x - lo) / (hi - x))))
    back = lambda v: lo + (hi - lo) / (1 + math.exp(-v))  # noqa: E731
    return mean, std, back(a), back(b)


def test_an_interval_stays_inside_what_the_metric_can_be() -> None:
    """Accuracies near 1 and losses near 0 with a large spread: the t interval would leave the
    range, so it is made on the logit / log scale; values on the bound: clipped."""
    accuracy = [0.999, 0.62, 0.995]
    result = stats.describe(accuracy, bounds=(0.0, 1.0))
    assert result.interval == "t, logit scale"
    assert result.ci == pytest.approx(direct_bounded(accuracy, 0.0, 1.0)[2:], rel=1e-9)
    assert 0 < result.ci[0] < result.ci[1] < 1
    loss = [0.001, 0.9, 0.004]
    result = stats.describe(loss, bounds=(0.0, None))
    assert result.interval == "t, log scale" and result.ci[0] > 0
    assert result.ci == pytest.approx(direct_bounded(loss, 0.0, None)[2:], rel=1e-9)
    on_the_bound = stats.describe([1.0, 0.6, 1.0], bounds=(0.0, 1.0))
    assert on_the_bound.interval == "t, clipped" and on_the_bound.ci[1] == 1.0
    inside = stats.describe([0.5, 0.6, 0.55], bounds=(0.0, 1.0))
    assert inside.interval == "t" and inside.ci == pytest.approx(direct_stats([0.5, 0.6, 0.55])[2:])
    assert math.isnan(stats.describe([0.2, 0.9], bounds=(0.0, 1.0)).ci[0])  # two seeds: none


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


def test_t_interval_is_scipys_to_the_bit() -> None:
    # describe's interval without scipy.stats' import: the same numbers as before, exactly.
    for confidence, df, loc, scale in [(0.95, 3, 0.3375, 0.0243), (0.9, 1, -2.0, 7.5)]:
        expected = sp.t.interval(confidence, df, loc=loc, scale=scale)
        assert stats.t_interval(confidence, df, loc, scale) == tuple(map(float, expected))


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


# ----------------------------------------------------------------------------- spread in rounding
# Constant finals against a constant baseline: (group, baseline), three seeds each.
CONSTANTS = {
    "rounded": ([0.1 + 0.2, 0.3, 0.30000000000000004], [0.4] * 3),  # one number, three roundings
    "decimal": ([0.3] * 3, [0.4] * 3),  # numpy's mean of three 0.4s rounds: std 6.8e-17
    "dyadic": ([0.25] * 3, [0.375] * 3),  # exact in binary: std 0 even before
}
ROUNDED = CONSTANTS["rounded"][0]


def test_a_spread_within_rounding_is_no_spread() -> None:
    # numpy sees a spread of 3.9e-17: a d of -1.8e15 against a constant 0.4, once "shown".
    assert 0 < float(np.std(ROUNDED, ddof=1)) < 1e-16
    assert stats.sample_std(ROUNDED) == 0.0
    result = stats.describe(ROUNDED)
    assert result.std == 0.0 and result.ci == (result.mean, result.mean)


def test_a_real_spread_however_small_is_kept() -> None:
    # The tolerance is relative to the values' size (1e-12 of it): tiny values keep their spread.
    assert stats.sample_std([1e-20, 2e-20, 3e-20]) == pytest.approx(1e-20)
    assert stats.sample_std([1.0, 1.0 + 1e-9, 1.0 + 2e-9]) == pytest.approx(1e-9, rel=1e-6)
    assert math.isnan(stats.sample_std([1.0]))  # one value: no spread to speak of
    result = stats.paired([1.0, 1.0 + 1e-9, 1.0 + 3e-9], [1.0, 1.0, 1.0])
    assert result.p == pytest.approx(sp.ttest_rel([1.0, 1.0 + 1e-9, 1.0 + 3e-9], [1.0] * 3).pvalue)


@pytest.mark.parametrize("case", list(CONSTANTS))
@pytest.mark.parametrize("seeds", [(1, 2, 3), (4, 5, 6)], ids=["paired", "Welch"])
def test_constant_finals_get_no_test_on_any_path(case: str, seeds: tuple) -> None:
    finals, base = CONSTANTS[case]
    group = list(zip(seeds, finals, strict=True))
    baseline = list(zip((1, 2, 3), base, strict=True))
    diff = stats.difference(group, baseline)
    assert diff.test == ("paired" if seeds == (1, 2, 3) else "Welch")
    assert math.isnan(diff.p) and diff.ci == (diff.value, diff.value)
    assert diff.value == pytest.approx(finals[1] - base[1], rel=1e-12)
    assert stats.difference(group, baseline, ci="bootstrap").ci == diff.ci
    assert math.isnan(stats.effect(group, baseline, higher_is_better=False).d)
    assert math.isnan(stats.equivalence(group, baseline, margin=0.5).p)


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


# ----------------------------------------------------------------------------- Holm
def test_holm_by_hand() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (running max).
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1: 0.5*2 = 1.0, then 0.6 stays at the running maximum 1.0.
    assert stats.holm([0.6, 0.5]) == [1.0, 1.0]
    # nan (no test) is not a member of the family: the other two are adjusted for m = 2.
    adjusted = stats.holm([0.02, float("nan"), 0.04])
    assert adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert stats.holm([]) == []


def test_holm_is_monotone_and_never_below_raw() -> None:
    raw = [0.001, 0.2, 0.013, 0.04, 0.5, 0.012]
    adjusted = stats.holm(raw)
    order = np.argsort(raw)
    assert all(np.diff(np.array(adjusted)[order]) >= 0)
    assert all(a >= p for a, p in zip(adjusted, raw, strict=True)) and max(adjusted) <= 1
    # The step-down rule, written out: reject H_(k) while p_(k) <= alpha / (m - k + 1).
    for alpha in (0.01, 0.05, 0.1):
        rejected, m = set(), len(raw)
        for k, i in enumerate(order):
            if raw[i] > alpha / (m - k):
                break
            rejected.add(int(i))
        assert rejected == {i for i, a in enumerate(adjusted) if a <= alpha}


# ----------------------------------------------------------------------------- effect sizes
def test_relative_change() -> None:
    assert stats.relative_change(0.132, 0.15) == pytest.approx(-12.0)
    assert stats.relative_change(-0.9, -1.0) == pytest.approx(10.0)  # of |baseline|
    assert math.isnan(stats.relative_change(1.0, 0.0))


def test_cohens_d_by_hand_and_from_the_pooled_t() -> None:
    x, y = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    # variances 1 and 4, pooled (2*1 + 2*4) / 4 = 2.5, means 2 and 4.
    assert stats.cohens_d(x, y) == pytest.approx(-2 / math.sqrt(2.5), rel=1e-12)
    a, b = [0.30, 0.36, 0.33, 0.41, 0.35], [0.45, 0.38, 0.52]
    t = sp.ttest_ind(a, b, equal_var=True).statistic  # t = d * sqrt(n1 n2 / (n1 + n2))
    assert stats.cohens_d(a, b) == pytest.approx(t / math.sqrt(5 * 3 / 8), rel=1e-12)
    assert math.isnan(stats.cohens_d([1.0], y)) and math.isnan(stats.cohens_d([1, 1], [2, 2]))


def test_cohens_dz_from_the_paired_t() -> None:
    x, y = [0.52, 0.48, 0.61, 0.55, 0.50], [0.50, 0.47, 0.55, 0.56, 0.45]
    t = sp.ttest_rel(x, y).statistic  # t = d_z * sqrt(n)
    assert stats.cohens_dz(x, y) == pytest.approx(t / math.sqrt(5), rel=1e-12)
    assert math.isnan(stats.cohens_dz([1.5, 2.5], [1.0, 2.0]))  # constant difference


def test_prob_improvement_by_counting_and_from_mann_whitney() -> None:
    x, y = [0.3, 0.5, 0.5], [0.5, 0.4]
    # Pairs (x, y): 0.3<0.5, 0.3<0.4, 0.5=0.5 (1/2), 0.5>0.4, 0.5=0.5 (1/2), 0.5>0.4 -> 3/6.
    assert stats.prob_improvement(x, y, higher_is_better=True) == pytest.approx(3 / 6)
    # Lower is better: 0.3<0.5, 0.3<0.4 and the two ties -> 3/6 as well.
    assert stats.prob_improvement(x, y, higher_is_better=False) == pytest.approx(3 / 6)
    a, b = [0.30, 0.36, 0.33, 0.41, 0.35], [0.45, 0.38, 0.52, 0.36]
    u = sp.mannwhitneyu(a, b).statistic  # U = #(a > b) + #(a = b) / 2
    assert stats.prob_improvement(a, b, True) == pytest.approx(u / 20, rel=1e-12)
    assert stats.prob_improvement(a, b, False) == pytest.approx(1 - u / 20, rel=1e-12)
    # Paired: only the matched pairs count (0.3<0.5, 0.5>0.4, 0.5=0.5).
    assert stats.prob_improvement(x, [0.5, 0.4, 0.5], True, paired=True) == pytest.approx(1.5 / 3)


def test_effect_uses_the_same_samples_as_the_test() -> None:
    group = [(1, 0.30), (2, 0.36), (3, 0.33), (4, 0.41)]
    base = [(1, 0.35), (2, 0.38), (3, 0.39), (5, 0.30)]
    paired = stats.effect(group, base, higher_is_better=False)
    x, y = [0.30, 0.36, 0.33], [0.35, 0.38, 0.39]
    assert paired.paired and paired.d == pytest.approx(stats.cohens_dz(x, y))
    assert paired.prob_improvement == 1.0  # lower in all three matched seeds
    assert paired.relative == pytest.approx(100 * (np.mean(x) - np.mean(y)) / np.mean(y))
    unpaired = stats.effect(group, [(7, 0.35), (8, 0.38), (9, 0.39)], higher_is_better=False)
    assert not unpaired.paired
    assert unpaired.d == pytest.approx(stats.cohens_d([0.30, 0.36, 0.33, 0.41], y))


# ----------------------------------------------------------------------------- power
def integrated_power(effect: float, n: int, alpha: float, paired: bool) -> float:
    """Power of the two-sided t-test without the noncentral t: T = (Z + delta) / sqrt(V / df),
    V ~ chi2(df), so P(|T| > c) integrates normal tail probabilities over V's density."""
    from scipy import integrate

    df = n - 1 if paired else 2 * n - 2
    delta = effect * math.sqrt(n if paired else n / 2)
    c = sp.t.ppf(1 - alpha / 2, df)

    def given(v: float) -> float:
        bound = c * math.sqrt(v / df)
        return (sp.norm.sf(bound - delta) + sp.norm.cdf(-bound - delta)) * sp.chi2.pdf(v, df)

    # Over where V's density lives (quad misses the narrow peak of a large df on [0, inf)).
    low, high = sp.chi2.ppf(1e-13, df), sp.chi2.isf(1e-13, df)
    return integrate.quad(given, low, high, points=[df], limit=400)[0]


@pytest.mark.parametrize(
    ("effect", "paired", "expected"),
    [(0.5, False, 64), (0.5, True, 34), (0.8, False, 26), (-0.5, True, 34), (1.0, True, 10)],
)
def test_seeds_needed_known_values(effect: float, paired: bool, expected: int) -> None:
    # Textbook: d = 0.5 needs 64 per group (two-sample), d = 0.8 needs 26; paired d_z = 0.5, 34.
    assert stats.seeds_needed(effect, alpha=0.05, paired=paired) == expected
    # The same n from the integrated power: it reaches 80%, one fewer does not.
    assert integrated_power(abs(effect), expected, 0.05, paired) >= 0.8
    assert integrated_power(abs(effect), expected - 1, 0.05, paired) < 0.8


def test_power_matches_the_integrated_power() -> None:
    for effect, n, alpha, paired in ((0.7, 5, 0.05, True), (1.3, 4, 0.0125, False)):
        assert stats.power(effect, n, alpha, paired) == pytest.approx(
            integrated_power(effect, n, alpha, paired), rel=1e-6
        )
    # A stricter alpha (e.g. Bonferroni over 8 comparisons) needs more seeds.
    assert stats.seeds_needed(0.5, alpha=0.05 / 8) > stats.seeds_needed(0.5, alpha=0.05)


def test_seeds_needed_without_an_effect() -> None:
    assert stats.seeds_needed(0.0) is None and stats.seeds_needed(float("nan")) is None
    assert stats.seeds_needed(0.001) is None  # more than MAX_SEEDS


# ----------------------------------------------------------------------------- bootstrap
def hand_bca(values: list[float], confidence: float, resamples: int = 200_000) -> tuple:
    """Efron's BCa interval of the mean, written out with its own resamples."""
    x = np.array(values)
    rng = np.random.default_rng(12345)
    boot = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    z0 = sp.norm.ppf(np.mean(boot < x.mean()))
    jack = np.array([np.delete(x, i).mean() for i in range(len(x))])
    dev = jack.mean() - jack
    a = (dev**3).sum() / (6 * (dev**2).sum() ** 1.5)
    ends = []
    for q in ((1 - confidence) / 2, (1 + confidence) / 2):
        z = sp.norm.ppf(q)
        ends.append(np.quantile(boot, sp.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))))
    return tuple(ends)


def test_bootstrap_mean_matches_a_hand_bca() -> None:
    values = [0.31, 0.35, 0.29, 0.40, 0.52, 0.33, 0.30, 0.36]
    low, high = stats.bootstrap_mean(values)
    ref_low, ref_high = hand_bca(values, 0.95)
    assert low == pytest.approx(ref_low, abs=0.004) and high == pytest.approx(ref_high, abs=0.004)
    assert stats.bootstrap_mean(values) == (low, high)  # fixed seed: reproducible
    assert math.isnan(stats.bootstrap_mean([0.5])[0])
    assert stats.bootstrap_mean([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_bootstrap_difference_and_the_ci_option() -> None:
    group = [(1, 0.30), (2, 0.36), (3, 0.33), (4, 0.41), (5, 0.38)]
    base = [(1, 0.35), (2, 0.38), (3, 0.39), (4, 0.40), (5, 0.37)]
    t_based, boot = stats.difference(group, base), stats.difference(group, base, ci="bootstrap")
    d = [a - b for (_, a), (_, b) in zip(group, base, strict=True)]
    assert boot.p == t_based.p and boot.value == t_based.value  # only the interval changes
    assert boot.ci == stats.bootstrap_mean(d) and boot.ci != t_based.ci
    assert boot.ci[0] < boot.value < boot.ci[1]
    x, y = [0.30, 0.36, 0.33, 0.41], [0.45, 0.38, 0.52, 0.47]
    low, high = stats.bootstrap_difference(x, y)
    assert low < np.mean(x) - np.mean(y) < high and high < 0
    described = stats.describe([0.31, 0.35, 0.29, 0.40, 0.52], ci="bootstrap")
    assert described.ci == stats.bootstrap_mean([0.31, 0.35, 0.29, 0.40, 0.52])


# ----------------------------------------------------------------------------- equivalence (TOST)
TOST_X = [0.912, 0.905, 0.921, 0.899, 0.915, 0.908]
TOST_Y = [0.910, 0.907, 0.916, 0.902, 0.911, 0.906]


@pytest.mark.parametrize("margin", [0.002, 0.01, 0.05])
def test_paired_tost_matches_two_one_sided_scipy_tests(margin: float) -> None:
    """TOST = the larger p of two one-sided one-sample t-tests of the differences, against
    -margin (alternative greater) and +margin (alternative less), run by scipy."""
    d = np.array(TOST_X) - np.array(TOST_Y)
    lower = sp.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = sp.ttest_1samp(d, margin, alternative="less").pvalue
    result = stats.tost(TOST_X, TOST_Y, margin, paired=True)
    assert result.p == pytest.approx(max(lower, upper), rel=1e-10)
    assert result.test == "paired" and result.n == 6 and result.margin == margin
    ci = sp.ttest_1samp(d, 0).confidence_interval(0.90)  # the (1 - 2 alpha) interval
    assert result.ci == pytest.approx((ci.low, ci.high), rel=1e-10)


@pytest.mark.parametrize("margin", [0.002, 0.01, 0.05])
def test_welch_tost_matches_two_shifted_scipy_welch_tests(margin: float) -> None:
    """Unpaired: Welch's one-sided tests of x + margin > y and x - margin < y."""
    x, y = np.array(TOST_X), np.array(TOST_Y[:5]) + 0.003
    lower = sp.ttest_ind(x + margin, y, equal_var=False, alternative="greater").pvalue
    upper = sp.ttest_ind(x - margin, y, equal_var=False, alternative="less").pvalue
    result = stats.tost(x, y, margin, paired=False)
    assert result.p == pytest.approx(max(lower, upper), rel=1e-10)
    ci = sp.ttest_ind(x, y, equal_var=False).confidence_interval(0.90)
    assert result.ci == pytest.approx((ci.low, ci.high), rel=1e-10) and result.test == "Welch"


def test_tost_rejects_exactly_when_the_90_ci_lies_inside_the_margin() -> None:
    for margin in (0.001, 0.002, 0.003, 0.004, 0.006, 0.01):
        result = stats.tost(TOST_X, TOST_Y, margin, paired=True)
        inside = -margin < result.ci[0] and result.ci[1] < margin
        assert (result.p < 0.05) == inside


def test_tost_of_a_clear_difference_is_not_equivalence() -> None:
    """A large p for the difference does not make TOST small: noisy data with a wide CI."""
    x, y = [1.0, 3.0, 0.5, 2.5], [2.0, 1.0, 2.6, 1.2]
    assert sp.ttest_rel(x, y).pvalue > 0.05  # "no difference shown"...
    assert stats.tost(x, y, 0.5, paired=True).p > 0.05  # ...is not "equivalent within 0.5"


def test_tost_degenerate_inputs_give_no_p() -> None:
    assert math.isnan(stats.tost([1.0], [1.0], 0.1, paired=False).p)
    same = stats.tost([1.0, 2.0], [0.5, 1.5], 0.1, paired=True)  # constant difference
    assert math.isnan(same.p) and same.ci == (0.5, 0.5)


def test_equivalence_pairs_over_shared_seeds_like_difference() -> None:
    group = list(zip([3, 1, 2, 4], [0.91, 0.90, 0.92, 0.93], strict=True))
    baseline = list(zip([1, 2, 3], [0.905, 0.915, 0.912], strict=True))
    result = stats.equivalence(group, baseline, 0.02)
    expected = stats.tost([0.91, 0.90, 0.92], [0.912, 0.905, 0.915], 0.02, paired=True)
    assert result == expected and result.test == "paired" and result.n == 3
