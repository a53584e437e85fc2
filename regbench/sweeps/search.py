"""Searches (``regbench sweep ... hydra/sweeper=optuna``): what the workflow plans and runs.

regbench/sweeps/trials.py runs a search's trials as sweep jobs, seeds as replicates, and plans
searches whose sweeper is a Hydra plugin (they run through Hydra's multirun);
regbench/sweeps/optuna_search.py is ``hydra/sweeper=optuna``, on Optuna's ask-and-tell API.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.core.errors import UsageError
from regbench.sweeps import optuna_search, trials
from regbench.sweeps.plan import SweepResult
from regbench.sweeps.trials import DIRECTIONS, Search, SearchLauncher, Trial, is_search

__all__ = [
    "DIRECTIONS", "Confirmation", "Search", "SearchLauncher", "Trial", "is_search", "plan",
    "plan_confirmation",
]  # fmt: skip


def plan(overrides: Sequence[str], objective: str | None = None, at: str | None = None) -> Search:
    """Check a search before anything trains or is written; every problem is one line."""
    return trials.plan(overrides, objective, at, own={"optuna": optuna_search.plan_optuna})


# ----------------------------------------------------------------------------- --confirm
CONFIRM_DIR = "confirm"  # in the search's folder


@dataclass(frozen=True)
class Confirmation:
    """The best trial's configuration on fresh seeds, and the space's unregularized setting
    (the baseline) on the same seeds, planned into ``<sweep>/confirm/``."""

    prepared: SweepResult
    overrides: list[str]  # the best configuration's, seeds included (for sweep.json)
    best: Trial
    baseline: list[str] | None  # the searched keys set to 0; None: the space has no 0


def plan_confirmation(
    search: Search, found: Sequence[Trial], sweep_dir: Path, n: int
) -> Confirmation:
    """Plan ``--confirm n``: the best trial's value is a maximum over trials, so optimistic; its
    configuration is trained again on ``n`` seeds the search did not use (the next integers
    after its largest), beside the baseline: every searched key whose range holds 0 at 0."""
    from regbench.sweeps import plan as sweeps

    if search.optuna is None:
        raise UsageError("--confirm goes with hydra/sweeper=optuna")
    best = best_trial(search, found)
    top = max(search.seeds)
    seeds = f"seed={','.join(str(s) for s in range(top + 1, top + 1 + n))}"
    chosen = {k: str(v) for k, v in best.params.items()}
    zeros = {k: "0" for k, d in search.optuna.distributions.items() if _holds_zero(d)}
    baseline = {**chosen, **zeros}
    folder = sweep_dir / CONFIRM_DIR
    overrides = [*search.optuna.fixed, *(f"{k}={v}" for k, v in chosen.items()), seeds]
    prepared = sweeps.prepare(overrides, folder)
    if not zeros or baseline == chosen:
        return Confirmation(prepared, overrides, best, None)
    base = [*search.optuna.fixed, *(f"{k}={v}" for k, v in baseline.items()), seeds]
    other = sweeps.prepare(base, folder)
    jobs = [*prepared.jobs, *(j for j in other.jobs if j.key not in prepared.states)]
    states = {**other.states, **prepared.states}
    merged = dataclasses.replace(prepared, jobs=jobs, states=states)
    return Confirmation(merged, overrides, best, [f"{k}=0" for k in zeros])


def best_trial(search: Search, found: Sequence[Trial]) -> Trial:
    finite = [t for t in found if t.value is not None and math.isfinite(t.value)]
    if not finite:
        raise UsageError("--confirm: no trial of the search has a value to confirm")
    pick = max if search.direction == DIRECTIONS[1] else min
    return pick(finite, key=lambda t: t.value)  # type: ignore[arg-type, return-value]


def _holds_zero(distribution: Any) -> bool:
    """Whether 0 is a value of the searched key (a log scale never holds it)."""
    if hasattr(distribution, "choices"):
        return any(str(c) in ("0", "0.0") for c in distribution.choices)
    low, high = distribution.low, distribution.high
    return not getattr(distribution, "log", False) and low <= 0 <= high


def test_metric(objective: str, columns: Sequence[str]) -> str:
    """The test counterpart of a validation objective among a run's ``columns``: val_loss ->
    test_loss, val_fid -> fid (metrics.py names the validation one from it the same way)."""
    rest = objective.removeprefix("val_")
    return next((c for c in (f"test_{rest}", rest) if c in columns), f"test_{rest}")
