"""Whether a planned sweep can answer its experiment's question (analysis/experiments.py's
block), checked before any job runs: a question the grid cannot answer would otherwise train the
whole sweep and then end in "no comparison". The comparison's own grouping decides, applied to
runs that are only planned."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regbench.analysis.comparison import group_runs, parse_assignments, same_value, show
from regbench.analysis.mask_curve import MASKS_KEY
from regbench.analysis.runs import Run
from regbench.core.config import ConfigError, Expectation, ExperimentConfig, Settings, flatten
from regbench.core.rundir import Status
from regbench.figures.axes import is_numeric


def check_answerable(grid: Sequence[Settings]) -> None:
    """What the jobs' experiment block asks, checked against the planned grid before any job
    runs: each would otherwise train the whole sweep and then end in "no comparison". Its
    metrics must be ones the grid's study logs (for a built-in study, whose declarations list
    every metric it logs; a plug-in may log metrics it does not declare), ``within`` a key the
    grid varies, and the baseline one group of the grid (one per value of ``within``)."""
    blocks = {settings.experiment for settings in grid} - {None}
    if len(blocks) > 1:
        names = ", ".join(sorted({block.name for block in blocks if block is not None}))
        raise ConfigError(
            f"the grid's jobs carry {len(blocks)} different experiment blocks ({names}); "
            f"sweep each experiment on its own"
        )
    if not blocks:
        return
    (experiment,) = blocks
    assert experiment is not None
    _check_metrics(experiment, {settings.model.name for settings in grid})
    _check_masks(experiment, {settings.model.name for settings in grid})
    groups, varying = _groups(grid, experiment.metrics, experiment.mc_masks or ())
    if experiment.within is not None:
        _check_within(experiment.within, groups, varying)
    if experiment.baseline:
        _check_baseline(experiment, groups)
    for expectation in experiment.expect or ():
        _check_expectation(expectation, groups)


def _check_metrics(experiment: ExperimentConfig, models: set[str]) -> None:
    from regbench.studies import study_class, study_metrics

    for model in sorted(models):
        declared = study_metrics(model)
        if declared is None or not study_class(model).__module__.startswith(BUILT_IN_STUDIES):
            continue
        for metric in experiment.metrics:
            if metric not in declared:
                raise ConfigError(
                    f"experiment.metrics: model={model} logs no {metric}; it logs "
                    f"{', '.join(sorted(declared))}"
                )


# Studies whose declarations are checked against what they log (tests/test_reference.py).
BUILT_IN_STUDIES = "regbench.studies."


def _groups(
    grid: Sequence[Settings], metrics: Sequence[str], masks: Sequence[int]
) -> tuple[list[Any], list[str]]:
    """The groups the comparison will make of the grid's runs, and the keys that vary between
    them: the comparison's own grouping, of runs that are only planned (with ``masks``, each
    run once per number of masks, as analysis/mask_curve.py reads them)."""
    configs = [flatten(s.to_dict()) for s in grid]
    if masks:
        configs = [{**c, MASKS_KEY: k} for c in configs for k in (0, *masks)]
    runs = [Run(Path("."), config, Status.COMPLETED, []) for config in configs]
    return group_runs(runs, metrics=metrics)


def _check_masks(experiment: ExperimentConfig, models: set[str]) -> None:
    from regbench.studies import study_class

    for model in sorted(models) if experiment.mc_masks else ():
        if not hasattr(study_class(model), "mask_curve"):
            raise ConfigError(
                f"experiment.mc_masks: model={model} has no MC mask curve (the classifiers "
                f"mlp and cnn have); set experiment.mc_masks=null"
            )


def _check_within(within: str, groups: Sequence[Any], varying: Sequence[str]) -> None:
    if within not in varying:
        keys = ", ".join(varying) or "nothing but the seed"
        what = "does not vary" if _known(within, groups) else "has no key"
        raise ConfigError(
            f"experiment.within={within}: the grid {what} {within}, so no group has a baseline "
            f"of its own {within}; the grid varies {keys} (or set experiment.within=null)"
        )


def _known(key: str, groups: Sequence[Any]) -> bool:
    return any(key in group.config for group in groups)


def _check_baseline(experiment: ExperimentConfig, groups: Sequence[Any]) -> None:
    """One group matches the baseline (in each block of ``within``), as the comparison needs."""
    spec, within = experiment.baseline or "", experiment.within
    hint = "; name the baseline by keys the grid varies"
    wanted = _assignments(groups, spec, "experiment.baseline", hint)
    blocks: dict[Any, list[Any]] = {}
    for group in groups:
        blocks.setdefault(group.config.get(within) if within else None, []).append(group)
    for value, block in blocks.items():
        matches = _matching(block, wanted)
        if len(matches) != 1:
            where = f" among the groups with {within}={show(value)}" if within else ""
            how = "no group" if not matches else f"{len(matches)} groups"
            labels = "; ".join(g.label for g in block)
            raise ConfigError(
                f"experiment.baseline={spec!r} matches {how} of the grid{where} (groups: "
                f"{labels}); name one group the grid has"
            )


def _check_expectation(expectation: Expectation, groups: Sequence[Any]) -> None:
    """What a typo would make unanswerable: an arm, than or where naming a key the grid's groups
    lack, an arm or than matching several groups, an ``along`` that is not numeric. An arm the
    grid lacks, or too few groups for a shape, is left to the answer, which says so: a shrunk
    sweep (fewer groups) still runs."""
    for name in ("arm", "than", "where"):
        spec = getattr(expectation, name)
        if spec is None:
            continue
        found = _matching(groups, _assignments(groups, spec, f"experiment.expect {name}"))
        if name != "where" and len(found) > 1:
            raise ConfigError(
                f"experiment.expect {name}={spec!r} matches {len(found)} groups of the grid "
                f"({'; '.join(g.label for g in found)}); name one group"
            )
    along = expectation.along
    if along is not None and not is_numeric([g.config.get(along) for g in groups]):
        raise ConfigError(
            f"experiment.expect along={along}: not every group has a numeric {along}; order "
            f"the groups by a numeric key the grid varies"
        )


def _assignments(
    groups: Sequence[Any], spec: str, option: str, hint: str = ""
) -> list[tuple[str, Any]]:
    """``spec``'s key=value pairs, every key one the grid's groups have (else one line)."""
    wanted = parse_assignments(spec)
    unknown = [k for k, _ in wanted if not _known(k, groups)]
    if unknown:
        raise ConfigError(f"{option}={spec!r}: the grid's groups have no key {unknown[0]}{hint}")
    return wanted


def _matching(groups: Sequence[Any], wanted: Sequence[tuple[str, Any]]) -> list[Any]:
    """The groups with every key=value of ``wanted``, numbers compared by value."""
    return [g for g in groups if all(same_value(g.config.get(k), v) for k, v in wanted)]
