"""Statistics over seeds, as pure functions: arrays of numbers in, numbers out.

Nothing here knows about runs, groups or files. ``describe`` summarises one group's values (n,
mean, sample std, Student-t confidence interval for the mean); ``difference`` compares a group
with a baseline: a paired t-test over the seeds both share when there are two or more (the same
seed means the same initial weights and data order, so pairing removes that variance), Welch's
t-test otherwise. Degenerate inputs (n = 1, zero spread) give nan or exact intervals, never a
warning.

Beyond the p-value, in the style of rliable (statistics as functions over arrays): ``holm``
adjusts the p-values of a family of comparisons; ``effect`` gives the relative change, Cohen's d
(d_z when paired) and the probability of improvement P(X > Y); ``seeds_needed`` turns an observed
effect into the number of seeds a t-test needs to show it (noncentral t power); and
``bootstrap_mean`` / ``bootstrap_difference`` are BCa bootstrap intervals, the option to the
t interval.

For an equivalence claim ("A and B train to the same result") a large p-value shows nothing:
``tost`` runs the two one-sided tests against a stated margin, paired or Welch like
``difference``, and only its small p-value says "equivalent within the margin".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

CONFIDENCE = 0.95
NAN = float("nan")


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n = 1
    ci: tuple[float, float]  # Student-t interval for the mean; nan for n = 1


@dataclass(frozen=True)
class Difference:
    """A group's mean minus the baseline's, with its CI and two-sided p-value."""

    value: float
    ci: tuple[float, float]
    p: float
    test: str  # "paired" | "Welch" | "" (too few values for a test)
    n: int  # pairs for a paired test, else the group's n


def describe(values: ArrayLike, confidence: float = CONFIDENCE, ci: str = "t") -> Stats:
    """n, mean, sample std and the Student-t ``confidence`` interval of the mean of ``values``
    (at least one), or the BCa bootstrap one with ``ci="bootstrap"``. With n = 1 std and CI are
    nan; with zero spread the CI is the mean itself."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return Stats(n, mean, NAN, (NAN, NAN))
    std = float(x.std(ddof=1))
    if std == 0:
        return Stats(n, mean, 0.0, (mean, mean))
    if ci == "bootstrap":
        return Stats(n, mean, std, bootstrap_mean(x, confidence))
    low, high = t_interval(confidence, n - 1, mean, std / math.sqrt(n))
    return Stats(n, mean, std, (float(low), float(high)))


def t_interval(confidence: float, df: int, loc: float, scale: float) -> tuple[float, float]:
    """scipy.stats.t.interval(confidence, df, loc, scale), from the quantile function alone:
    scipy.special imports in a third of the time scipy.stats takes (0.3 s against 0.8 s), and
    every sweep's table needs this interval."""
    from scipy.special import stdtrit

    tails = ((1 - confidence) / 2, (1 + confidence) / 2)
    low, high = (float(stdtrit(df, q)) * scale + loc for q in tails)
    return low, high


