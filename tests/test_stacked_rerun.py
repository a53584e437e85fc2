"""`regbench rerun --check` of a stacked member rebuilds its stack (issue 27, case 9): the
member reruns in the arithmetic it was trained with, so the check can say reproduced."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_dirs

SWEEP = ["model=regression", "epochs=300", "eval_every=50", "threads=1", "device=cpu"]
SWEEP += ["plots=none", "seed=1,2", "dropout=0,0.5", "-q"]


def test_a_stacked_member_reruns_with_its_stack_and_reproduces(cli, tmp_path: Path) -> None:
    assert cli("sweep", "--stacked", *SWEEP, "--dir", "s").exit_code == 0
    member = sorted((tmp_path / "s").glob("*-seed=2"))[0]
    stack = json.loads((member / "summary.json").read_text())["stack"]
    assert stack["size"] == 4 and member.name in stack["members"]

    check = cli("rerun", str(member), "--check")
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "reproduced" in check.stdout and "NOT" not in check.stdout
    # The member's rerun lands beside the sweep as any rerun does; its stack-mates' reruns were
    # in a scratch folder, removed.
    (rerun,) = run_dirs(tmp_path / "regression")
    assert json.loads((rerun / "summary.json").read_text())["rerun_of"] == str(member)
    assert not list(tmp_path.glob(".rerun-stack-*"))
