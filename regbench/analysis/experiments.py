"""Experiments: a sweep plus the question it answers (configs/experiment/<name>.yaml).

The ``experiment`` block rides along in every job's config.yaml (validated like any key, left out
of job hashes and never read by a run). At the end of the sweep, and whenever ``regbench compare``
reads those runs later, it supplies the comparison's defaults: the metrics to compare and give
verdicts for, the baseline group, final or best, and an equivalence margin; options given on the
command line win.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from regbench.analysis.runs import Run
from regbench.compose.validate import validate_experiment
from regbench.core.config import ExperimentConfig, declaration
from regbench.core.errors import UsageError

KEY = "experiment"


def is_experiment_key(key: str) -> bool:
    """A flattened config key of the experiment block (``experiment``, ``experiment.name``)."""
    return key == KEY or key.startswith(KEY + ".")


def experiment_of(runs: Sequence[Run]) -> ExperimentConfig | None:
    """The experiment the runs were swept for; None when none of them has one. Runs of two
    different experiments are refused: their questions differ, so neither one's applies."""
    blocks = {_block(run) for run in runs} - {()}
    if not blocks:
        return None
    found = _one_question([validate_experiment(dict(block)) for block in sorted(blocks, key=repr)])
    if len(found) > 1:
        names = ", ".join(sorted({e.name for e in found}))
        raise UsageError(
            f"these runs were swept for {len(found)} different experiment blocks ({names}); "
            f"compare each experiment's sweep folder on its own"
        )
    return found[0]


def _one_question(found: list[ExperimentConfig]) -> list[ExperimentConfig]:
    """Blocks that differ only in keys added since some were written (expect, mc_masks: null in
    the older ones) ask one question: an old experiment sweep grown today is read with today's
    block. Returns that block alone, else ``found`` as it is."""
    added = [f.name for f in dataclasses.fields(ExperimentConfig) if declaration(f).has_legacy]
    stated = [e for e in found if any(getattr(e, name) is not None for name in added)]
    if len(found) < 2 or len(stated) != 1:
        return found
    (newest,) = stated
    older = dataclasses.replace(newest, **{name: None for name in added})
    return [newest] if all(e in (newest, older) for e in found) else found


def _block(run: Run) -> tuple:
    prefix = KEY + "."
    return tuple(
        sorted((k[len(prefix) :], v) for k, v in run.config.items() if k.startswith(prefix))
    )


@dataclass(frozen=True)
class Question:
    """What a comparison computes: the experiment's answers to the options not given."""

    metrics: tuple[str, ...]
    at: str
    baseline: str | None
    margin: float | None
    within: str | None


def question(
    experiment: ExperimentConfig | None,
    metrics: Sequence[str],
    at: str | None,
    baseline: str | None,
    margin: float | None,
    within: str | None = None,
) -> Question:
    """The options of a comparison: each one given wins over the experiment's."""
    if experiment is None:
        return Question(tuple(metrics), at or "final", baseline, margin, within)
    return Question(
        tuple(metrics) or experiment.metrics,
        at or experiment.at,
        baseline if baseline is not None else experiment.baseline,
        margin if margin is not None else experiment.margin,
        within if within is not None else experiment.within,
    )
