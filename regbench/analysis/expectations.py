"""An experiment's claim, answered: its structured expectations (``experiment.expect``) tested on
a comparison's groups, and one line that says whether the claim is supported.

Each expectation is one test, shown or not:

- ``higher`` / ``lower``: one group's mean against another's (the baseline by default), the
  t-test the verdicts use (paired over shared seeds, else Welch), two-sided p < alpha and the
  difference of the stated sign;
- ``equal``: the same two groups' TOST within a margin, p < alpha;
- ``middle_beats_ends``: the groups ordered by a numeric key; some group strictly between the two
  ends beats each end (by the metric's direction), both differences shown. Which middle group is
  not named in advance, so each middle group's two tests are held to alpha / (number of middle
  groups) (Bonferroni over the candidates);
- ``increasing`` / ``decreasing``: the groups ordered by a numeric key, every adjacent difference
  of the stated sign and shown.

A claim is a conjunction ("p in the middle beats both ends", "each arm beats the one before"), and
a conjunction of tests each at level alpha is itself a level-alpha test of the whole (the
intersection-union principle), so no further correction is made for shape tests nor for the
expectations together: ``supported`` means every expectation was shown at alpha. ``partly`` and
``not shown`` describe, they do not test: a shown part of a claim is not the claim.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from regbench.analysis.comparison import Comparison, Row, rows_matching, show
from regbench.analysis.stats import difference, equivalence
from regbench.core.config import Expectation
from regbench.core.errors import UsageError
from regbench.figures.axes import is_numeric


@dataclass(frozen=True)
class Finding:
    """One expectation's result: shown or not, in words."""

    expectation: Expectation
    shown: bool
    text: str  # what was expected, and what the data said


@dataclass(frozen=True)
class Answer:
    verdict: str  # "supported" | "partly" | "not shown"
    findings: tuple[Finding, ...]

    @property
    def line(self) -> str:
        """The report's first line: the verdict, how many expectations were shown, and why."""
        shown = sum(f.shown for f in self.findings)
        total = len(self.findings)
        head = {
            "supported": f"supported: all {total} expectation(s) shown",
            "partly": f"partly: {shown} of {total} expectations shown",
            "not shown": f"not shown: none of {total} expectation(s) shown",
        }[self.verdict]
        missing = [f.text for f in self.findings if not f.shown]
        return f"Answer: {head}" + (f"; not shown: {'; '.join(missing)}" if missing else "")


def answer(comparison: Comparison) -> Answer | None:
    """The experiment's expectations tested on ``comparison``; None when it has none."""
    experiment = comparison.experiment
    if experiment is None or not experiment.expect:
        return None
    findings = tuple(_finding(comparison, e) for e in experiment.expect)
    shown = sum(f.shown for f in findings)
    verdict = "supported" if shown == len(findings) else "partly" if shown else "not shown"
    return Answer(verdict, findings)


def _finding(comparison: Comparison, expectation: Expectation) -> Finding:
    if expectation.metric not in comparison.metrics:
        return Finding(expectation, False, f"{expectation.metric} is not compared here")
    if expectation.pair:
        return _pair_finding(comparison, expectation)
    return _shape_finding(comparison, expectation)


# ----------------------------------------------------------------------------- pairs
def _pair_finding(comparison: Comparison, expectation: Expectation) -> Finding:
    metric = expectation.metric
    arm = _one_row(comparison, expectation.arm or "")
    other = _other_row(comparison, expectation)
    if isinstance(arm, str) or isinstance(other, str):
        return Finding(expectation, False, arm if isinstance(arm, str) else str(other))
    relation = "equal to" if expectation.test == "equal" else f"{expectation.test} than"
    what = f"{metric} of {arm.group.label} {relation} {other.group.label}"
    if expectation.test == "equal":
        experiment = comparison.experiment
        margin = expectation.margin or comparison.margin or (experiment and experiment.margin)
        assert margin  # ExperimentConfig refuses equal without a margin
        return _equal_finding(comparison, expectation, arm, other, margin, what)
    shown, why = _beats(comparison, metric, arm, other, expectation.test, comparison.alpha)
    return Finding(expectation, shown, f"{what} ({why})")


def _other_row(comparison: Comparison, expectation: Expectation) -> Row | str:
    if expectation.than is not None:
        return _one_row(comparison, expectation.than)
    if comparison.baseline is None:
        return f"{expectation.arm} has no baseline to be held against (give than:)"
    return comparison.baseline


def _equal_finding(
    comparison: Comparison,
    expectation: Expectation,
    arm: Row,
    other: Row,
    margin: float,
    what: str,
) -> Finding:
    metric = expectation.metric
    result = equivalence(
        arm.cells[metric].values, other.cells[metric].values, margin, comparison.alpha
    )
    if math.isnan(result.p):
        why = _no_test(result.test)
        return Finding(expectation, False, f"{what} within ±{margin:g} (no TOST: {why})")
    shown = result.p < comparison.alpha
    return Finding(
        expectation, shown, f"{what} within ±{margin:g} (TOST p = {result.p:.2g}, {result.n} seeds)"
    )


