"""Statistics over seeds, as pure functions: arrays of numbers in, numbers out.

Nothing here knows about runs, groups or files. ``describe`` summarises one group's values (n,
mean, sample std, Student-t confidence interval for the mean); ``difference`` compares a group
with a baseline: a paired t-test over the seeds both share when there are two or more (the same
seed means the same initial weights and data order, so pairing removes that variance), Welch's
t-test otherwise. Degenerate inputs (n = 1, zero spread) give nan or exact intervals, never a
warning; a spread within rounding of zero is zero (``sample_std``), on every path.

Beyond the p-value, in the style of rliable (statistics as functions over arrays): ``holm``
adjusts the p-values of a family of comparisons; ``effect`` gives the relative change, Cohen's d
(d_z when paired) and the probability of improvement P(X > Y); ``seeds_needed`` turns an observed
effect into the number of seeds a t-test needs to show it (noncentral t power), and
``seeds_range`` adds the range that the effect's noncentral-t interval (``d_interval``) implies;
and ``bootstrap_mean`` / ``bootstrap_difference`` are BCa bootstrap intervals, the option to the
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

CONFIDENCE = 0.95
NAN = float("nan")


CONFIDENCE_MIN_N = 3  # fewer values: no interval (two seeds give a t interval 12.7 std wide)


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n = 1
    ci: tuple[float, float]  # interval for the mean (see ``interval``); nan for n < 3
    interval: str = "t"  # how ci was made: t | bootstrap | t, log scale | t, logit scale | ...


@dataclass(frozen=True)
class Difference:
    """A group's mean minus the baseline's, with its CI and two-sided p-value."""

    value: float
    ci: tuple[float, float]
    p: float
    test: str  # "paired" | "Welch" | "" (too few values for a test)
    n: int  # pairs for a paired test, else the group's n


def describe(
    values: ArrayLike,
    confidence: float = CONFIDENCE,
    ci: str = "t",
    bounds: tuple[float | None, float | None] = (None, None),
) -> Stats:
    """n, mean, sample std and the Student-t ``confidence`` interval of the mean of ``values``
    (at least one), or the BCa bootstrap one with ``ci="bootstrap"``. The interval stays inside
    ``bounds``, the values the metric can take (:func:`bounded`). With n = 1 the std is nan;
    with fewer than three values there is no interval; with zero spread it is the mean."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return Stats(n, mean, NAN, (NAN, NAN), "")
    std = sample_std(x)
    if n < CONFIDENCE_MIN_N:
        return Stats(n, mean, std, (NAN, NAN), "")
    if std == 0:
        return Stats(n, mean, 0.0, (mean, mean), ci)
    if ci == "bootstrap":  # means of resampled values: inside the values' range already
        return Stats(n, mean, std, bootstrap_mean(x, confidence), "bootstrap")
    low, high = t_interval(confidence, n - 1, mean, std / math.sqrt(n))
    interval, method = bounded(x, (low, high), bounds, confidence)
    return Stats(n, mean, std, interval, method)


def bounded(
    x: NDArray,
    interval: tuple[float, float],
    bounds: tuple[float | None, float | None],
    confidence: float = CONFIDENCE,
) -> tuple[tuple[float, float], str]:
    """The t ``interval`` of the mean of ``x``, kept inside ``bounds`` (lo, hi; None: open).
    Inside already: as it is ("t"). Leaving them while every value lies strictly inside: the t
    interval on the scale that maps the range onto the real line (log for one bound, logit for
    two), mapped back. Values on a bound (an accuracy of exactly 1): clipped at the bound."""
    import numpy as np

    lo, hi = bounds
    low, high = interval
    if (lo is None or low >= lo) and (hi is None or high <= hi):
        return (low, high), "t"
    if (lo is None or x.min() > lo) and (hi is None or x.max() < hi):
        forward, back, scale = _unbounded_scale(lo, hi)
        y = forward(x)
        spread = sample_std(y)
        if spread > 0 and np.all(np.isfinite(y)):
            ends = t_interval(confidence, len(y) - 1, float(y.mean()), spread / math.sqrt(len(y)))
            mapped = sorted(float(back(e)) for e in ends)
            return (mapped[0], mapped[1]), f"t, {scale} scale"
    clipped = (low if lo is None else max(low, lo), high if hi is None else min(high, hi))
    return clipped, "t, clipped"


