"""Each key and each metric is declared once; the lists that used to be kept by hand, and the
configuration reference in docs/, are derived from the declarations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from regbench.core.config import Settings, declarations
from regbench.core.jobs import LEGACY_UNKEYED, UNKEYED
from regbench.data import source_config, source_names
from regbench.stacked.launcher import MEMBER_KEYS
from regbench.studies import study_class, study_config, study_names
from regbench.training.runner import RESUMABLE_CHANGES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference" / "configuration.md"


def test_the_configuration_reference_is_the_declarations() -> None:
    """In a fresh process, so that studies other tests register are not in it."""
    made = subprocess.run(
        [sys.executable, "-m", "regbench.compose.reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert made == REFERENCE.read_text(), (
        "docs/reference/configuration.md differs from the declarations; regenerate it with "
        "`python -m regbench.compose.reference > docs/reference/configuration.md`"
    )


def test_every_built_in_key_and_metric_says_what_it_means() -> None:
    keys = dict(declarations(Settings))
    for name in study_names():
        keys.update(declarations(study_config(name), f"model({name})."))
    for name in source_names():
        keys.update(declarations(source_config(name), f"data({name})."))
    # A study or source narrows `name` to its own (Literal["mlp"]); the base declares it.
    silent = [k for k, declared in keys.items() if not declared.help and not k.endswith(".name")]
    assert silent == []
    metrics = {
        m: s for name in study_names() for m, s in study_class(name).declared_metrics().items()
    }
    assert [name for name, metric in metrics.items() if not metric.meaning] == []


def test_the_derived_lists_are_what_the_keys_declare() -> None:
    assert set(UNKEYED) == {
        "seed",
        "out_dir",
        "name",
        "logger",
        "mlflow_uri",
        "keep_checkpoint",
        "plots",
        "plot_format",
        "plot_dpi",
        "plot_style",
        "experiment",
    }
    assert set(MEMBER_KEYS) == {
        "seed",
        "dropout",
        "l1",
        "l2",
        "weight_decay",
        "max_norm",
        "lr",
        "name",
        "out_dir",
    }
    assert set(RESUMABLE_CHANGES) == {
        "epochs",
        "eval_every",
        "threads",
        "logger",
        "mlflow_uri",
        "out_dir",
        "name",
        "keep_checkpoint",
        "plots",
        "plot_format",
        "plot_dpi",
        "plot_style",
    }
    # History, not a declaration: what the job key left out before logger and mlflow_uri did.
    assert LEGACY_UNKEYED == ("seed", "out_dir", "name", "experiment", "plots")


def test_each_study_declares_its_primary_metric_with_a_direction() -> None:
    for name in study_names():
        study = study_class(name)
        primary = study.declared_metrics()[study.primary]
        assert primary.has_direction, name
