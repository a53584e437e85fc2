"""Seeds needed with its uncertainty (issue 29): the interval of the standardized effect from the
noncentral t, the range of seeds it implies, how often both cover the truth (simulated), and the
words a comparison of five seeds ends in."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sp

from regbench.analysis import report, stats, tables
from regbench.analysis.comparison import compare
from regbench.core.rundir import RunDir, Status, Summary
from tests.test_stats import integrated_power


def integrated_cdf(t: float, df: int, nc: float) -> float:
    """P(T <= t) for T = (Z + nc) / sqrt(V / df), V ~ chi2(df), without the noncentral t:
    the normal probability P(Z <= t sqrt(V / df) - nc) averaged over V's density."""

    def given(v: float) -> float:
        return sp.norm.cdf(t * math.sqrt(v / df) - nc) * sp.chi2.pdf(v, df)

    low, high = sp.chi2.ppf(1e-13, df), sp.chi2.isf(1e-13, df)
    return integrate.quad(given, low, high, points=[df], limit=400)[0]


# ----------------------------------------------------------------------------- the interval of d
@pytest.mark.parametrize(("d", "n", "n_baseline"), [(0.8, 5, None), (-1.5, 8, None), (1.0, 5, 4)])
def test_d_interval_ends_put_the_observed_t_in_each_tail(
    d: float, n: int, n_baseline: int | None
) -> None:
    # At the lower end the observed t is the 97.5% quantile, at the upper end the 2.5% one.
    low, high = stats.d_interval(d, n, n_baseline)
    df = n - 1 if n_baseline is None else n + n_baseline - 2
    scale = math.sqrt(n if n_baseline is None else n * n_baseline / (n + n_baseline))
    assert integrated_cdf(d * scale, df, low * scale) == pytest.approx(0.975, abs=1e-7)
    assert integrated_cdf(d * scale, df, high * scale) == pytest.approx(0.025, abs=1e-7)
    assert low < d < high


def test_d_interval_includes_zero_exactly_when_the_paired_test_does_not_reject() -> None:
    # Both invert the same t statistic: under noncentrality 0 it is the central t of the test.
    base = [0.50, 0.52, 0.47, 0.55, 0.49]
    for group, p_below in (
        ([0.47, 0.52, 0.43, 0.53, 0.44], True),
        ([0.46, 0.53, 0.44, 0.49, 0.51], False),
    ):
        low, high = stats.d_interval(stats.cohens_dz(group, base), 5)
        assert bool(sp.ttest_rel(group, base).pvalue < 0.05) is p_below
        assert (low <= 0 <= high) is not p_below


def test_d_interval_without_a_defined_d() -> None:
    assert all(math.isnan(end) for end in stats.d_interval(float("nan"), 5))
    assert all(math.isnan(end) for end in stats.d_interval(1.0, 1))
    assert all(math.isnan(end) for end in stats.d_interval(1.0, 5, 1))


def test_effect_carries_the_interval_of_its_d() -> None:
    base = [(s, v) for s, v in enumerate([0.50, 0.52, 0.47, 0.55, 0.49])]
    group = [(s, v) for s, v in enumerate([0.47, 0.52, 0.43, 0.53, 0.44])]
    paired = stats.effect(group, base, higher_is_better=False)
    assert paired.ci == pytest.approx(stats.d_interval(paired.d, 5))
    unpaired = stats.effect([(s + 10, v) for s, v in group], base, higher_is_better=False)
    assert unpaired.ci == pytest.approx(stats.d_interval(unpaired.d, 5, 5))


# ----------------------------------------------------------------------------- the range of seeds
def test_seeds_range_takes_the_fewest_at_the_far_end_and_the_most_at_the_near_end() -> None:
    result = stats.seeds_range(0.8, (0.3, 1.5), alpha=0.05, paired=True)
    assert result.observed == stats.seeds_needed(0.8) == 15
    assert result.low == stats.seeds_needed(1.5) == 6
    assert result.high == stats.seeds_needed(0.3) == 90
    assert not result.unbounded and result.estimated
    # A lower effect is the same question with the sign turned.
    assert stats.seeds_range(-0.8, (-1.5, -0.3), alpha=0.05, paired=True) == result


