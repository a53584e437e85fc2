"""The docs: the site builds strictly (every page in the nav, every link and anchor resolves, the
API pages render from the docstrings), and the README stays a short entry point whose commands
are the ones CI runs."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


@pytest.mark.slow
def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    missing = [name for name in DOCS_TOOLS if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"the docs tools are not installed ({', '.join(missing)}): "
            "pip install -c constraints.txt -e '.[docs]' (included in .[dev])"
        )
    # mkdocs-material prints a notice about MkDocs 2 that this variable silences.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    proc = subprocess.run(build, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "index.html").is_file()
    # The API pages come from the docstrings (mkdocstrings), not from hand-written text.
    api = (site / "api" / "index.html").read_text()
    for name in ("run", "sweep", "compare", "load_runs", "SweepOutcome.sweep_dir"):
        assert f'id="regbench.api.{name}"' in api, name
    plugin = (site / "adding-a-study" / "index.html").read_text()
    for name in ("config.StudyConfig", "regularize.dropout_layer", "studies.register_study"):
        assert f'id="regbench.{name}"' in plugin, name


def test_every_docs_page_is_in_the_nav() -> None:
    """mkdocs validates this too (validation.omitted_files); checked here without mkdocs."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav) -> set[str]:
        found: set[str] = set()
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found |= pages(value) if isinstance(value, list) else {value}
        return found

    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == pages(config["nav"])


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the docs"
    for target in local:
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command_and_both_install_through_constraints() -> None:
    commands = readme_commands()
    (install_and_run,) = [c for c in commands if c.endswith("regbench run model=mlp dropout=0.2")]
    (test_command,) = [c for c in commands if c.endswith("python -m pytest")]
    assert install_and_run.startswith("pip install -c constraints.txt -e . &&")
    assert test_command.startswith("pip install -c constraints.txt -e '.[dev]' &&")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci]
    assert any(line.strip() == "source .venv/bin/activate || exit 1" for line in ci)


def test_the_constraints_file_pins_what_the_suite_runs_with() -> None:
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "constraints.txt").open()]
    pins = dict(line.lower().split("==") for line in lines if "==" in line)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert "mkdocs<2" in lines and int(pins["mkdocs"].split(".")[0]) < 2
    # One MLflow for the client (the mlflow extra) and the server (mlflow-ui).
    assert pins["mlflow"] == pins["mlflow-skinny"]


def test_the_citation_names_this_version() -> None:
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert citation["cff-version"] == "1.2.0" and citation["version"] == version.group(1)
    assert citation["title"] and citation["authors"]