def _unbounded_scale(lo: float | None, hi: float | None) -> tuple[Any, Any, str]:
    """(forward, back, name): a map from the open range (lo, hi) onto the real line."""
    import numpy as np

    if lo is not None and hi is not None:
        width = hi - lo
        return (
            lambda v: np.log((v - lo) / (hi - v)),
            lambda y: lo + width / (1 + np.exp(-y)),
            "logit",
        )
    if lo is not None:
        return (lambda v: np.log(v - lo), lambda y: lo + np.exp(y), "log")
    assert hi is not None  # only called for a range with a bound
    return (lambda v: np.log(hi - v), lambda y: hi - np.exp(y), "log")


def t_interval(confidence: float, df: int, loc: float, scale: float) -> tuple[float, float]:
    """scipy.stats.t.interval(confidence, df, loc, scale), from the quantile function alone:
    scipy.special imports in a third of the time scipy.stats takes (0.3 s against 0.8 s), and
    every sweep's table needs this interval."""
    from scipy.special import stdtrit

    tails = ((1 - confidence) / 2, (1 + confidence) / 2)
    low, high = (float(stdtrit(df, q)) * scale + loc for q in tails)
    return low, high


# Values equal in exact arithmetic but reached by different sums (0.1 + 0.2 and 0.3) differ by a
# few ulps (2.2e-16 of their size each), and numpy's mean adds about log2(n) ulps more: such a
# "constant" has a std near 1e-17 and a t statistic or d near 1e14. 1e-12 of the values' size is
# thousands of ulps above that, and five orders of magnitude below the resolution of a metric
# trained in float32 (1.2e-7), so no seed-to-seed spread is mistaken for rounding.
ROUNDING = 1e-12


def sample_std(values: ArrayLike, *originals: ArrayLike) -> float:
    """The sample standard deviation (ddof=1) of ``values``, or 0.0 when it is within rounding of
    zero: at most ROUNDING times the largest |value| of ``originals`` (default ``values``; for
    paired differences, the two samples they are differences of, whose rounding they carry).
    Every test and effect size here reads spread through this, so that "no spread, no test" holds
    alike for exact and rounded constants, paired and Welch. nan with fewer than two values."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return NAN
    std = float(x.std(ddof=1))
    size = max(float(np.max(np.abs(np.asarray(o, dtype=float)))) for o in originals or (x,))
    return 0.0 if std <= ROUNDING * size else std


def paired(x: ArrayLike, y: ArrayLike, confidence: float = CONFIDENCE) -> Difference:
    """mean(x - y) with the paired t-test's CI and p-value; ``x[i]`` and ``y[i]`` are one pair
    (at least two pairs)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = a - b
    if sample_std(d, a, b) == 0:  # t is undefined: every pair differs by the same amount
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
    if sample_std(a) == 0 and sample_std(b) == 0:
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
    if boot is None or math.isnan(result.p):  # no spread: the exact interval, as the t-test's
        return result
    return replace(result, ci=boot)


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
    ci: tuple[float, float] = (NAN, NAN)  # CONFIDENCE interval of the true d (``d_interval``)


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
    chance = prob_improvement(x, y, higher_is_better, is_paired)
    interval = d_interval(d, len(x), None if is_paired else len(y))
    return Effect(change, d, chance, is_paired, interval)


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
    return float(d.mean()), sample_std(d, a, b) / math.sqrt(len(d)), len(d) - 1.0


def _welch_se(a: NDArray, b: NDArray) -> tuple[float, float, float]:
    """Difference of means, its standard error and Welch-Satterthwaite degrees of freedom."""
    va, vb = sample_std(a) ** 2 / len(a), sample_std(b) ** 2 / len(b)
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
    var_a, var_b = sample_std(a) ** 2, sample_std(b) ** 2
    pooled = ((len(a) - 1) * var_a + (len(b) - 1) * var_b) / (len(a) + len(b) - 2)
    if pooled == 0:
        return NAN
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


