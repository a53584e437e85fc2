"""Searches (``regbench sweep ... hydra/sweeper=optuna``): what the workflow plans and runs.

regbench/sweeps/trials.py runs a search's trials as sweep jobs, seeds as replicates, and plans
searches whose sweeper is a Hydra plugin (they run through Hydra's multirun);
regbench/sweeps/optuna_search.py is ``hydra/sweeper=optuna``, on Optuna's ask-and-tell API.
"""

from __future__ import annotations

from collections.abc import Sequence

from regbench.sweeps import optuna_search, trials
from regbench.sweeps.trials import DIRECTIONS, Search, SearchLauncher, Trial, is_search

__all__ = ["DIRECTIONS", "Search", "SearchLauncher", "Trial", "is_search", "plan"]


def plan(overrides: Sequence[str], objective: str | None = None, at: str | None = None) -> Search:
    """Check a search before anything trains or is written; every problem is one line."""
    return trials.plan(overrides, objective, at, own={"optuna": optuna_search.plan_optuna})