def test_seeds_range_with_zero_in_the_interval_has_no_finite_top() -> None:
    result = stats.seeds_range(0.8, (-0.2, 1.5), alpha=0.05, paired=True)
    assert (result.observed, result.low, result.high) == (15, 6, None) and result.unbounded
    # The far end is the end farthest from zero, whichever side it is on.
    assert stats.seeds_range(-0.3, (-1.5, 0.4), alpha=0.05).low == 6


def test_seeds_range_without_an_interval_is_no_estimate() -> None:
    result = stats.seeds_range(float("nan"), (float("nan"), float("nan")))
    assert not result.estimated and result.low is None and result.high is None


def test_power_of_a_large_effect_is_a_number() -> None:
    # scipy's nct.cdf(-c, df, nc) is nan for a large effect; power read nan there, and
    # seeds_needed stopped at n = 2 for d_z = 8 at alpha 0.05/8 (power there: 9%).
    assert stats.power(8.0, 5, 0.05 / 8) == pytest.approx(integrated_power(8.0, 5, 0.05 / 8, True))
    assert stats.seeds_needed(8.0, alpha=0.05 / 8) == 4
    assert (
        integrated_power(8.0, 3, 0.05 / 8, True) < 0.8 <= integrated_power(8.0, 4, 0.05 / 8, True)
    )


# ----------------------------------------------------------------------------- coverage, simulated
EXPERIMENTS = 2000


def binomial_slack(share: float, trials: int) -> float:
    """Three binomial standard deviations of an observed share: a correct coverage falls
    outside it in about 0.3% of fixed-seed draws, so the test is not flaky by design."""
    return 3 * math.sqrt(share * (1 - share) / trials)


def test_interval_of_d_covers_the_true_d_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(29)
    true_d, n = 1.0, 6
    # Paired: differences ~ N(d_z, 1); unpaired: N(d, 1) against N(0, 1), equal variances as the
    # pooled d assumes.
    diffs = rng.normal(true_d, 1.0, (EXPERIMENTS, n))
    paired = [stats.d_interval(float(x.mean() / x.std(ddof=1)), n) for x in diffs]
    a, b = rng.normal(true_d, 1.0, (EXPERIMENTS, n)), rng.normal(0.0, 1.0, (EXPERIMENTS, n))
    unpaired = [stats.d_interval(stats.cohens_d(x, y), n, n) for x, y in zip(a, b, strict=True)]
    slack = binomial_slack(0.95, EXPERIMENTS)  # 0.0146 for 2000 experiments
    for intervals in (paired, unpaired):
        covered = np.mean([low <= true_d <= high for low, high in intervals])
        assert abs(covered - 0.95) <= slack, covered


def test_seeds_range_covers_the_seeds_the_true_effect_needs_at_least_as_often() -> None:
    rng = np.random.default_rng(2001)
    true_d, n, experiments = 1.0, 6, EXPERIMENTS
    true_seeds = stats.seeds_needed(true_d)
    diffs = rng.normal(true_d, 1.0, (experiments, n))
    both = low_only = 0
    for x in diffs:
        d = float(x.mean() / x.std(ddof=1))
        interval = stats.d_interval(d, n)
        result = stats.seeds_range(d, interval)
        top = math.inf if result.high is None else result.high
        in_range = result.low <= true_seeds <= top
        # Power grows with |d|: the true d inside its interval puts its seeds inside the range.
        assert in_range or not interval[0] <= true_d <= interval[1]
        both += in_range
        low_only += result.low <= true_seeds
    # Two-sided: at least the interval's 95%. The low end alone is a one-sided bound: it fails
    # only when the true d is above the interval's upper end, 2.5% of the time, so 97.5%.
    assert both / experiments >= 0.95 - binomial_slack(0.95, experiments)
    assert low_only / experiments >= 0.975 - binomial_slack(0.975, experiments)


# ----------------------------------------------------------------------------- the verdict
BASE = [0.50, 0.52, 0.47, 0.55, 0.49]  # test_loss of seeds 1-5
CLOSE = [0.47, 0.52, 0.43, 0.53, 0.44]  # paired p = 0.031: shown alone, not after Holm over 2
FAR = [0.46, 0.53, 0.44, 0.49, 0.51]  # paired p = 0.26: d_z's interval includes 0