def cohens_dz(x: ArrayLike, y: ArrayLike) -> float:
    """mean(x - y) / std(x - y): the paired effect size (what the paired t-test's power depends
    on). nan with fewer than two pairs or a constant difference."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = a - b
    spread = sample_std(d, a, b) if len(d) >= 2 else NAN
    if math.isnan(spread) or spread == 0:
        return NAN
    return float(d.mean()) / spread


def d_interval(
    d: float, n: int, n_baseline: int | None = None, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The ``confidence`` interval of a true standardized effect, from its estimate ``d``:
    d_z over ``n`` pairs (``n_baseline`` None), or Cohen's d of samples of ``n`` and
    ``n_baseline`` values (pooled variance, df n + n_baseline - 2, as ``power`` assumes). The
    t statistic d * sqrt(n) (paired) or d * sqrt(n m / (n + m)) follows a noncentral t whose
    noncentrality is the true effect times the same factor; the interval holds the
    noncentralities under which the observed t is not in either tail (Cumming & Finch 2001).
    nan for an undefined d or fewer than two values a side."""
    paired = n_baseline is None
    smallest = n if paired else min(n, n_baseline)
    if math.isnan(d) or smallest < 2:
        return (NAN, NAN)
    df = n - 1 if paired else n + n_baseline - 2
    scale = math.sqrt(n if paired else n * n_baseline / (n + n_baseline))
    tail = (1 - confidence) / 2
    low, high = (_noncentrality(d * scale, df, q) / scale for q in (1 - tail, tail))
    return low, high


def _noncentrality(t: float, df: int, q: float) -> float:
    """The noncentrality under which the t statistic falls at or below ``t`` with probability
    ``q``."""
    from scipy.optimize import brentq
    from scipy.special import nctdtr

    def excess(nc: float) -> float:
        return float(nctdtr(df, nc, t)) - q

    # P(T <= t) falls as the noncentrality grows: step out from t until the root is bracketed.
    step = 1.0 + abs(t)
    low, high = t - step, t + step
    while excess(low) < 0:
        low, step = low - step, 2 * step
    while excess(high) > 0:
        high, step = high + step, 2 * step
    return float(brentq(excess, low, high, xtol=1e-12, rtol=1e-12))


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
    from scipy.special import stdtrit

    df = n - 1 if paired else 2 * n - 2
    nc = effect * math.sqrt(n if paired else n / 2)
    critical = -float(stdtrit(df, alpha / 2))
    # T > c, plus T < -c written as T > c under -nc (the same by symmetry).
    return _above(critical, df, nc) + _above(critical, df, -nc)


def _above(t: float, df: int, nc: float) -> float:
    """P(T > t) under noncentrality ``nc``, as 1 - scipy.special's cdf: 20 times faster than
    scipy.stats' nct, and seeds_range evaluates power dozens of times per cell. Far in a tail
    that cdf can be nan; scipy.stats' sf has the answer there."""
    from scipy.special import nctdtr

    below = float(nctdtr(df, nc, t))
    if math.isnan(below):
        from scipy import stats

        return float(stats.nct.sf(t, df, nc))
    return 1.0 - below


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


@dataclass(frozen=True)
class SeedsRange:
    """Seeds per group that show an effect with POWER: for the effect as estimated, and the range
    its confidence interval implies. ``observed`` alone is post-hoc power (Hoenig & Heisey 2001):
    the estimate is no truer than the effect it comes from. None: more than MAX_SEEDS, or no
    effect to power for."""

    observed: int | None  # the estimate taken as the true effect
    low: int | None  # at the interval's end farthest from zero: the fewest seeds
    high: int | None  # at the end nearest zero: the most; None when unbounded
    unbounded: bool  # the interval includes zero: no finite number is sure to be enough
    estimated: bool = True  # False: no interval of the effect (too few values, no spread)


def seeds_range(
    effect: float,
    interval: tuple[float, float],
    alpha: float = 0.05,
    paired: bool = True,
    target: float = POWER,
) -> SeedsRange:
    """``seeds_needed`` for ``effect`` and for the ends of its ``interval`` (``d_interval``).
    Power grows with |effect|, so when the true effect is inside the interval its seeds are
    inside [low, high]: the range covers them at least as often as the interval covers the
    effect, and ``low`` alone is a one-sided bound (e.g. 97.5% for a 95% interval)."""
    if any(math.isnan(end) for end in interval) or math.isnan(effect):
        return SeedsRange(None, None, None, unbounded=True, estimated=False)
    far, near = sorted((abs(end) for end in interval), reverse=True)
    unbounded = interval[0] <= 0 <= interval[1]

    def needed(size: float) -> int | None:
        return seeds_needed(size, alpha, paired, target)

    high = None if unbounded else needed(near)
    return SeedsRange(needed(abs(effect)), needed(far), high, unbounded)


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
    if sample_std(x) == 0:
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
    if sample_std(a) == 0 and sample_std(b) == 0:
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
