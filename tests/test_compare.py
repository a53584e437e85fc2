"""`regbench compare`: grouping over seeds, baselines and tables, checked against a direct
computation with numpy/scipy, on run folders written by hand (no training: fast)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regbench.analysis import runs
from regbench.analysis.comparison import compare
from regbench.core.errors import UsageError
from regbench.core.metrics import Metric
from regbench.core.rundir import RunDir, Status, Summary
from tests.test_stats import direct_paired, direct_stats, direct_welch

EPOCHS = 3


@pytest.fixture(scope="module")
def base_config() -> dict[str, Any]:
    from regbench.compose.hydra import load_settings

    return load_settings(["model.hidden=[16]"]).to_dict()


def make_run(
    root: Path,
    base: dict[str, Any],
    seed: int,
    status: str = "completed",
    effect: float = 0.0,
    **config: Any,
) -> Path:
    """A run folder with EPOCHS metrics rows whose values depend on the seed and ``effect``."""
    name = "-".join(f"{k}={v}" for k, v in sorted(config.items())) or "base"
    path = root / f"{name}-seed={seed}"
    path.mkdir(parents=True)
    run_dir = RunDir(path)
    run_dir.write_config({**base, **config, "seed": seed}, [])
    rng = np.random.default_rng(seed * 1000 + round(effect * 1000))
    for epoch in range(1, EPOCHS + 1):
        loss = 1.0 / epoch + effect + 0.05 * rng.standard_normal()
        run_dir.append_metrics(
            {
                "epoch": epoch,
                "train_loss": loss - 0.1,
                "val_loss": loss,  # selects (--at best) the epoch test_loss is lowest at
                "test_loss": loss,
                "test_acc": 0.9 - effect + 0.01 * rng.standard_normal(),
                "seconds": 0.1,
            }
        )
    run_dir.write_summary(Summary(Status(status), name=path.name, model="mlp", seed=0))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_best_reports_every_metric_at_the_epoch_one_metric_selects() -> None:
    """The selected epoch is one epoch per run: its loss's best (epoch 2), where acc is 0.6,
    not acc's own best (0.9 at epoch 3)."""
    rows = [{"epoch": 1, "loss": 0.5, "acc": 0.7}, {"epoch": 2, "loss": 0.3, "acc": 0.6}]
    rows.append({"epoch": 3, "loss": 0.4, "acc": 0.9})
    by_loss = Metric("loss", "", "min")
    assert runs.selected_row(rows, by_loss)["epoch"] == 2
    assert runs.value_at(rows, "acc", "best", select=by_loss) == 0.6
    assert runs.value_at(rows, "acc", "best", select=Metric("acc", "", "max")) == 0.9


def test_value_at_final_best_and_epoch() -> None:
    rows = [{"epoch": 1, "loss": 0.5, "acc": 0.7}, {"epoch": 2, "loss": 0.3, "acc": 0.9}]
    rows.append({"epoch": 3, "loss": 0.4, "acc": 0.8})
    loss, acc = Metric("loss", "", "min"), Metric("acc", "", "max")
    assert runs.value_at(rows, "loss", "final") == 0.4
    assert runs.value_at(rows, "loss", "best", select=loss) == 0.3
    assert runs.value_at(rows, "acc", "best", select=acc) == 0.9
    assert runs.value_at(rows, "acc", "epoch=1") == 0.7
    assert runs.value_at(rows, "acc", "epoch=9") is None
    with pytest.raises(UsageError, match="final, best or epoch=N"):
        runs.parse_at("last")


# ----------------------------------------------------------------------------- whole comparisons
@pytest.fixture
def grid(tmp_path: Path, base_config: dict[str, Any]) -> Path:
    """2 x 2 grid (dropout x weight_decay), seeds 1-3, plus a diverged run."""
    root = tmp_path / "runs"
    for dropout in (0.0, 0.5):
        for wd in (0.0, 1e-4):
            for seed in (1, 2, 3):
                effect = 0.1 * dropout - 100 * wd
                make_run(root, base_config, seed, effect=effect, dropout=dropout, weight_decay=wd)
    make_run(root, base_config, 4, status="diverged", dropout=0.5, weight_decay=1e-4)
    return root


def final_values(root: Path, metric: str) -> dict[tuple[float, float], dict[int, float]]:
    """group (dropout, weight_decay) -> seed -> final value, straight from the files."""
    import yaml

    groups: dict[tuple[float, float], dict[int, float]] = {}
    for config_file in root.rglob("config.yaml"):
        folder = config_file.parent
        if '"completed"' not in (folder / "summary.json").read_text():
            continue
        config = yaml.safe_load(config_file.read_text())
        rows = read_csv(folder / "metrics.csv")
        key = (config["dropout"], config["weight_decay"])
        groups.setdefault(key, {})[config["seed"]] = float(rows[-1][metric])
    return groups


def test_table_matches_a_direct_computation(cli, grid: Path, tmp_path: Path) -> None:
    result = cli("compare", str(grid), "--tex")
    assert result.exit_code == 0, result.stderr
    rows = read_csv(grid / "comparison.csv")
    assert len(rows) == 4 and {r["n"] for r in rows} == {"3"}
    for metric in ("test_loss", "test_acc"):
        values = final_values(grid, metric)
        base = values[(0.0, 0.0)]
        for row in rows:
            group = values[(float(row["dropout"]), float(row["weight_decay"]))]
            got = [float(row[f"{metric}_{s}"]) for s in ("mean", "std", "ci_low", "ci_high")]
            assert got == pytest.approx(direct_stats(list(group.values())), rel=1e-9)
            if row["baseline"] == "True":
                assert group is base
                continue
            seeds = sorted(group)
            expected = direct_paired([group[s] for s in seeds], [base[s] for s in seeds])
            columns = ("diff", "diff_ci_low", "diff_ci_high", "p")
            assert [float(row[f"{metric}_{c}"]) for c in columns] == pytest.approx(
                expected, rel=1e-9
            )
            assert row[f"{metric}_test"] == "paired"
    # Sorted by the main metric (test_loss, lower is better). With 3 seeds and noise 0.05 no
    # difference survives Holm's correction, so no row is claimed best (issue 15; before, the
    # top row always was) and a note says why.
    means = [float(r["test_loss_mean"]) for r in rows]
    assert means == sorted(means) and {r["best"] for r in rows} == {"False"}
    marked = [r for r in rows if r["not_counted"]]
    assert [(r["dropout"], r["not_counted"]) for r in marked] == [("0.5", "1 diverged")]
    markdown = (grid / "comparison.md").read_text()
    assert "| **" not in markdown and "paired (3 seeds)" in markdown and "1 diverged" in markdown
    assert "no group is shown to beat the baseline" in markdown + result.stderr
    assert "\\begin{tabular}" in (grid / "comparison.tex").read_text()
    assert "dropout" in result.stdout and "weight_decay" in result.stdout
    assert "lr" not in read_csv(grid / "comparison.csv")[0]  # only varying keys are columns
    for name in ("comparison_loss_curves.png", "comparison_metrics.png", "comparison_heatmap.png"):
        assert (grid / name).stat().st_size > 10_000, name


def test_welch_when_no_seeds_are_shared(tmp_path: Path, base_config: dict[str, Any]) -> None:
    root = tmp_path / "runs"
    for seed in (1, 2, 3):
        make_run(root, base_config, seed, dropout=0.0)
        make_run(root, base_config, seed + 10, effect=0.2, dropout=0.3)
    comparison = compare([root])
    row = next(r for r in comparison.rows if not r.is_baseline)
    values = final_values(root, "test_loss")
    expected = direct_welch(list(values[(0.3, 0.0)].values()), list(values[(0.0, 0.0)].values()))
    diff = row.cells["test_loss"].diff
    assert diff is not None and diff.test == "Welch"
    assert (diff.value, *diff.ci, diff.p) == pytest.approx(expected, rel=1e-9)


def test_at_best_and_epoch(tmp_path: Path, base_config: dict[str, Any]) -> None:
    root = tmp_path / "runs"
    for seed in (1, 2, 3):
        make_run(root, base_config, seed, dropout=0.0)
    for at, pick in (("best", min), ("epoch=2", lambda v: v[1])):
        comparison = compare([root], metrics=["test_loss"], at=at)
        per_run = [
            pick([float(r["test_loss"]) for r in read_csv(p / "metrics.csv")])
            for p in sorted(root.iterdir())
        ]
        assert comparison.rows[0].cells["test_loss"].stats.mean == pytest.approx(np.mean(per_run))


