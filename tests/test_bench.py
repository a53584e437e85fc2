"""The benchmark script runs (tiny mode) and prints every ratio with its target. No timings are
checked here: they depend on the machine; the README reports measured ones. Benchmark [6] runs
five whole sweeps even when tiny, too slow for the suite: its arithmetic is checked instead."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("regbench_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["regbench_bench"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_script_prints_each_ratio_with_its_target(tmp_path: Path) -> None:
    args = ["--tiny", "--only", "1,2,3,4,5", "--models", "regression", "--threads", "1"]
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args],
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
        ("5", "whole `regbench run model=regression dropout=0.5 threads=1 --quiet"),
    ):
        (line,) = [line for line in lines if line.startswith(f"[{tag}] {what}")]
        assert re.search(r"\(target [^:]+: (meets|MISSES) target\)", line), line
    ceiling = [line for line in lines if line.startswith("[3] regression: one more stacked")]
    assert len(ceiling) == 1 and re.search(r"no stack size passes [\d.]+x here", ceiling[0])
    assert not list(tmp_path.iterdir())  # everything went to a temporary folder


def test_sweep_overhead_is_what_each_further_job_adds_beyond_its_loop(tmp_path: Path) -> None:
    bench = load_bench()
    # 8 jobs in 20 s, 1 job in 6 s: each further job adds 2 s, of which 0.5 s is its loop.
    assert bench.per_job_overhead(20.0, 6.0, 8, 0.5) == pytest.approx(1.5)
    for job, seconds in (("a", [0.25, 0.5]), ("b", [0.5, 0.75])):
        (tmp_path / job).mkdir()
        lines = ["epoch,seconds", *(f"{i},{s}" for i, s in enumerate(seconds, 1))]
        (tmp_path / job / "metrics.csv").write_text("\n".join(lines) + "\n")
    assert bench.mean_loop_seconds(tmp_path) == pytest.approx(1.0)  # (0.75 + 1.25) / 2
    assert sorted(bench.loop_seconds_of_jobs(tmp_path)) == pytest.approx([0.75, 1.25])


def test_the_stacked_ceiling_charges_the_fixed_cost_and_the_stacked_loop() -> None:
    bench = load_bench()
    # A sequential sweep of 19 s; any sweep command costs 5 s beyond its loops; the stack's loop
    # takes 4.5 s: even with free outputs the stacked command takes 9.5 s, so 2x at best.
    assert bench.stacked_ceiling(19.0, 5.0, 4.5) == pytest.approx(2.0)
