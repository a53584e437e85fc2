"""Statistics over seeds, as pure functions: arrays of numbers in, numbers out.

Nothing here knows about runs, groups or files. ``describe`` summarises one group's values (n,
mean, sample std, Student-t confidence interval for the mean); ``difference`` compares a group
with a baseline: a paired t-test over the seeds both share when there are two or more (the same
seed means the same initial weights and data order, so pairing removes that variance), Welch's
t-test otherwise. Degenerate inputs (n = 1, zero spread) give nan or exact intervals, never a
warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
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


def describe(values: ArrayLike, confidence: float = CONFIDENCE) -> Stats:
    """n, mean, sample std and the Student-t ``confidence`` interval of the mean of ``values``
    (at least one). With n = 1 std and CI are nan; with zero spread the CI is the mean itself."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return Stats(n, mean, NAN, (NAN, NAN))
    std = float(x.std(ddof=1))
    if std == 0:
        return Stats(n, mean, 0.0, (mean, mean))
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=stats.sem(x))
    return Stats(n, mean, std, (float(low), float(high)))


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
) -> Difference:
    """``group`` minus ``baseline``, each a sequence of (seed, value) pairs: paired over the
    shared seeds when two or more are shared (each seed once per side), Welch otherwise, and no
    test (nan CI and p) when either side has a single value."""
    shared = shared_seeds([s for s, _ in group], [s for s, _ in baseline])
    if len(shared) >= 2:
        a, b = dict(group), dict(baseline)
        return paired([a[s] for s in shared], [b[s] for s in shared], confidence)
    x, y = _values(group), _values(baseline)
    if len(x) >= 2 and len(y) >= 2:
        return welch(x, y, confidence)
    return Difference(float(x.mean() - y.mean()), (NAN, NAN), NAN, "", len(x))


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
