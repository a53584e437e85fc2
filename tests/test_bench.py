"""The benchmark script runs (tiny mode) and prints every ratio with its target. No timings are
checked here: they depend on the machine; the README reports measured ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def test_benchmark_script_prints_each_ratio_with_its_target(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--models", "regression", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("machine: ")
    for tag, what in (
        ("1", "regbench loop vs hand-written loop"),
        ("2", "regbench loop vs tutorial DataLoader loop"),
        ("3", "regression: 2 configs stacked vs one after another"),
        ("4", "peak memory"),
    ):
        (line,) = [line for line in lines if line.startswith(f"[{tag}] {what}")]
        assert re.search(r"\(target [^:]+: (meets|MISSES) target\)", line), line
    ceiling = [line for line in lines if line.startswith("[3] regression: one more stacked")]
    assert len(ceiling) == 1 and re.search(r"no stack size passes [\d.]+x here", ceiling[0])
    assert not list(tmp_path.iterdir())  # everything went to a temporary folder
