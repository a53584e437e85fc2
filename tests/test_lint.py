"""The code stays ruff-clean (part of the one test command, so CI checks it too)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists() and shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    proc = subprocess.run(
        [str(ruff) if ruff.exists() else "ruff", "check", str(ROOT)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout
