"""The classic claims as experiments: each `regbench sweep +experiment=NAME`, shrunken (fewer
epochs, seeds and data), ends in a comparison that asks the experiment's question, its verdicts
per metric and a report; a bad experiment block is one line and a non-zero exit."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import write_mnist

from regbench.compose.hydra import config_dir
from regbench.core.jobs import config_hash

EXPERIMENTS = (
    "dropout_overfit",
    "l1_vs_l2",
    "weight_decay_vs_l2",
    "mlp_dropout",
    "gan_d_dropout",
    "rnn_dropout_placement",
    "dropout_variants",
)
TWO_SEEDS = "seed=1,2"
SMALL_REGRESSION = ("epochs=3", "eval_every=1", "data.n_train=8", "data.n_test=8")
SMALL_RNN = (
    "epochs=2",
    "data.n_points=60",
    "data.seq_len=5",
    "data.test_points=10",
    "data.val_points=10",
)


def small_mnist(root: Path) -> tuple[str, ...]:
    """Real IDX files of 64 learnable fake digits instead of the embedded 5,000 (data=mnist)."""
    write_mnist(root, n_train=64)
    return ("data=mnist", f"data.root={root}", "data.download=false", "epochs=1")


def shrunken(name: str, tmp_path: Path) -> tuple[str, ...]:
    """Overrides that make experiment ``name`` run in seconds: two seeds, two groups (each
    override replaces the yaml's own sweep of that key), tiny data, a few epochs."""
    mnist = small_mnist(tmp_path / "data") if name in MNIST_EXPERIMENTS else ()
    return {
        "dropout_overfit": SMALL_REGRESSION,
        "l1_vs_l2": (*SMALL_REGRESSION, "+experiment/penalty=none,l1"),
        "weight_decay_vs_l2": (*SMALL_REGRESSION, "optimizer=sgd,adam"),  # within: optimizer
        "mlp_dropout": (*mnist, "dropout=0,0.5"),
        "gan_d_dropout": (*mnist, "dropout=0,0.3", "model.fid_samples=16"),
        "rnn_dropout_placement": (*SMALL_RNN, "+experiment/placement=none,between_layers"),
        "dropout_variants": mnist,
    }[name]


MNIST_EXPERIMENTS = ("mlp_dropout", "gan_d_dropout", "dropout_variants")


@pytest.fixture
def no_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures are built but not rendered: each file is written with placeholder bytes. Drawing
    is most of a tiny run's time; the figures themselves are tested in test_compare and
    test_report, here only that the experiment writes them."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "tight_layout", lambda self, *a, **k: None)
    monkeypatch.setattr(Figure, "savefig", lambda self, target, **k: _placeholder(target))


def _placeholder(target: Any) -> None:
    """A figure's file: a path, or the open temporary file regbench writes it through."""
    if hasattr(target, "write"):
        target.write(PNG_MAGIC)
    else:
        Path(target).write_bytes(PNG_MAGIC)


# The report embeds only files that are PNGs by their first bytes (issue 27, case 2).
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def experiment_block(name: str) -> dict:
    return yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text())["experiment"]


def check_comparison(result, name: str, sweep: Path) -> tuple[list[str], list[dict]]:
    """The experiment's claim shown, a verdict per metric for each group against its baseline
    (its own value's with ``within``; with a margin, the TOST verdicts too), the expectations
    answered, and comparison.csv saying which groups are baselines; the verdicts and the rows."""
    assert result.exit_code == 0, result.stderr
    block = experiment_block(name)
    assert f"Experiment {name}: {block['claim']}" in result.stdout
    verdicts = [line for line in result.stdout.splitlines() if line.startswith("verdict: ")]
    groups = len([p for p in sweep.iterdir() if (p / "config.yaml").is_file()]) // 2
    per_metric = (groups - 1) if block["within"] is None else groups // 2
    equivalence = per_metric if block["margin"] is not None else 0
    assert len(verdicts) == per_metric * len(block["metrics"]) + equivalence
    for metric in block["metrics"]:
        assert any(f" {metric} " in v for v in verdicts), metric
    check_expectations(result.stdout, block)
    with (sweep / "comparison.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sum(r["baseline"] == "True" for r in rows) == groups - per_metric
    return verdicts, rows


def check_expectations(stdout: str, block: dict) -> None:
    """An experiment with expectations prints one answer line under its claim, and one line
    per expectation (shown or not) after the verdicts."""
    lines = stdout.splitlines()
    answers = [line for line in lines if line.startswith("Answer: ")]
    expected = [line for line in lines if line.startswith("expected, ")]
    if not block.get("expect"):
        assert not answers and not expected
        return
    (answer,) = answers
    assert answer.split(":")[1].strip().startswith(("supported", "partly", "not shown"))
    assert len(expected) == len(block["expect"])


def only_sweep(tmp_path: Path) -> Path:
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    return sweep


@pytest.mark.slow
@pytest.mark.usefixtures("no_rendering")
@pytest.mark.parametrize("name", [e for e in EXPERIMENTS if e != "dropout_variants"])
def test_experiment_runs_and_answers_its_question(cli, tmp_path: Path, name: str) -> None:
    """`regbench sweep +experiment=NAME` with task overrides that shrink it: the overrides
    replace the yaml's own sweep of the same key (seed), the comparison uses the experiment's
    metrics and baseline, every metric gets verdicts, and the report names the claim."""
    result = cli("sweep", f"+experiment={name}", TWO_SEEDS, *shrunken(name, tmp_path), "-q")
    check_answer(result, name, only_sweep(tmp_path))


def check_answer(result, name: str, sweep: Path) -> list[str]:
    """The experiment's question asked and answered; its verdict lines."""
    verdicts, rows = check_comparison(result, name, sweep)
    jobs = [p for p in sweep.iterdir() if (p / "config.yaml").is_file()]
    assert {p.name.rsplit("seed=", 1)[1] for p in jobs} == {"1", "2"}
    block = experiment_block(name)
    assert all(f"{m}_p_holm" in rows[0] for m in block["metrics"])
    report = (sweep / "report.html").read_text()
    assert block["claim"].replace("'", "&#x27;") in report and "Verdicts (" in report
    assert all(
        v.removeprefix("verdict: ") in (sweep / "comparison.md").read_text() for v in verdicts
    )
    assert (sweep / "comparison_metrics.png").is_file() and "comparison_metrics" in report
    return verdicts


@pytest.mark.slow
@pytest.mark.usefixtures("no_rendering")
def test_equivalence_verdict_and_compare_later(cli, tmp_path: Path) -> None:
    """dropout_variants is an equivalence claim: its verdict is TOST's, within the stated
    margin; `regbench compare` on the sweep later asks the same question, and its options win."""
    name = "dropout_variants"
    # Test accuracy on 64 images moves in steps of 1/64: TOST on the (continuous) test loss here,
    # which also shows that the experiment block takes overrides like any key.
    asked = ("experiment.metrics=[test_loss,test_acc]", "experiment.margin=0.5")
    result = cli("sweep", f"+experiment={name}", TWO_SEEDS, *shrunken(name, tmp_path), *asked)
    verdicts = check_answer(result, name, only_sweep(tmp_path))
    (tost,) = [v for v in verdicts if "TOST" in v]
    assert "test_loss" in tost and "within ±0.5 (TOST p = " in tost and "90% CI of Δ" in tost
    assert "p > 0.05" not in result.stdout
    sweep = only_sweep(tmp_path)
    again = cli("compare", str(sweep), "--no-plots")
    assert again.exit_code == 0 and tost in again.stdout
    assert "Experiment dropout_variants" in again.stdout
    other = cli("compare", str(sweep), "--no-plots", "-m", "test_loss", "--margin", "0.001")
    assert other.exit_code == 0, other.stderr
    lines = [v for v in other.stdout.splitlines() if v.startswith("verdict: ")]
    assert len(lines) == 2 and "within ±0.001 (TOST p" in lines[0]
    assert all(" test_acc " not in v for v in lines)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("experiment.at=middle", "experiment.at='middle' is not allowed"),
        ("+experiment.colour=red", "unknown key 'experiment.colour'"),
        ("experiment.margin=0", "experiment.margin=0 can never be met"),
        ("experiment.baseline=dropout", "experiment.baseline='dropout': write key=value pairs"),
    ],
)
def test_a_bad_experiment_block_is_one_line(cli, override: str, message: str) -> None:
    result = cli(
        "sweep", "+experiment=dropout_overfit", override, "seed=1", "dropout=0", "--dry-run"
    )
    assert result.exit_code == 2  # a usage error, before anything trains
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_experiment_block_changes_no_job_hash() -> None:
    """The same run with and without an experiment block lands in the same job folder."""
    from regbench.compose.hydra import load_settings

    plain = load_settings(["model=regression", "dropout=0.5"]).to_dict()
    asked = load_settings(["+experiment=dropout_overfit", "dropout=0.5"]).to_dict()
    assert asked["experiment"]["name"] == "dropout_overfit" and plain["experiment"] is None
    assert config_hash(plain) == config_hash(asked)
    assert {k: v for k, v in plain.items() if k != "experiment"} == {
        k: v for k, v in asked.items() if k != "experiment"
    }


def test_an_unknown_experiment_names_the_ones_there_are(cli) -> None:
    result = cli("sweep", "+experiment=dropuot_overfit", "--dry-run")
    assert result.exit_code == 2
    assert "unknown experiment 'dropuot_overfit'; available: " in result.stderr
    assert all(name in result.stderr for name in EXPERIMENTS)


def test_an_experiment_without_the_plus_says_how_to_add_it(cli) -> None:
    result = cli("sweep", "experiment=dropout_overfit", "--dry-run")
    assert result.exit_code == 2
    expected = "experiment is a config group that is added, not overridden: write "
    assert f"error: {expected}+experiment=dropout_overfit" in result.stderr