@pytest.fixture(scope="module")
def base_config() -> dict[str, Any]:
    from regbench.compose.hydra import load_settings

    return load_settings(["model.hidden=[16]"]).to_dict()


def write_runs(root: Path, config: dict[str, Any], dropout: float, losses: list[float]) -> None:
    """One finished run per seed whose only evaluation logs ``losses[seed - 1]``."""
    for seed, loss in enumerate(losses, start=1):
        run_dir = RunDir(root / f"dropout={dropout}-seed={seed}")
        run_dir.path.mkdir(parents=True)
        run_dir.write_config({**config, "dropout": dropout, "seed": seed}, [])
        run_dir.append_metrics({"epoch": 1, "test_loss": loss, "seconds": 0.1})
        summary = Summary(Status("completed"), name=run_dir.path.name, model="mlp", seed=seed)
        run_dir.write_summary(summary)


def test_five_seeds_verdict_says_how_uncertain_the_seeds_needed_are(
    tmp_path: Path, base_config: dict[str, Any]
) -> None:
    for dropout, losses in ((0.0, BASE), (0.2, CLOSE), (0.5, FAR)):
        write_runs(tmp_path, base_config, dropout, losses)
    comparison = compare([tmp_path], metrics=["test_loss"])
    close, far = (v.split(": ", 1)[1] for v in tables.verdicts(comparison))
    # Holm over 2 comparisons: seeds needed at alpha 0.025, for d_z -1.46 [-2.7, -0.11] (CLOSE)
    # and d_z -0.59 [-1.5, 0.4] (FAR).
    assert close.endswith(
        "not shown with 5 paired seeds; about 8 needed if the true effect is as observed; "
        "4 to 731 by these seeds [95% CI of d_z -2.7, -0.11]"
    )
    assert far.endswith(
        "not shown with 5 paired seeds; about 30 needed if the true effect is as observed; "
        "at least 7 by these seeds [95% CI of d_z -1.5, 0.4], possibly no finite number"
    )
    # The numbers, from the integrated power at each end of the interval.
    for d, n in ((1.4557, 8), (2.7300, 4), (0.11425, 731), (0.58977, 30), (1.5221, 7)):
        assert integrated_power(d, n - 1, 0.025, True) < 0.8 <= integrated_power(d, n, 0.025, True)
    rows = {row.group.config["dropout"]: row for row in comparison.rows}
    assert tables.cells(comparison, rows[0.2])[-3] == "8 (4-731)"
    assert tables.cells(comparison, rows[0.5])[-3] == "30 (7-∞)"
    page = report.render(tmp_path, comparison, [])
    assert "<td>30 (7-∞)</td>" in page and far in page
    by_group = {r["group"]: r for r in tables.csv_rows(comparison)}
    columns = ("seeds_needed", "seeds_needed_low", "seeds_needed_high", "seeds_needed_note")
    seen = {g: tuple(r[f"test_loss_{c}"] for c in columns) for g, r in by_group.items()}
    assert seen == {
        "dropout=0": ("", "", "", ""),
        "dropout=0.2": (8, 4, 731, ""),
        "dropout=0.5": (30, 7, "", "no finite number"),
    }


def test_seeds_note_names_each_empty_case() -> None:
    from regbench.analysis.comparison import Cell

    diff = stats.Difference(-0.1, (-0.2, 0.0), 0.01, "paired", 5)
    shown = Cell([], None, diff, shown=True)
    untested = Cell([], None, stats.Difference(-0.1, (math.nan,) * 2, math.nan, "", 1))
    no_d = Cell([], None, diff, seeds_range=stats.seeds_range(math.nan, (math.nan, math.nan)))
    beyond = Cell([], None, diff, seeds_range=stats.SeedsRange(None, None, None, False))
    notes = [tables.seeds_note(c) for c in (shown, untested, no_d, beyond, Cell([], None))]
    assert notes == ["shown", "no estimate", "no estimate", "more than 10000", ""]
