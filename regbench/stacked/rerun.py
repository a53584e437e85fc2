"""Rerunning a stacked member in the arithmetic it was trained with.

A member of a stack is trained by batched products ([K, B, n] @ [K, n, m]) that round apart
from the same run alone, and rounding differences grow over epochs: its solo rerun is not
bitwise the same run. So `regbench rerun` of a stacked member rebuilds its stack: the job
folders its summary lists (``stack.members``, in order), each from its own config.yaml, trained
together again; the member's new run lands beside the original as any rerun does, the others
in a scratch folder that is removed. Checking one member costs its whole stack's compute.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from regbench.core.jobs import Job
from regbench.core.rundir import RunDir
from regbench.training.runner import saved_settings

if TYPE_CHECKING:
    from regbench.core.progress import Reporter
    from regbench.training.session import RunResult


def stack_of(original: RunDir) -> list[Path] | None:
    """The job folders ``original`` was stacked with, in stack order (itself among them); None
    for a solo run, a stack of one, or a stack whose folders are not all there any more."""
    summary = original.read_summary()
    stack = summary.stack if summary.stacked and isinstance(summary.stack, dict) else {}
    names = stack.get("members")
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        return None
    folders = [original.path.parent / name for name in names]
    if original.path.name not in names or not all(f.is_dir() for f in folders):
        return None
    return folders


def rerun_member(original: RunDir, folders: list[Path], reporter: Reporter) -> RunResult:
    """Train ``folders`` stacked again, as they were; ``original``'s rerun goes beside it."""
    from regbench.stacked.launcher import run_stacked

    beside = original.path.parent.parent
    with tempfile.TemporaryDirectory(prefix=".rerun-stack-", dir=beside) as scratch:
        jobs = []
        for folder in folders:
            run = RunDir.open(folder)
            out_dir = str(beside) if folder == original.path else scratch
            settings = dataclasses.replace(saved_settings(run), out_dir=out_dir)
            jobs.append(Job(settings, tuple(run.read_overrides())))
        results = run_stacked(jobs, reporter)
    result = results[folders.index(original.path)]
    assert result is not None  # without on_failure, run_stacked raises instead
    result.summary.rerun_of = str(original.path)
    result.run_dir.write_summary(result.summary)
    return result
