"""An experiment's claim answered from its structured expectations (experiment.expect): each
test on literal per-seed values, the one-line answer (supported, partly, not shown), and bad
expectations refused in one line before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.analysis.comparison import Cell, Comparison, Group, Row
from regbench.analysis.expectations import answer
from regbench.analysis.stats import describe
from regbench.analysis.tables import claim_lines
from regbench.core.config import Expectation, ExperimentConfig, build_config
from regbench.core.metrics import accuracy, loss

ACC = accuracy("test_acc", "accuracy on the test split", "test")
LOSS = loss("test_loss", "loss on the test split", "test")
SEEDS = (1, 2, 3, 4, 5)


def row(key: str, value: float, acc: list[float], base: bool = False) -> Row:
    """A group ``key=value`` whose seeds 1..5 reached ``acc`` (and loss = 1 - acc)."""
    cells = {
        "test_acc": Cell(list(zip(SEEDS, acc, strict=True)), describe(acc)),
        "test_loss": Cell(list(zip(SEEDS, [1 - a for a in acc], strict=True)), describe(acc)),
    }
    return Row(Group({key: value}, [], f"{key}={value:g}"), cells, is_baseline=base)


def comparison(rows: list[Row], *expect: dict, margin: float | None = None) -> Comparison:
    experiment = ExperimentConfig(
        name="e",
        claim="a claim",
        metrics=("test_acc", "test_loss"),
        baseline=None,
        at="final",
        margin=margin,
        within=None,
        mc_masks=None,
        expect=tuple(build_config(Expectation, e, "experiment.expect.") for e in expect) or None,
    )
    base = next((r for r in rows if r.is_baseline), None)
    return Comparison(
        ["test_acc", "test_loss"],
        "final",
        ["dropout"],
        rows,
        base,
        experiment=experiment,
        specs={"test_acc": ACC, "test_loss": LOSS},
    )


# Figure 9's shape: best in the middle, worse at both ends; seeds spread by ±0.002.
SPREAD = [-0.002, -0.001, 0.0, 0.001, 0.002]


def arm(p: float, mean: float, base: bool = False) -> Row:
    """Seeds spread differently in each arm (rotated by p), as real seeds are: the paired
    differences then have a spread, and a test."""
    turn = round(p * 10) % len(SPREAD)
    spread = SPREAD[turn:] + SPREAD[:turn]
    return row("dropout", p, [mean + s for s in spread], base)


def test_the_middle_beating_both_ends_is_supported() -> None:
    rows = [arm(0.0, 0.90, True), arm(0.4, 0.95), arm(0.8, 0.91)]
    found = answer(comparison(rows, {"metric": "test_acc", "test": "middle_beats_ends"}))
    assert found is not None and found.verdict == "supported"
    assert "dropout=0.4 beats both" in found.findings[0].text
    assert found.line.startswith("Answer: supported: all 1 expectation(s) shown")


def test_a_middle_that_ties_an_end_is_not_shown_and_says_why() -> None:
    rows = [arm(0.0, 0.90, True), arm(0.4, 0.95), arm(0.8, 0.95)]
    found = answer(comparison(rows, {"metric": "test_acc", "test": "middle_beats_ends"}))
    assert found is not None and found.verdict == "not shown"
    assert "vs dropout=0.8" in found.line and "alpha 0.05 per test" in found.line


def test_a_difference_without_spread_says_so() -> None:
    """Every seed 0.05 apart: the paired t-test has no p, and the answer says why."""
    same = [arm(0.0, 0.90, True), row("dropout", 0.4, [0.95 + s for s in SPREAD])]
    same[0] = row("dropout", 0.0, [0.90 + s for s in SPREAD], base=True)
    found = answer(comparison(same, {"metric": "test_acc", "test": "higher", "arm": "dropout=0.4"}))
    assert found.verdict == "not shown" and "the differences have no spread" in found.line


def test_the_middle_is_held_to_alpha_over_the_number_of_middle_groups() -> None:
    """Two middle candidates: each pair test at 0.025. With three seeds a 0.01 gain over
    spread 0.005 gives p about 0.04: shown at 0.05, not at 0.025."""
    spread = [-0.005, 0.0, 0.005]
    rows = [
        Row(
            Group({"dropout": p}, [], f"dropout={p:g}"),
            {
                "test_acc": Cell(list(zip((1, 2, 3), vals, strict=True)), describe(vals)),
                "test_loss": Cell([(s, 0.1) for s in (1, 2, 3)], describe([0.1] * 3)),
            },
        )
        for p, vals in [
            (0.0, [0.90 + s for s in spread]),
            (0.3, [0.91 + s for s in spread[::-1]]),
            (0.5, [0.905 + s for s in spread]),
            (0.8, [0.90 + s for s in spread[::-1]]),
        ]
    ]
    found = answer(comparison(rows, {"metric": "test_acc", "test": "middle_beats_ends"}))
    assert found is not None and found.verdict == "not shown"
    assert "alpha 0.025 per test" in found.line


def test_a_lower_is_better_metric_beats_downwards() -> None:
    rows = [arm(0.0, 0.90, True), arm(0.4, 0.95), arm(0.8, 0.91)]
    found = answer(comparison(rows, {"metric": "test_loss", "test": "middle_beats_ends"}))
    assert found is not None and found.verdict == "supported"  # loss = 1 - acc: lowest at 0.4


def test_increasing_needs_every_adjacent_step_shown() -> None:
    rising = [arm(0.0, 0.90, True), arm(0.4, 0.92), arm(0.8, 0.94)]
    assert answer(comparison(rising, {"metric": "test_acc", "test": "increasing"})).verdict == (
        "supported"
    )
    flat_end = [arm(0.0, 0.90, True), arm(0.4, 0.92), arm(0.8, 0.92)]
    found = answer(comparison(flat_end, {"metric": "test_acc", "test": "increasing"}))
    assert found.verdict == "not shown"
    assert "dropout=0.8 vs dropout=0.4" in found.line


def test_pairs_against_the_baseline_and_against_another_arm_give_partly() -> None:
    rows = [arm(0.0, 0.90, True), arm(0.4, 0.95), arm(0.8, 0.90)]
    found = answer(
        comparison(
            rows,
            {"metric": "test_acc", "test": "higher", "arm": "dropout=0.4"},
            {"metric": "test_acc", "test": "higher", "arm": "dropout=0.8"},
            {"metric": "test_loss", "test": "lower", "arm": "dropout=0.4", "than": "dropout=0.8"},
        )
    )
    assert found is not None
    assert [f.shown for f in found.findings] == [True, False, True]
    assert found.verdict == "partly"
    assert found.line.startswith("Answer: partly: 2 of 3 expectations shown; not shown: ")
    assert "test_acc of dropout=0.8 higher than dropout=0" in found.line


def test_a_difference_of_the_wrong_sign_is_not_shown() -> None:
    rows = [arm(0.0, 0.95, True), arm(0.4, 0.90)]
    found = answer(comparison(rows, {"metric": "test_acc", "test": "higher", "arm": "dropout=0.4"}))
    assert found.verdict == "not shown" and "Δ = -0.05" in found.line


def test_equal_is_tost_within_the_margin() -> None:
    rows = [arm(0.0, 0.950, True), arm(0.4, 0.951)]
    within = comparison(
        rows, {"metric": "test_acc", "test": "equal", "arm": "dropout=0.4"}, margin=0.01
    )
    assert answer(within).verdict == "supported"
    tight = comparison(
        rows, {"metric": "test_acc", "test": "equal", "arm": "dropout=0.4", "margin": 0.001}
    )
    assert answer(tight).verdict == "not shown"  # the 0.001 difference is the margin itself


def test_an_arm_the_runs_lack_is_not_shown_and_named() -> None:
    rows = [arm(0.0, 0.90, True), arm(0.4, 0.95)]
    found = answer(comparison(rows, {"metric": "test_acc", "test": "higher", "arm": "dropout=0.2"}))
    assert found.verdict == "not shown" and "'dropout=0.2' matches 0 groups" in found.line
    shape = answer(comparison(rows, {"metric": "test_acc", "test": "middle_beats_ends"}))
    assert "needs 3 groups, the runs have 2" in shape.line


def test_the_answer_is_the_line_under_the_claim() -> None:
    rows = [arm(0.0, 0.90, True), arm(0.4, 0.95), arm(0.8, 0.91)]
    lines = claim_lines(comparison(rows, {"metric": "test_acc", "test": "middle_beats_ends"}))
    assert lines[0] == "Experiment e: a claim"
    assert lines[1].startswith("Answer: supported")
    assert claim_lines(comparison(rows))[1].startswith("Compared:")  # no expectations: no answer


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("experiment.expect=[{metric: test_loss, test: higher}]", "test=higher needs arm="),
        (
            "experiment.expect=[{metric: gap, test: lower, arm: 'dropout=0.5'}]",
            "experiment.expect: metric gap is not compared",
        ),
        (
            "experiment.expect=[{metric: test_loss, test: equal, arm: 'dropout=0.5'}]",
            "test=equal on test_loss needs a margin",
        ),
        (
            "experiment.expect=[{metric: test_loss, test: sideways, arm: 'dropout=0.5'}]",
            "experiment.expect[0].test='sideways' is not allowed",
        ),
        (
            "experiment.expect=[{metric: test_loss, test: lower, arm: 'colour=red'}]",
            "the grid's groups have no key colour",
        ),
        (
            "experiment.expect=[{metric: test_loss, test: increasing, arm: 'dropout=0'}]",
            "arm/than are for higher, lower and equal",
        ),
    ],
)
def test_a_bad_expectation_is_one_line_before_anything_trains(
    cli, tmp_path: Path, override: str, message: str
) -> None:
    result = cli(
        "sweep", "+experiment=dropout_overfit", override, "seed=1", "dropout=0,0.5", "--dry-run"
    )
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_an_old_experiment_sweep_grown_today_is_read_with_todays_block() -> None:
    """Jobs written before experiment.expect existed (read with its legacy null) and jobs of
    today's yaml ask one question: today's block answers it; another claim is refused."""
    from regbench.analysis.experiments import experiment_of
    from regbench.analysis.runs import Run
    from regbench.core.config import flatten
    from regbench.core.errors import UsageError
    from regbench.core.rundir import Status

    block = {"name": "e", "claim": "c", "metrics": ["test_acc"], "baseline": None,
             "at": "final", "margin": None, "within": None, "mc_masks": None}  # fmt: skip
    today = {**block, "expect": [{"metric": "test_acc", "test": "higher", "arm": "dropout=0.5"}]}

    def run(experiment: dict) -> Run:
        return Run(Path("."), flatten({"experiment": experiment}), Status.COMPLETED, [])

    found = experiment_of([run({**block, "expect": None}), run(today)])
    assert found is not None and found.expect and found.expect[0].arm == "dropout=0.5"
    with pytest.raises(UsageError, match="2 different experiment blocks"):
        experiment_of([run({**block, "claim": "other", "expect": None}), run(today)])