def paired(x: ArrayLike, y: ArrayLike, confidence: float = CONFIDENCE) -> Difference:
    """mean(x - y) with the paired t-test's CI and p-value; ``x[i]`` and ``y[i]`` are one pair
    (at least two pairs)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = a - b
    if float(d.std(ddof=1)) == 0:  # t is undefined: every pair differs by the same amount
        return Difference(float(d.mean()), (float(d.mean()),) * 2, NAN, "paired", len(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_rel(a, b)
        ci = result.confidence_interval(confidence)
    return Difference(
        float(d.mean()), (float(ci.low), float(ci.high)), float(result.pvalue), "paired", len(d)
    )


def welch(x: ArrayLike, y: ArrayLike, confidence: float = CONFIDENCE) -> Difference:
    """mean(x) - mean(y) with Welch's t-test's CI and p-value (unequal variances; at least two
    values each)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    value = float(a.mean() - b.mean())
    if float(a.std(ddof=1)) == 0 and float(b.std(ddof=1)) == 0:
        return Difference(value, (value, value), NAN, "Welch", len(a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
        ci = result.confidence_interval(confidence)
    return Difference(value, (float(ci.low), float(ci.high)), float(result.pvalue), "Welch", len(a))


def difference(
    group: Sequence[tuple[Hashable, float]],
    baseline: Sequence[tuple[Hashable, float]],
    confidence: float = CONFIDENCE,
    ci: str = "t",
) -> Difference:
    """``group`` minus ``baseline``, each a sequence of (seed, value) pairs: paired over the
    shared seeds when two or more are shared (each seed once per side), Welch otherwise, and no
    test (nan CI and p) when either side has a single value. ``ci="bootstrap"`` replaces the t
    interval with a BCa bootstrap one (of the paired differences, or of the two samples); the
    p-value stays the t-test's."""
    x, y, is_paired = samples(group, baseline)
    if is_paired:
        result = paired(x, y, confidence)
        boot = bootstrap_mean(x - y, confidence) if ci == "bootstrap" else None
    elif len(x) >= 2 and len(y) >= 2:
        result = welch(x, y, confidence)
        boot = bootstrap_difference(x, y, confidence) if ci == "bootstrap" else None
    else:
        return Difference(float(x.mean() - y.mean()), (NAN, NAN), NAN, "", len(x))
    return result if boot is None else replace(result, ci=boot)


def samples(
    group: Sequence[tuple[Hashable, float]], baseline: Sequence[tuple[Hashable, float]]
) -> tuple[NDArray, NDArray, bool]:
    """The arrays ``difference`` compares: the values of the shared seeds in matching order and
    True when two or more seeds are shared, else all values of each side and False."""
    import numpy as np

    shared = shared_seeds([s for s, _ in group], [s for s, _ in baseline])
    if len(shared) >= 2:
        a, b = dict(group), dict(baseline)
        return np.array([a[s] for s in shared]), np.array([b[s] for s in shared]), True
    return _values(group), _values(baseline), False


@dataclass(frozen=True)
class Effect:
    """How large a group's difference from the baseline is, beyond its p-value."""

    relative: float  # (mean - baseline mean) in % of |baseline mean|
    d: float  # d_z (paired) or Cohen's d (unpaired), signed like the difference
    prob_improvement: float  # P(group better than baseline), ties 1/2
    paired: bool


def effect(
    group: Sequence[tuple[Hashable, float]],
    baseline: Sequence[tuple[Hashable, float]],
    higher_is_better: bool,
) -> Effect:
    """The effect sizes of ``group`` against ``baseline`` over the same samples ``difference``
    tests (matched seeds when paired, so the relative change is the shown difference over the
    baseline's mean on the same seeds; with every seed shared, group mean vs baseline mean)."""
    x, y, is_paired = samples(group, baseline)
    d = cohens_dz(x, y) if is_paired else cohens_d(x, y)
    change = relative_change(float(x.mean()), float(y.mean()))
    return Effect(change, d, prob_improvement(x, y, higher_is_better, is_paired), is_paired)


def shared_seeds(seeds: Sequence[Hashable], baseline_seeds: Sequence[Hashable]) -> list[Hashable]:
    """The seeds of ``seeds`` also in ``baseline_seeds``, in order; none when a seed appears twice
    on either side (e.g. runs pooled with --over), since the pairs are then ambiguous."""
    if len(set(seeds)) != len(seeds) or len(set(baseline_seeds)) != len(baseline_seeds):
        return []
    other = set(baseline_seeds)
    return [s for s in seeds if s in other]


def _values(pairs: Sequence[tuple[Hashable, float]]) -> NDArray:
    import numpy as np

    return np.array([v for _, v in pairs], dtype=float)


# ----------------------------------------------------------------------------- equivalence
@dataclass(frozen=True)
class Equivalence:
    """TOST of ``|mean difference| < margin``: the larger of the two one-sided p-values, and
    the (1 - 2 alpha) interval of the difference, which lies inside ±margin exactly when TOST
    rejects at alpha."""

    margin: float
    p: float  # nan: no test (too few values, or no spread)
    ci: tuple[float, float]
    test: str  # "paired" | "Welch" | ""
    n: int


def tost(
    x: ArrayLike, y: ArrayLike, margin: float, paired: bool, alpha: float = 0.05
) -> Equivalence:
    """Two one-sided t-tests of H0: mean(x) - mean(y) <= -margin and H0: ... >= +margin,
    paired (x[i], y[i] one pair) or Welch (unequal variances). nan p without two values (pairs)
    each, or without spread."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    test = "paired" if paired else "Welch"
    if len(a) < 2 or len(b) < 2:
        return Equivalence(margin, NAN, (NAN, NAN), "", len(a))
    value, se, df = _paired_se(a, b) if paired else _welch_se(a, b)
    if se == 0:
        return Equivalence(margin, NAN, (value, value), test, len(a))
    p_above_lower = float(stats.t.sf((value + margin) / se, df))
    p_below_upper = float(stats.t.cdf((value - margin) / se, df))
    half = float(stats.t.isf(alpha, df)) * se
    return Equivalence(
        margin, max(p_above_lower, p_below_upper), (value - half, value + half), test, len(a)
    )


def _paired_se(a: NDArray, b: NDArray) -> tuple[float, float, float]:
    """Mean difference, its standard error and degrees of freedom, for pairs."""
    d = a - b
    return float(d.mean()), float(d.std(ddof=1)) / math.sqrt(len(d)), len(d) - 1.0


def _welch_se(a: NDArray, b: NDArray) -> tuple[float, float, float]:
    """Difference of means, its standard error and Welch-Satterthwaite degrees of freedom."""
    va, vb = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    se2 = va + vb
    if se2 == 0:
        return float(a.mean() - b.mean()), 0.0, NAN
    df = se2**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(a.mean() - b.mean()), math.sqrt(se2), df


def equivalence(
    group: Sequence[tuple[Hashable, float]],
    baseline: Sequence[tuple[Hashable, float]],
    margin: float,
    alpha: float = 0.05,
) -> Equivalence:
    """``tost`` of ``group`` against ``baseline`` ((seed, value) pairs) over the same samples
    ``difference`` tests: paired over two or more shared seeds, Welch otherwise."""
    x, y, is_paired = samples(group, baseline)
    return tost(x, y, margin, is_paired, alpha)


# ----------------------------------------------------------------------------- multiple comparisons
def holm(pvalues: ArrayLike) -> list[float]:
    """Holm-Bonferroni adjusted p-values of one family, in the order given.

    The k-th smallest of m p-values is multiplied by (m - k + 1); a running maximum keeps the
    adjusted values in the order of the raw ones, and they are capped at 1. nan p-values (no
    test) stay nan and are not members of the family: they cannot be rejected, so they do not
    make the others harder to reject.
    """
    import numpy as np

    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, NAN)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m, running = len(order), 0.0
    for k, index in enumerate(order):
        running = max(running, min(1.0, (m - k) * float(p[index])))
        adjusted[index] = running
    return [float(v) for v in adjusted]


# ----------------------------------------------------------------------------- effect sizes
def relative_change(mean: float, baseline_mean: float) -> float:
    """(mean - baseline_mean) as a percentage of |baseline_mean|; nan for a zero baseline."""
    if baseline_mean == 0 or math.isnan(baseline_mean):
        return NAN
    return 100.0 * (mean - baseline_mean) / abs(baseline_mean)


def cohens_d(x: ArrayLike, y: ArrayLike) -> float:
    """(mean(x) - mean(y)) / pooled standard deviation: the unpaired effect size. nan without
    at least two values each or without spread."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return NAN
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    if pooled == 0:
        return NAN
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


def cohens_dz(x: ArrayLike, y: ArrayLike) -> float:
    """mean(x - y) / std(x - y): the paired effect size (what the paired t-test's power depends
    on). nan with fewer than two pairs or a constant difference."""
    import numpy as np

    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    if len(d) < 2 or float(d.std(ddof=1)) == 0:
        return NAN
    return float(d.mean() / d.std(ddof=1))


def prob_improvement(
    x: ArrayLike, y: ArrayLike, higher_is_better: bool, paired: bool = False
) -> float:
    """P(X > Y) as in rliable: the share of (x, y) pairs where x is better than y in the
    metric's direction, ties counting one half. Unpaired: all len(x) * len(y) pairs; paired:
    only the matched pairs x[i], y[i] (same seed)."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not len(a) or not len(b):
        return NAN
    diff = a - b if paired else a[:, None] - b[None, :]
    better = diff > 0 if higher_is_better else diff < 0
    return float(np.mean(better + 0.5 * (diff == 0)))


# ----------------------------------------------------------------------------- power
POWER = 0.8
MAX_SEEDS = 10_000


def power(effect: float, n: int, alpha: float = 0.05, paired: bool = True) -> float:
    """Power of the two-sided t-test at ``alpha`` for a true standardized ``effect`` with ``n``
    per group: paired (d_z, df n - 1, noncentrality d_z * sqrt(n)) or two-sample (Cohen's d,
    df 2n - 2, noncentrality d * sqrt(n / 2)), from the noncentral t."""
    from scipy import stats

    df = n - 1 if paired else 2 * n - 2
    nc = effect * math.sqrt(n if paired else n / 2)
    critical = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc))


def seeds_needed(
    effect: float, alpha: float = 0.05, paired: bool = True, target: float = POWER
) -> int | None:
    """The smallest n per group whose t-test shows ``effect`` with probability ``target`` at
    ``alpha`` (see ``power``); None for a zero or undefined effect or more than MAX_SEEDS."""
    if math.isnan(effect) or effect == 0:
        return None
    # Power grows with n. Double n until it reaches the target, then bisect: far beyond the
    # answer the noncentrality gets large and scipy's nct returns nan, so never look there.
    high = 2
    while power(effect, high, alpha, paired) < target:
        if high >= MAX_SEEDS:
            return None
        high = min(2 * high, MAX_SEEDS)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if power(effect, middle, alpha, paired) >= target:
            high = middle
        else:
            low = middle + 1
    return low


# ----------------------------------------------------------------------------- bootstrap
RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # fixed, so that the same runs always give the same interval


def bootstrap_mean(values: ArrayLike, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """BCa bootstrap interval of the mean (of paired differences, when given them); nan with
    fewer than two values, the mean itself without spread."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return (NAN, NAN)
    if float(x.std()) == 0:
        return (float(x.mean()),) * 2
    return _bootstrap((x,), lambda a, axis: np.mean(a, axis=axis), confidence)


def bootstrap_difference(
    x: ArrayLike, y: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """BCa bootstrap interval of mean(x) - mean(y) for unpaired samples (each resampled on its
    own); nan without two values each."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return (NAN, NAN)
    if float(a.std()) == 0 and float(b.std()) == 0:
        return (float(a.mean() - b.mean()),) * 2
    return _bootstrap(
        (a, b), lambda u, v, axis: np.mean(u, axis=axis) - np.mean(v, axis=axis), confidence
    )


def _bootstrap(samples: tuple, statistic, confidence: float) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    with warnings.catch_warnings():  # BCa on a handful of seeds can be degenerate: nan, no noise
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            samples,
            statistic,
            confidence_level=confidence,
            n_resamples=RESAMPLES,
            method="BCa",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))
