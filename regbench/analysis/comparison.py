"""Comparisons over seeds: group runs by config, pick the baseline, summarise each group.

Runs whose configs are equal apart from ``seed`` (and keys named with ``--over``) form a group;
their seeds are replicates. For each group and metric: n, mean, sample std, a Student-t 95%
confidence interval, and the difference from a baseline group with its 95% CI and p-value: a
paired t-test over the seeds both groups share (the same seed means the same initial weights and
data order, so pairing removes that variance), Welch's t-test when fewer than two seeds are shared.
Only completed runs are replicates; failed, diverged and unfinished runs are counted in the notes.

Per metric, the comparisons of every group with the baseline form one family: their p-values are
Holm-adjusted, and a difference counts as shown only when its adjusted p is below ALPHA. Each
cell also gets effect sizes (relative change, d or d_z, P(better)) and, when its difference is
not shown, the seeds a t-test would need to show it: for the observed d, and the range the 95%
interval of d implies (stats.seeds_range). ``best`` is claimed only for what is shown.

With an equivalence ``margin`` (in units of the first metric), each group also gets a TOST
against the baseline in that metric, Holm-adjusted over the same family: "equivalent within
±margin" is said only when that adjusted p is below ALPHA, never because a difference was not
shown. Runs swept for an experiment (experiments.py) supply the metrics, baseline, ``at`` and
margin that the caller leaves out.

The runs come from runs.py (the run table), the numbers from stats.py (pure functions), and
tables.py writes the result as text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.analysis.experiments import experiment_of, question
from regbench.analysis.mask_curve import curve_runs
from regbench.analysis.runs import (
    DATA_FINGERPRINT,
    DATA_USED,
    Run,
    find_runs,
    parse_at,
    row_at,
)
from regbench.analysis.stats import (
    NAN,
    Difference,
    Effect,
    Equivalence,
    SeedsRange,
    Stats,
    describe,
    difference,
    effect,
    equivalence,
    holm,
    seeds_range,
)
from regbench.compose.validate import declared_keys
from regbench.core.config import ExperimentConfig, Key, hashable
from regbench.core.errors import UsageError
from regbench.core.metrics import Metric, lookup, selection_problem, validation_name
from regbench.core.rundir import Status
from regbench.studies import study_default_metrics, study_metrics, study_selection_metric

# A study unknown to this process (a plug-in not imported) is compared on these.
FALLBACK_METRICS = ("test_loss", "test_acc")
MIN_REPLICATES = 3
NOT_METRICS = ("epoch", "seconds")
ALPHA = 0.05
CI_METHODS = ("t", "bootstrap")
MIN_BOOTSTRAP = 10  # fewer seeds than this: a bootstrap interval is warned about


# ----------------------------------------------------------------------------- groups
@dataclass
class Group:
    config: dict[str, Any]  # the grouping keys and their values
    runs: list[Run]
    label: str = ""

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.status is Status.COMPLETED]

    def status_note(self) -> str:
        counts: dict[str, int] = {}
        for run in self.runs:
            if run.status is not Status.COMPLETED:
                counts[run.status] = counts.get(run.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def group_runs(
    runs: Sequence[Run], over: Sequence[str] = (), metrics: Sequence[str] = ()
) -> tuple[list[Group], list[str]]:
    """Groups of runs equal in every key that is part of a group's identity when ``metrics``
    are compared (declared: core/config.py's Key.groups), apart from ``over``; the keys that
    vary between the groups."""
    _check_keys(runs, over, "--over")
    groups: dict[tuple, Group] = {}
    for run in runs:
        config = identity(run, metrics, over)
        key = tuple(sorted(config.items(), key=lambda kv: kv[0]))
        groups.setdefault(key, Group(config, [])).runs.append(run)
    varying = _shown_keys([g.config for g in groups.values()])
    for group in groups.values():
        group.label = " ".join(f"{k}={show(group.config.get(k))}" for k in varying) or "all runs"
    return list(groups.values()), varying


def _shown_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys that vary, less the data actually used where a config key that varies tells
    the groups apart already (data.n_train=10 vs 20); kept where only it does (a fallback)."""
    varying = varying_keys(configs)
    if DATA_USED not in varying or len(varying) == 1:
        return varying
    others = [k for k in varying if k != DATA_USED]
    distinct = {tuple(c.get(k) for k in others) for c in configs}
    return others if len(distinct) == len(configs) else varying


def _data_notes(groups: Sequence[Group], varying: Sequence[str]) -> list[str]:
    """Groups apart only because they trained on different data (some runs of data=mnist fell
    back to the embedded digits, say): said, since their configs alone look the same."""
    if DATA_USED not in varying:
        return []
    by_config: dict[tuple, list[Group]] = {}
    for group in groups:
        rest = tuple(sorted((k, v) for k, v in group.config.items() if k != DATA_USED))
        by_config.setdefault(rest, []).append(group)
    return [
        "groups with the same config trained on different data (data.used: source and "
        "train/val/test sizes from each run's summary), so they are shown apart: "
        + "; ".join(f"{g.config.get(DATA_USED)} ({len(g.runs)} runs)" for g in same)
        for same in by_config.values()
        if len(same) > 1
    ]


def identity(run: Run, metrics: Sequence[str] = (), over: Sequence[str] = ()) -> dict[str, Any]:
    """The part of ``run``'s config that makes its group: keys that can change the compared
    ``metrics`` (not the seed, bookkeeping, rounding-only keys, or evaluation keys that do not
    touch them), less ``over``."""
    declared = run_declarations(run)
    return {
        k: v
        for k, v in run.config.items()
        if k not in over and k != DATA_FINGERPRINT and declaration_of(declared, k).groups(metrics)
    }


def run_declarations(run: Run) -> dict[str, Key]:
    """The declarations of ``run``'s keys, by its study and data source."""
    return declared_keys(run.config.get("model.name"), run.config.get("data.name"))


def declaration_of(declared: Mapping[str, Key], key: str) -> Key:
    """``key``'s declaration, or that of its nearest declared parent (``experiment.claim`` of
    an older experiment block is bookkeeping like ``experiment``); an unknown key changes what
    a run computes, as far as anyone can tell."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = declared.get(".".join(parts[:end]))
        if found is not None:
            return found
    return Key("")


def varying_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys whose value differs between ``configs`` (a key a config lacks reads as None)."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({c.get(k) for c in configs}) > 1]


def _check_keys(runs: Sequence[Run], keys: Iterable[str], option: str) -> None:
    known = set().union(*(r.config for r in runs)) if runs else set()
    for key in keys:
        if key not in known:
            raise UsageError(
                f"{option} {key}: no run has this key; keys: {', '.join(sorted(known))}"
            )


def drop_repeats(runs: Sequence[Run], metrics: Sequence[str] = ()) -> tuple[list[Run], int]:
    """One run per (group, seed) when ``metrics`` are compared: a second run of the same
    config and seed is not an independent replicate (a completed one is kept over others)."""
    ranked = sorted(runs, key=lambda r: r.status is not Status.COMPLETED)
    seen: set[tuple] = set()
    kept = []
    for run in ranked:
        # The same group and the same seed: a rerun (on another device, with another logger),
        # not an independent replicate.
        same = (tuple(sorted(identity(run, metrics).items())), run.seed)
        if same not in seen:
            seen.add(same)
            kept.append(run)
    kept.sort(key=lambda r: str(r.path))
    return kept, len(runs) - len(kept)


# ----------------------------------------------------------------------------- comparison
@dataclass
class Cell:
    """One group x one metric."""

    values: list[tuple[Any, float]]  # (seed, value) of the group's completed runs
    stats: Stats | None
    diff: Difference | None = None
    effect: Effect | None = None
    p_adjusted: float = NAN  # Holm over the metric's family (every group vs the baseline)
    shown: bool = False  # p_adjusted < ALPHA
    seeds_needed: int | None = None  # per group, when not shown (None: shown, or no estimate)
    seeds_range: SeedsRange | None = None  # seeds_needed with the range the CI of d implies
    equivalence: Equivalence | None = None  # TOST against the baseline (with a margin only)
    tost_adjusted: float = NAN  # its p, Holm over the metric's family
    equivalent: bool = False  # tost_adjusted < ALPHA
    # (seed, why) of completed runs whose value at the chosen epoch is unusable (nan, inf, not a
    # number, no such row): never replaced by another epoch's value, never in the statistics.
    left_out: list[tuple[Any, str]] = field(default_factory=list)


@dataclass
class Row:
    group: Group
    cells: dict[str, Cell]
    is_baseline: bool = False
    is_best: bool = False
    versus: Row | None = None  # the baseline this row is tested against (None: it is one)

    @property
    def n(self) -> int:
        return len(self.group.completed)

    def count(self, metric: str) -> int:
        """Replicates with a value of ``metric`` (completed runs that logged it)."""
        stats = self.cells[metric].stats
        return stats.n if stats else 0


@dataclass
class Comparison:
    metrics: list[str]
    at: str
    varying: list[str]
    rows: list[Row]
    baseline: Row | None
    notes: list[str] = field(default_factory=list)
    ci: str = "t"  # "t" or "bootstrap" (BCa): the intervals' method
    alpha: float = ALPHA
    family: dict[str, int] = field(default_factory=dict)  # metric -> comparisons with a p-value
    margin: float | None = None  # equivalence margin of the first metric (TOST), if any
    experiment: ExperimentConfig | None = None  # the question the runs were swept for
    within: str | None = None  # each group against the baseline of its own value of this key
    specs: dict[str, Metric] = field(default_factory=dict)  # each metric's declaration
    select: Metric | None = None  # with at="best": the metric that chose each run's epoch

    @property
    def main(self) -> str:
        return self.metrics[0]

    def spec(self, metric: str) -> Metric:
        """``metric``'s declaration (or the guess from its name, for an undeclared one)."""
        return lookup(self.specs, metric)

    @property
    def n_runs(self) -> int:
        return sum(len(r.group.runs) for r in self.rows)


def compare(
    paths: Sequence[Path],
    metrics: Sequence[str] = (),
    at: str | None = None,
    over: Sequence[str] = (),
    baseline: str | None = None,
    ci: str = "t",
    margin: float | None = None,
    within: str | None = None,
    select: str | None = None,
) -> Comparison:
    """Read the runs under ``paths`` and compare their groups (see the module docstring);
    options left out (empty ``metrics``, None) come from the runs' experiment, if they have
    one, else the defaults (final, the unregularized baseline, no margin). With ``at="best"``,
    ``select`` names the metric that picks each run's epoch (:func:`selector`)."""
    if at is not None:
        parse_at(at)
    if ci not in CI_METHODS:
        raise UsageError(f"--ci {ci}: use t (Student t, the default) or bootstrap (BCa)")
    if margin is not None and not margin > 0:
        raise UsageError(f"--margin {margin}: an equivalence margin must be > 0 (metric units)")
    runs = find_runs(paths)
    experiment = experiment_of(runs)
    curve_notes: list[str] = []
    if experiment is not None and experiment.mc_masks:  # one run per number of masks
        runs, curve_notes = curve_runs(runs, experiment.mc_masks)
    asked = question(experiment, metrics, at, baseline, margin, within)
    metrics, at, baseline, margin = asked.metrics, asked.at, asked.baseline, asked.margin
    within = asked.within
    _check_one_model(runs)
    specs, notes = _metric_specs(runs)
    metrics = _pick_metrics(runs, metrics, group_runs(runs, over)[1])
    chosen = selector(runs, at, select, metrics, specs)
    runs, repeats = drop_repeats(runs, metrics)
    groups, varying = group_runs(runs, over, metrics)
    declared = [lookup(specs, m) for m in metrics]
    rows = [Row(g, {m.name: _cell(g, m, at, ci, chosen) for m in declared}) for g in groups]
    if not any(row.cells[metrics[0]].values for row in rows):
        raise UsageError(
            f"no run has a value of {metrics[0]} at {at}: nothing to compare, nothing written "
            f"(--at final or best, or an epoch the runs reached)"
        )
    rows.sort(key=lambda r: _rank(r, declared[0]))
    notes = [n for n in notes if n.split(" ", 1)[0] in metrics]  # undeclared: only those shown
    notes += curve_notes
    if repeats:
        notes.append(f"{repeats} run(s) repeat another run's config and seed; counted once")
    notes += _mixed_notes(groups, metrics)
    notes += _data_notes(groups, varying)
    if at == "final" and any(run.restored_epoch is not None for run in runs):
        notes.append(
            "final = the weights a run ended with: for runs that stopped early with "
            "early_stop.restore_best, their selected epoch (summary.json's early_stop)"
        )
    base, note = _assign_baselines(rows, varying, baseline, within)
    if note:
        notes.append(note)
    family, found = _test_groups(rows, base, declared, ci, margin, within)
    notes += found
    notes += _replicate_notes(rows, metrics[0])
    notes += _left_out_notes(rows, metrics)
    notes += _divergence_notes(rows)
    if ci == "bootstrap":
        notes += _bootstrap_note(rows, metrics[0])
    return Comparison(
        list(metrics),
        at,
        varying,
        rows,
        base,
        notes,
        ci,
        ALPHA,
        family,
        margin,
        experiment,
        within,
        specs,
        chosen,
    )


def _metric_specs(runs: Sequence[Run]) -> tuple[dict[str, Metric], list[str]]:
    """The runs' study's metric declarations, and a note for each logged metric it does not
    declare (each note starts with the metric's name)."""
    model = str(runs[0].config.get("model.name")) if runs else ""
    declared = study_metrics(model)
    logged = dict.fromkeys(k for r in runs for row in r.rows[:1] for k in row)
    if declared is None:
        return {}, [
            f"{m} is not declared by the study '{model}' (not imported here): whether lower or "
            f"higher is better is guessed from its name"
            for m in logged
        ]
    undeclared = [m for m in logged if m not in declared and m not in NOT_METRICS]
    return declared, [
        f"{m} is not declared by the {model} study: whether lower or higher is better is "
        f"guessed from its name"
        for m in undeclared
    ]


def selector(
    runs: Sequence[Run],
    at: str,
    select: str | None,
    metrics: Sequence[str],
    specs: Mapping[str, Metric],
) -> Metric | None:
    """With ``at="best"``: the one validation metric with a direction that picks each run's
    epoch (``select``, else the study's primary validation metric); every metric is then
    reported at that epoch. None for final and epoch=N. Selecting on a test metric is refused:
    the number would be chosen on the data it is reported on."""
    if at != "best":
        if select is not None:
            raise UsageError(f"--select {select} chooses the epoch of --at best; add --at best")
        return None
    logged = _logged(runs)
    model = str(runs[0].config.get("model.name")) if runs else ""
    name = select or study_selection_metric(model) or validation_name(metrics[0])
    chosen = lookup(specs, name)
    validation = [m for m in logged if lookup(specs, m).split == "val"]
    if name not in logged and select is None:
        raise UsageError(
            f"--at best selects each run's epoch on {name}, and these runs have no validation "
            f"metrics (made before validation splits, or without validation data); compare "
            f"them --at final or --at epoch=N"
        )
    if name not in logged:
        raise UsageError(
            f"--select {name}: no run logged it; validation metrics: "
            f"{', '.join(validation) or 'none'}"
        )
    directed = [m for m in validation if lookup(specs, m).has_direction]
    problem = selection_problem(chosen, f"--select {name}", directed)
    if problem:
        raise UsageError(problem)
    return chosen


def _logged(runs: Sequence[Run]) -> list[str]:
    columns = dict.fromkeys(k for r in runs for row in r.rows[:1] for k in row)
    return [c for c in columns if c not in NOT_METRICS]


def _mixed_notes(groups: Sequence[Group], metrics: Sequence[str]) -> list[str]:
    """A note for each group whose runs differ in a key that is not part of its identity but
    can change rounding (device, threads, deterministic)."""
    notes = []
    for group in groups:
        if len(group.runs) < 2:
            continue
        declared = run_declarations(group.runs[0])
        for key in dict.fromkeys(k for run in group.runs for k in run.config):
            if key == DATA_FINGERPRINT:
                notes += _fingerprint_note(group)
                continue
            if declaration_of(declared, key).role != "rounding":
                continue
            values = sorted({show(run.config.get(key)) for run in group.runs})
            if len(values) > 1:
                notes.append(
                    f"{group.label} mixes {key}={', '.join(values)}: the same computation, "
                    f"rounded differently; its seeds are counted as one group"
                )
    return notes


def _fingerprint_note(group: Group) -> list[str]:
    """Runs of one group that read different files (both fingerprints known)."""
    found = sorted(
        {str(run.config[DATA_FINGERPRINT]) for run in group.runs if DATA_FINGERPRINT in run.config}
    )
    if len(found) < 2:
        return []
    return [
        f"{group.label} mixes runs that read different data files (fingerprints "
        f"{', '.join(found)}): the same source name, other examples; compare them apart"
    ]


def _test_groups(
    rows: Sequence[Row],
    base: Row | None,
    metrics: Sequence[Metric],
    ci: str,
    margin: float | None,
    within: str | None,
) -> tuple[dict[str, int], list[str]]:
    """Every group against its baseline: per metric one Holm family (its size returned), the
    equivalence tests of the first metric with a margin, and ``best`` where it is shown."""
    if base is None:
        return {}, [f"no baseline, so no equivalence test (margin ±{margin:g})"] if margin else []
    family = {metric.name: _test_family(rows, metric, ci) for metric in metrics}
    if margin is not None:
        _test_equivalence(rows, metrics[0].name, margin)
    main = metrics[0]
    if not main.has_direction:
        return family, [
            f"no best: {main.name} has no direction (neither lower nor higher is better); its "
            f"differences are tested, not ranked"
        ]
    if within is not None:
        return family, [f"no best claimed: each group is compared with its own {within}'s baseline"]
    return family, _best_or_why_not(rows, base, main, family[main.name])


def _assign_baselines(
    rows: Sequence[Row], varying: Sequence[str], spec: str | None, within: str | None
) -> tuple[Row | None, str]:
    """Mark the baseline row(s) and point every other row at its own (``Row.versus``): one
    baseline, or with ``within`` one per value of that key. Returns the (first) baseline and a
    note for the reader."""
    if within is None:
        blocks = [list(rows)]
    else:
        _check_keys([r for row in rows for r in row.group.runs], [within], "within")
        values = list(dict.fromkeys(hashable(row.group.config.get(within)) for row in rows))
        blocks = [[r for r in rows if hashable(r.group.config.get(within)) == v] for v in values]
    first, notes = None, []
    for block in blocks:
        base, note = pick_baseline(block, varying, spec)
        if note:
            notes.append(note)
        if base is None:
            continue
        base.is_baseline = True
        for row in block:
            row.versus = None if row is base else base
        first = first or base
    return first, "; ".join(notes)


def _check_one_model(runs: Sequence[Run]) -> None:
    """One model per comparison: an MLP's test_loss and a regression's are different things."""
    models = sorted({str(run.config.get("model.name")) for run in runs})
    if len(models) > 1:
        raise UsageError(
            f"these runs train different models ({', '.join(models)}), whose metrics do not "
            f"compare; give each model's runs to its own `regbench compare`"
        )


def _test_family(rows: Sequence[Row], metric: Metric, ci: str) -> int:
    """Test every group against its baseline in ``metric`` and Holm-adjust the family; returns
    its size (the comparisons with a p-value). Without a direction, P(better) is P(higher)."""
    tested = []
    for row in rows:
        cell = row.cells[metric.name]
        if row.versus is None:
            continue
        base_cell = row.versus.cells[metric.name]
        if cell.values and base_cell.values:
            cell.diff = difference(cell.values, base_cell.values, ci=ci)
            higher = metric.direction != "min"
            cell.effect = effect(cell.values, base_cell.values, higher)
            tested.append(cell)
    adjusted = holm([c.diff.p for c in tested if c.diff])
    size = sum(1 for c in tested if c.diff and c.diff.p == c.diff.p)  # nan p: not a member
    for cell, p in zip(tested, adjusted, strict=True):
        cell.p_adjusted = p
        cell.shown = p < ALPHA
        if not cell.shown and cell.effect and size:
            # At alpha / m, Bonferroni's level, which is the strictest step of Holm's: that many
            # seeds would show the difference after the correction, not only on its own.
            cell.seeds_range = seeds_range(
                cell.effect.d, cell.effect.ci, alpha=ALPHA / size, paired=cell.effect.paired
            )
            cell.seeds_needed = cell.seeds_range.observed
    return size


def _test_equivalence(rows: Sequence[Row], metric: str, margin: float) -> None:
    """TOST of every group against its baseline in ``metric`` within ±``margin``,
    Holm-adjusted over the family (the groups with a test), as the differences are."""
    tested = []
    for row in rows:
        if row.versus is not None and row.cells[metric].values:
            cell, base_cell = row.cells[metric], row.versus.cells[metric]
            cell.equivalence = equivalence(cell.values, base_cell.values, margin, ALPHA)
            tested.append(cell)
    adjusted = holm([cell.equivalence.p for cell in tested if cell.equivalence])
    for cell, p in zip(tested, adjusted, strict=True):
        cell.tost_adjusted = p
        cell.equivalent = p < ALPHA


def _best_or_why_not(rows: Sequence[Row], base: Row, spec: Metric, size: int) -> list[str]:
    """Mark the top row best only when that is shown: a group shown to beat the baseline, or the
    baseline when every other group is shown worse. Otherwise a note says so."""
    metric = spec.name
    top = rows[0] if rows and rows[0].cells[metric].stats is not None else None
    others = [r for r in rows if r is not base and r.cells[metric].stats is not None]
    if (
        top is base
        and others
        and all(r.cells[metric].shown and not _better(r, spec) for r in others)
    ):
        top.is_best = True
        return []
    if top is not None and top is not base and top.cells[metric].shown:
        top.is_best = True
        return []
    if not others:  # one group (a sweep of seeds only): nothing was compared, nothing to say
        return []
    winners = [r.group.label for r in others if r.cells[metric].shown and _better(r, spec)]
    family = f"after Holm correction over {size} comparison(s) with the baseline"
    if winners:
        return [
            f"no best claimed: the top group is not shown to beat the baseline "
            f"({base.group.label}) in {metric} {family}; shown to beat it: {'; '.join(winners)}"
        ]
    return [
        f"no group is shown to beat the baseline ({base.group.label}) in {metric} {family} "
        f"(alpha = {ALPHA})"
    ]


def _better(row: Row, metric: Metric) -> bool:
    diff = row.cells[metric.name].diff
    return diff is not None and metric.improves(diff.value) is True


def _pick_metrics(
    runs: Sequence[Run], metrics: Sequence[str], varying: Sequence[str] = ()
) -> list[str]:
    """The metrics asked for, checked; else the study's defaults (its primary first), and the
    metrics the varying keys declare worth showing (weights.csv's when a penalty varies)."""
    columns = _logged(runs)
    if metrics:
        missing = [m for m in metrics if m not in columns]
        if missing:
            raise UsageError(
                f"--metric {missing[0]}: no run logged it; metrics: {', '.join(columns) or 'none'}"
            )
        return list(dict.fromkeys(metrics))
    model = str(runs[0].config.get("model.name")) if runs else ""
    defaults = study_default_metrics(model) or FALLBACK_METRICS
    chosen = [m for m in defaults if m in columns]
    chosen = chosen or [c for c in columns if c.startswith("test_")] or columns[:1]
    declared = run_declarations(runs[0]) if runs else {}
    for key in varying:
        chosen += [m for m in declaration_of(declared, key).shows if m in columns]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise UsageError("none of the runs has metrics yet (no metrics.csv rows)")
    return chosen


def _cell(
    group: Group, metric: Metric, at: str, ci: str = "t", select: Metric | None = None
) -> Cell:
    values, left_out = [], []
    for run in group.completed:
        if not any(metric.name in row for row in run.rows):
            continue  # a run that never logs it (another study's metric): not a replicate of it
        # A run that early stopping restored ended with its selected epoch's weights.
        restored = at == "final" and run.restored_epoch is not None
        when = f"epoch={run.restored_epoch}" if restored else at
        row = row_at(run.rows, when, select)
        value = row.get(metric.name) if row is not None else None
        if _usable(value):
            values.append((run.seed, float(value)))
        else:
            left_out.append((run.seed, _unusable(value, run, at)))
    if not values:
        return Cell(values, None, left_out=left_out)
    stats = describe([v for _, v in values], ci=ci, bounds=metric.bounds)
    return Cell(values, stats, left_out=left_out)


def _usable(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value)


def _unusable(value: Any, run: Run, at: str) -> str:
    what = "no row" if value is None else repr(value) if isinstance(value, str) else str(value)
    return f"{run.path.name}: {what} at {at}"


def _rank(row: Row, metric: Metric) -> tuple[bool, float]:
    """Best first for a metric with a direction; by value (lowest first) without one."""
    stats = row.cells[metric.name].stats
    if stats is None:
        return (True, 0.0)
    return (False, -stats.mean if metric.direction == "max" else stats.mean)


def _left_out_notes(rows: Sequence[Row], metrics: Sequence[str]) -> list[str]:
    """Each run whose value is unusable, named, per metric and group."""
    notes = []
    for metric in metrics:
        for row in rows:
            gone = row.cells[metric].left_out
            if gone:
                named = "; ".join(f"seed {seed} ({why})" for seed, why in gone)
                notes.append(
                    f"{row.group.label}: {len(gone)} seed(s) left out of {metric}, their value "
                    f"unusable: {named}"
                )
    return notes


def _divergence_notes(rows: Sequence[Row]) -> list[str]:
    """Diverged runs per group, when groups differ in it: the surviving seeds of an arm that
    diverges more make it look better than it is."""
    counts = [sum(r.status is Status.DIVERGED for r in row.group.runs) for row in rows]
    if len(set(counts)) < 2:
        return []
    shown = "; ".join(
        f"{row.group.label}: {n} of {len(row.group.runs)}"
        for row, n in zip(rows, counts, strict=True)
    )
    return [
        f"groups diverged differently ({shown}): each group's numbers are of its surviving seeds "
        f"only, so an arm that diverges more looks better than it is"
    ]


def _bootstrap_note(rows: Sequence[Row], metric: str) -> list[str]:
    # A bootstrap can only resample the values there are: with few seeds it misses the spread
    # that the t interval's heavier tails allow for, so its intervals come out too narrow.
    fewest = min((row.count(metric) for row in rows if row.count(metric)), default=0)
    if not fewest or fewest >= MIN_BOOTSTRAP:
        return []
    return [
        f"bootstrap intervals from {fewest} seeds (fewer than {MIN_BOOTSTRAP}) are too narrow: "
        "they resample only the values there are; the t interval (the default) is safer"
    ]


def _replicate_notes(rows: Sequence[Row], metric: str) -> list[str]:
    few = [f"{row.group.label} (n={row.count(metric)})" for row in rows]
    few = [text for row, text in zip(rows, few, strict=True) if row.count(metric) < MIN_REPLICATES]
    notes = []
    if few:
        notes.append(
            f"fewer than {MIN_REPLICATES} completed seeds in {len(few)} group(s): "
            f"{'; '.join(few)}; their std, CI and p-values are unreliable or undefined"
        )
    failed = [f"{row.group.label}: {row.group.status_note()}" for row in rows]
    failed = [text for row, text in zip(rows, failed, strict=True) if row.group.status_note()]
    if failed:
        notes.append(f"runs not counted (not completed): {'; '.join(failed)}")
    return notes


# ----------------------------------------------------------------------------- baseline
def pick_baseline(
    rows: Sequence[Row], varying: Sequence[str], spec: str | None
) -> tuple[Row | None, str]:
    """The baseline row: the one matching ``spec`` ("dropout=0 weight_decay=0"), else the only
    group without regularization. Returns (row or None, a note for the reader)."""
    if spec:
        matches = rows_matching(rows, spec, "--baseline")
        if len(matches) != 1:
            labels = "; ".join(r.group.label for r in rows)
            how = "no group" if not matches else f"{len(matches)} groups"
            raise UsageError(f"--baseline {spec!r} matches {how}; groups: {labels}")
        return matches[0], ""
    plain = [r for r in rows if _unregularized(r.group.config, run_declarations(r.group.runs[0]))]
    if len(plain) == 1:
        return plain[0], ""
    if not plain:
        return None, "no group without regularization: no baseline (choose one with --baseline)"
    labels = "; ".join(r.group.label for r in plain)
    return None, f"several groups without regularization ({labels}); choose one with --baseline"


def rows_matching(rows: Sequence[Row], spec: str, option: str) -> list[Row]:
    """The rows whose group has every key=value of ``spec`` ('dropout=0 l2=0'); a key no run
    has is refused, naming ``option``."""
    wanted = parse_assignments(spec)
    known = {k for row in rows for k in row.group.config}
    runs = [r for row in rows for r in row.group.runs]
    _check_keys(runs, [k for k, _ in wanted if k not in known], option)
    return [r for r in rows if all(same_value(r.group.config.get(k), v) for k, v in wanted)]


def parse_assignments(spec: str) -> list[tuple[str, Any]]:
    pairs = []
    for item in spec.split():
        if "=" not in item:
            raise UsageError(f"--baseline {spec!r}: write key=value pairs, e.g. 'dropout=0 l2=0'")
        key, text = item.split("=", 1)
        pairs.append((key, _parse_value(text)))
    return pairs


def _parse_value(text: str) -> Any:
    import yaml

    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return hashable(yaml.safe_load(text))
    except yaml.YAMLError:
        return text


def same_value(value: Any, wanted: Any) -> bool:
    """Equal as a group is matched to key=value: numbers by value (0 is 0.0), not bools."""
    if isinstance(value, int | float) and isinstance(wanted, int | float):
        return not isinstance(value, bool) and float(value) == float(wanted)
    return value == wanted


def _unregularized(config: Mapping[str, Any], declared: Mapping[str, Key]) -> bool:
    """Every regularizer the group has is at its declared "off" value."""
    return all(
        same_value(value, declaration_of(declared, k).off)
        for k, value in config.items()
        if declaration_of(declared, k).regularizer
    )


# ----------------------------------------------------------------------------- labels
def show(value: Any) -> str:
    """A config value as labels and tables write it: lists as [a,b], floats in %g."""
    if isinstance(value, tuple):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