def test_baseline_choice(cli, tmp_path: Path, base_config: dict[str, Any]) -> None:
    root = tmp_path / "runs"
    for seed in (1, 2):
        for dropout, wd in ((0.0, 0.0), (0.2, 0.0), (0.0, 1e-4)):
            make_run(root, base_config, seed, effect=dropout, dropout=dropout, weight_decay=wd)
    default = compare([root])
    assert default.baseline is not None and default.baseline.group.label.startswith("dropout=0 ")
    chosen = compare([root], baseline="dropout=0 weight_decay=1e-4")
    assert chosen.baseline.group.config["weight_decay"] == 1e-4
    # n < 3 is warned about, in the table and on the terminal.
    assert any("fewer than 3" in note for note in chosen.notes)
    result = cli("compare", str(root), "--baseline", "dropout=0.2", "--no-plots")
    assert result.exit_code == 0 and "fewer than 3 completed seeds" in result.stderr
    ambiguous = cli("compare", str(root), "--baseline", "dropout=0")
    assert ambiguous.exit_code == 2 and "matches 2 groups" in ambiguous.stderr
    unknown = cli("compare", str(root), "--baseline", "dropuot=0")
    assert unknown.exit_code == 2 and "dropuot" in unknown.stderr


def test_over_pools_a_key_and_repeats_count_once(
    tmp_path: Path, base_config: dict[str, Any]
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for seed in (1, 2, 3):
        make_run(first, base_config, seed, lr=0.001)
        make_run(second, base_config, seed, lr=0.01)
    make_run(second / "copy", base_config, 1, lr=0.01)  # same config and seed as one in b
    merged = compare([first, second])
    assert [r.n for r in merged.rows] == [3, 3] and merged.varying == ["lr"]
    assert any("repeat another run" in note for note in merged.notes)
    pooled = compare([first, second], over=["lr"])
    assert [r.n for r in pooled.rows] == [6]
    with pytest.raises(UsageError, match="no run has this key"):
        compare([first], over=["nope"])


def test_user_errors(cli, tmp_path: Path, base_config: dict[str, Any]) -> None:
    missing = cli("compare", str(tmp_path / "nothing"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli("compare", str(tmp_path / "empty"))
    assert empty.exit_code == 2 and "no regbench runs" in empty.stderr
    make_run(tmp_path / "runs", base_config, 1)
    metric = cli("compare", str(tmp_path / "runs"), "--metric", "f1")
    assert metric.exit_code == 2 and "test_loss" in metric.stderr
    at = cli("compare", str(tmp_path / "runs"), "--at", "last")
    assert at.exit_code == 2 and "epoch=N" in at.stderr


def test_an_empty_comparison_is_an_error_that_writes_nothing(cli, grid: Path) -> None:
    assert cli("compare", str(grid), "--no-plots").exit_code == 0
    before = (grid / "comparison.md").read_text()
    result = cli("compare", str(grid), "--at", "epoch=99999", "--no-plots")
    assert result.exit_code == 2
    assert "no run has a value of test_loss at epoch=99999: nothing to compare" in result.stderr
    assert (grid / "comparison.md").read_text() == before


def test_runs_of_different_models_are_not_compared(
    cli, tmp_path: Path, base_config: dict[str, Any]
) -> None:
    make_run(tmp_path / "runs", base_config, 1)
    other = {**base_config, "model": {**base_config["model"], "name": "regression"}}
    make_run(tmp_path / "runs", other, 1, dropout=0.5)
    result = cli("compare", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "these runs train different models (mlp, regression)" in result.stderr


# ----------------------------------------------------------------------------- issue 15
def hand_holm(pvalues: list[float]) -> list[float]:
    """Holm's adjusted p, as its definition reads: the largest (m - j + 1) p_(j) over the
    p-values ranked at or before this one, capped at 1."""
    ranked = sorted(pvalues)
    m = len(ranked)
    return [min(1.0, max((m - j) * ranked[j] for j in range(m) if ranked[j] <= p)) for p in pvalues]


def grid_3x3(root: Path, base: dict[str, Any], effects: dict[tuple[float, float], float]) -> Path:
    """dropout x weight_decay, 3 x 3, seeds 1-5; ``effects`` moves test_loss of some groups."""
    cells = [(dropout, wd) for dropout in (0.0, 0.2, 0.5) for wd in (0.0, 1e-4, 1e-3)]
    for k, (dropout, wd) in enumerate(cells):
        effect = effects.get((dropout, wd), 0.002 * k)  # small, and a new noise draw each
        for seed in range(1, 6):
            make_run(root, base, seed, effect=effect, dropout=dropout, weight_decay=wd)
    return root


def test_3x3_grid_with_nothing_shown(cli, tmp_path: Path, base_config: dict[str, Any]) -> None:
    from tests.test_stats import integrated_power

    root = grid_3x3(tmp_path / "runs", base_config, {})
    result = cli("compare", str(root), "--no-plots", "--tex")
    assert result.exit_code == 0, result.stderr
    rows = read_csv(root / "comparison.csv")
    values = final_values(root, "test_loss")
    base = values[(0.0, 0.0)]
    others = [r for r in rows if r["baseline"] == "False"]
    assert len(rows) == 9 and len(others) == 8
    # Raw p kept, adjusted p next to it: Holm over the family of the 8 comparisons.
    raw = [float(r["test_loss_p"]) for r in others]
    assert [float(r["test_loss_p_holm"]) for r in others] == pytest.approx(hand_holm(raw))
    for row in others:
        group = values[(float(row["dropout"]), float(row["weight_decay"]))]
        x = np.array([group[s] for s in range(1, 6)])
        y = np.array([base[s] for s in range(1, 6)])
        d = x - y
        assert float(row["test_loss_rel_change_pct"]) == pytest.approx(
            100 * d.mean() / y.mean(), rel=1e-9
        )
        assert float(row["test_loss_effect_size"]) == pytest.approx(
            d.mean() / d.std(ddof=1), rel=1e-9
        )
        assert row["test_loss_effect_size_kind"] == "d_z"
        better = (np.sum(d < 0) + 0.5 * np.sum(d == 0)) / 5  # lower loss is better
        assert float(row["test_loss_prob_improvement"]) == pytest.approx(better)
        assert row["test_loss_shown"] == "False"
        needed = row["test_loss_seeds_needed"]
        if needed:  # the first n with 80% power at alpha / 8, from the integrated power
            effect, n = abs(float(row["test_loss_effect_size"])), int(needed)
            assert integrated_power(effect, n, 0.05 / 8, True) >= 0.8
            assert integrated_power(effect, n - 1, 0.05 / 8, True) < 0.8
        # The 95% CI of d_z leaves out 0 exactly when the paired t-test's raw p < 0.05 (both
        # invert the same t); with 0 inside, the range has no finite top.
        low, high = (float(row[f"test_loss_effect_size_ci_{end}"]) for end in ("low", "high"))
        assert (low <= 0 <= high) == (float(row["test_loss_p"]) >= 0.05)
        if low <= 0 <= high:
            assert row["test_loss_seeds_needed_note"] == "no finite number"
            assert row["test_loss_seeds_needed_high"] == ""
        else:  # shown on its own, not after Holm over 8: a finite range
            assert row["test_loss_seeds_needed_note"] == ""
            assert int(row["test_loss_seeds_needed_high"]) >= int(needed)
        assert int(row["test_loss_seeds_needed_low"]) <= int(needed or 10_001)
    assert {r["best"] for r in rows} == {"False"}
    markdown = (root / "comparison.md").read_text()
    assert "p (Holm)" in markdown and "Holm-adjusted over the family" in markdown
    assert "(test_loss: 8, test_acc: 8 comparisons)" in markdown and "| **" not in markdown
    assert "\\textbf" not in (root / "comparison.tex").read_text()
    verdicts = [line for line in result.stdout.splitlines() if line.startswith("verdict: ")]
    # One verdict per group and metric (8 groups x test_loss, test_acc), metric by metric.
    assert len(verdicts) == 16 and all("Holm p = " in v for v in verdicts)
    assert all(" test_loss " in v for v in verdicts[:8]) and all(
        " test_acc " in v for v in verdicts[8:]
    )
    assert all(
        ": not shown with 5 paired seeds; " in v
        and " needed if the true effect is as observed; " in v
        and " by these seeds [95% CI of d_z " in v
        for v in verdicts
    )
    unbounded = sum(r["test_loss_seeds_needed_note"] == "no finite number" for r in others)
    assert sum(", possibly no finite number" in v for v in verdicts[:8]) == unbounded
    assert all(v.removeprefix("verdict: ") in markdown for v in verdicts)
    assert "no group is shown to beat the baseline" in result.stderr
    assert "no group is shown to beat the baseline" in markdown


def test_3x3_grid_with_a_shown_effect_claims_best(
    cli, tmp_path: Path, base_config: dict[str, Any]
) -> None:
    root = grid_3x3(tmp_path / "runs", base_config, {(0.5, 0.0): -0.3})
    result = cli("compare", str(root), "--no-plots", "--metric", "test_loss")
    assert result.exit_code == 0, result.stderr
    rows = read_csv(root / "comparison.csv")
    assert rows[0]["group"] == "dropout=0.5 weight_decay=0" and rows[0]["best"] == "True"
    assert rows[0]["test_loss_shown"] == "True" and rows[0]["test_loss_seeds_needed"] == ""
    assert rows[0]["test_loss_seeds_needed_note"] == "shown"
    assert float(rows[0]["test_loss_p_holm"]) < 0.05
    assert [r["best"] for r in rows[1:]] == ["False"] * 8
    line = next(v for v in result.stdout.splitlines() if "dropout=0.5 weight_decay=0 " in v)
    diff, change = float(rows[0]["test_loss_diff"]), float(rows[0]["test_loss_rel_change_pct"])
    assert f"lowers test_loss by {abs(diff):.3g} ({change:+.1f}%, better)" in line
    assert line.endswith(": shown with 5 paired seeds")
    assert "no group is shown" not in result.stderr
    assert "| **0.5**" in (root / "comparison.md").read_text()


def test_ci_bootstrap_option(cli, tmp_path: Path, base_config: dict[str, Any]) -> None:
    from regbench.analysis import stats

    root = tmp_path / "runs"
    for seed in range(1, 6):
        make_run(root, base_config, seed, dropout=0.0)
        make_run(root, base_config, seed, effect=0.1, dropout=0.5)
    assert cli("compare", str(root), "--no-plots").exit_code == 0
    t_rows = {r["dropout"]: r for r in read_csv(root / "comparison.csv")}
    result = cli("compare", str(root), "--no-plots", "--ci", "bootstrap")
    assert result.exit_code == 0, result.stderr
    rows = {r["dropout"]: r for r in read_csv(root / "comparison.csv")}
    values = final_values(root, "test_loss")
    group, base = values[(0.5, 0.0)], values[(0.0, 0.0)]
    assert {r["ci_method"] for r in rows.values()} == {"bootstrap"}
    low, high = stats.bootstrap_mean(list(group.values()))
    assert (float(rows["0.5"]["test_loss_ci_low"]), float(rows["0.5"]["test_loss_ci_high"])) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    d = [group[s] - base[s] for s in range(1, 6)]
    low, high = stats.bootstrap_mean(d)
    assert float(rows["0.5"]["test_loss_diff_ci_low"]) == pytest.approx(low)
    assert float(rows["0.5"]["test_loss_diff_ci_high"]) == pytest.approx(high)
    # Only the intervals change: the p-values stay the t-test's.
    assert rows["0.5"]["test_loss_p"] == t_rows["0.5"]["test_loss_p"]
    assert rows["0.5"]["test_loss_diff_ci_low"] != t_rows["0.5"]["test_loss_diff_ci_low"]
    assert "BCa bootstrap" in (root / "comparison.md").read_text()
    assert "bootstrap intervals from 5 seeds (fewer than 10) are too narrow" in result.stderr
    bad = cli("compare", str(root), "--ci", "bca")
    assert bad.exit_code == 2 and "--ci bca" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- plots
def test_plots_are_labelled_with_bands_and_legends(grid: Path) -> None:
    from matplotlib.collections import PolyCollection

    from regbench.analysis import compare_plots

    comparison = compare([grid])
    curves = compare_plots.loss_curves_figure(comparison)
    # One panel per split on one shared y axis: the training loss, validation and test.
    titles = [ax.get_title() for ax in curves.axes]
    assert [t.split(": ")[-1] for t in titles] == ["train_loss", "val_loss", "test_loss"]
    assert all(ax.get_xlabel() == "epoch" for ax in curves.axes)
    assert curves.axes[0].get_ylabel() == "loss"
    legend = next(ax.get_legend() for ax in curves.axes if ax.get_legend() is not None)
    labels = [t.get_text() for t in legend.get_texts()]
    assert all(f"{r.group.label} (n=3)" in " ".join(labels) for r in comparison.rows)
    for ax in curves.axes:
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 4  # one band per group (what it is: in the legend)
    points = compare_plots.metrics_figure(comparison)
    assert [ax.get_xlabel() for ax in points.axes] == ["test_loss (final)", "test_acc (final)"]
    tick_labels = {t.get_text() for t in points.axes[0].get_yticklabels()}
    assert tick_labels == {f"{r.group.label} (n=3)" for r in comparison.rows}
    heat = compare_plots.heatmap_figure(comparison)
    ax = heat.axes[0]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("dropout", "weight_decay")
    assert len(ax.texts) == 4 and "mean test_loss" in heat.axes[1].get_ylabel()
    one_key = compare([grid], over=["weight_decay"])
    assert compare_plots.heatmap_figure(one_key) is None