def _beats(
    comparison: Comparison, metric: str, row: Row, other: Row, test: str, alpha: float
) -> tuple[bool, str]:
    """Whether ``row``'s mean is ``test`` (higher/lower) than ``other``'s with the difference
    shown at ``alpha``; and the numbers, in words."""
    diff = difference(row.cells[metric].values, other.cells[metric].values, ci=comparison.ci)
    if math.isnan(diff.p):
        return False, f"Δ = {diff.value:.3g}, no test: {_no_test(diff.test)}"
    right_sign = diff.value > 0 if test == "higher" else diff.value < 0
    shown = right_sign and diff.p < alpha
    return shown, f"Δ = {diff.value:+.3g}, p = {diff.p:.2g}, {diff.n} seeds"


def _no_test(test: str) -> str:
    """Why a t-test gave no p: too few values, or values without spread (every seed's
    difference the same, which a t-test cannot weigh)."""
    return "too few seeds" if not test else "the differences have no spread"


def _one_row(comparison: Comparison, spec: str) -> Row | str:
    """The one group matching ``spec``, or why there is none."""
    try:
        found = rows_matching(comparison.rows, spec, "experiment.expect")
    except UsageError as error:
        return str(error)
    if len(found) != 1:
        return f"'{spec}' matches {len(found)} groups"
    return found[0]


# ----------------------------------------------------------------------------- shapes
def _shape_finding(comparison: Comparison, expectation: Expectation) -> Finding:
    ordered = _ordered_rows(comparison, expectation)
    if isinstance(ordered, str):
        return Finding(expectation, False, ordered)
    along, rows = ordered
    labels = ", ".join(show(row.group.config.get(along)) for row in rows)
    what = f"{expectation.metric} {expectation.test.replace('_', ' ')} along {along} ({labels})"
    if expectation.test == "middle_beats_ends":
        return _middle_finding(comparison, expectation, rows, what)
    return _monotone_finding(comparison, expectation, rows, what)


def _ordered_rows(comparison: Comparison, expectation: Expectation) -> tuple[str, list[Row]] | str:
    """The groups of a shape test in the order of their ``along`` value, or why there are none:
    ``where`` picks the groups; ``along`` (or the one numeric key varying among them) orders
    them, and must be the only key that varies among them."""
    rows = list(comparison.rows)
    if expectation.where:
        try:
            rows = rows_matching(rows, expectation.where, "experiment.expect where")
        except UsageError as error:
            return str(error)
    varying = [k for k in comparison.varying if len({_key(r, k) for r in rows}) > 1]
    along = expectation.along or (varying[0] if len(varying) == 1 else None)
    if along is None:
        return f"{expectation.test}: give along: (the groups vary in {', '.join(varying)})"
    others = [k for k in varying if k != along]
    if others:
        return f"{expectation.test} along {along}: the groups also vary in {', '.join(others)}"
    if rows and not is_numeric([r.group.config.get(along) for r in rows]):
        return f"{expectation.test} along {along}: not every group has a numeric {along}"
    least = 3 if expectation.test == "middle_beats_ends" else 2
    if len(rows) < least:
        return f"{expectation.test} along {along}: needs {least} groups, the runs have {len(rows)}"
    return along, sorted(rows, key=lambda r: float(r.group.config[along]))


def _key(row: Row, key: str) -> str:
    return show(row.group.config.get(key))


def _middle_finding(
    comparison: Comparison, expectation: Expectation, rows: Sequence[Row], what: str
) -> Finding:
    metric = comparison.spec(expectation.metric)
    if not metric.has_direction:
        return Finding(expectation, False, f"{what}: {metric.name} has no direction to beat by")
    better = "higher" if metric.direction == "max" else "lower"
    middle, ends = rows[1:-1], (rows[0], rows[-1])
    alpha = comparison.alpha / len(middle)  # the middle group is chosen by the data
    best_why = ""
    for row in sorted(middle, key=lambda r: _mean(r, metric.name), reverse=better == "higher"):
        results = [_beats(comparison, metric.name, row, end, better, alpha) for end in ends]
        pairs = zip(ends, results, strict=True)
        why = "; ".join(f"vs {end.group.label}: {text}" for end, (_, text) in pairs)
        if all(shown for shown, _ in results):
            return Finding(expectation, True, f"{what}: {row.group.label} beats both ({why})")
        best_why = best_why or f"best middle {row.group.label}: {why}"
    return Finding(expectation, False, f"{what} (alpha {alpha:.2g} per test; {best_why})")


def _monotone_finding(
    comparison: Comparison, expectation: Expectation, rows: Sequence[Row], what: str
) -> Finding:
    test = "higher" if expectation.test == "increasing" else "lower"
    steps = []
    for before, after in itertools.pairwise(rows):
        shown, text = _beats(comparison, expectation.metric, after, before, test, comparison.alpha)
        steps.append((shown, f"{after.group.label} vs {before.group.label}: {text}"))
    if all(shown for shown, _ in steps):
        return Finding(expectation, True, f"{what}: every step shown")
    missing = "; ".join(text for shown, text in steps if not shown)
    return Finding(expectation, False, f"{what} (steps not shown: {missing})")


def _mean(row: Row, metric: str) -> float:
    stats = row.cells[metric].stats
    return stats.mean if stats is not None else math.nan
