"""Where the configs are: the checkout's top-level configs/ for an editable install, the copy
inside the package for a wheel. Both installs must compose and validate the same configs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from regbench.compose.hydra import config_dir

REPO = Path(__file__).resolve().parents[1]


def test_an_editable_install_reads_the_top_level_configs() -> None:
    assert config_dir() == REPO / "configs"


def test_a_wheel_carries_the_configs_and_its_console_entry_uses_them(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels = tmp_path / "wheels"
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = wheels.glob("regbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml")
    }
    assert {f"regbench/_configs/{name}" for name in shipped} <= names
    # The primary config, and the PEP 561 marker: type checkers read regbench's annotations.
    assert {"regbench/_configs/config.yaml", "regbench/py.typed"} <= names
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    metadata = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Classifier: Typing :: Typed" in metadata and "Project-URL: Homepage" in metadata
    assert "Requires-Dist: torch>=2.9" in metadata

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    # The installed copy comes first on the path, ahead of the editable checkout.
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = "from regbench.compose.hydra import config_dir; print(config_dir())"
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert where.stdout.strip() == str(site / "regbench" / "_configs"), where.stderr
    entry = "import sys; from regbench.cli.main import main; sys.argv[0] = 'regbench'; main()"
    shown = subprocess.run(
        [sys.executable, "-c", entry, "configs", "model=regression"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "name: regression" in shown.stdout and "name: toy_regression" in shown.stdout
