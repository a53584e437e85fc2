"""The command surface: help, configs, and that --help does not pay for torch."""

from __future__ import annotations

import subprocess
import sys

from regbench.studies import study_config, study_names


def test_help_lists_commands(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("run", "configs", "resume"):
        assert command in result.stdout


def test_run_help(cli) -> None:
    result = cli("run", "--help")
    assert result.exit_code == 0 and "dropout=0.2" in result.stdout


def test_help_does_not_import_torch_or_matplotlib() -> None:
    code = (
        "import sys; from regbench.cli.main import app; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'hydra') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_configs_shows_groups_and_resolved_values(cli) -> None:
    result = cli("configs", "dropout=0.3", "model=mlp")
    assert result.exit_code == 0, result.stderr
    assert "model: cnn, gan, mlp, regression, rnn" in result.stdout and "name: mlp" in result.stdout
    assert "data: fashion_mnist, mnist, mnist_small" in result.stdout
    assert "dropout: 0.3" in result.stdout and "hidden:" in result.stdout


def test_every_config_option_validates(cli) -> None:
    from regbench.compose.hydra import group_options, load_settings

    for group, options in group_options().items():
        if group.startswith("experiment/"):  # an experiment's arms: tested in its own runs
            continue
        for option in options:
            # A data option goes with a model that trains on it (model=mlp data=sine is refused).
            pairing = [f"model={model_for_data(option)}"] if group == "data" else []
            # An experiment is not in the defaults list: it is added, +experiment=NAME.
            add = "+" if group == "experiment" else ""
            assert load_settings([*pairing, f"{add}{group}={option}"])


def model_for_data(option: str) -> str:
    import yaml

    from regbench.compose.hydra import config_dir

    source = yaml.safe_load((config_dir() / "data" / f"{option}.yaml").read_text())["name"]
    return next(m for m in study_names() if source in (study_config(m).data_sources or ()))


def test_version(cli) -> None:
    from regbench.core.version import regbench_version

    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"regbench {regbench_version()}"
