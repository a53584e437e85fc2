"""Comparisons over seeds: group runs by config, summarise each group honestly, write tables.

Runs whose configs are equal apart from ``seed`` (and keys named with ``--over``) form a group;
their seeds are replicates. For each group and metric: n, mean, sample std, a Student-t 95%
confidence interval, and the difference from a baseline group with its 95% CI and p-value: a
paired t-test over the seeds both groups share (the same seed means the same initial weights and
data order, so pairing removes that variance), Welch's t-test when fewer than two seeds are shared.
Only completed runs are replicates; failed, diverged and unfinished runs are counted in the notes.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.errors import UsageError
from regbench.runs import Run, find_runs, hashable, higher_is_better, parse_at, value_at
from regbench.stats import NAN, Difference, Stats, describe, difference

DEFAULT_METRICS = ("test_loss", "test_acc")
# Shown by default when a penalty varies across groups (from weights.csv).
PENALTY_KEYS = frozenset({"l1", "l2", "weight_decay"})
WEIGHT_METRICS = ("weights_near_zero", "weights_l2")
# Bookkeeping keys: never part of a group's identity (seed: the replicates within a group).
BOOKKEEPING = ("out_dir", "name")
UNGROUPED = ("seed", *BOOKKEEPING)
REGULARIZATION = ("dropout", "l1", "l2", "weight_decay")
MIN_REPLICATES = 3
NOT_METRICS = ("epoch", "seconds")
TABLE_FILES = ("comparison.md", "comparison.csv", "comparison.tex")


# ----------------------------------------------------------------------------- groups
@dataclass
class Group:
    config: dict[str, Any]  # the grouping keys and their values
    runs: list[Run]
    label: str = ""

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.status == "completed"]

    def status_note(self) -> str:
        counts: dict[str, int] = {}
        for run in self.runs:
            if run.status != "completed":
                counts[run.status] = counts.get(run.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def group_runs(runs: Sequence[Run], over: Sequence[str] = ()) -> tuple[list[Group], list[str]]:
    """Groups of runs equal in config apart from seed (and ``over``); the keys that vary."""
    _check_keys(runs, over, "--over")
    ignored = set(UNGROUPED) | set(over)
    groups: dict[tuple, Group] = {}
    for run in runs:
        config = {k: v for k, v in run.config.items() if k not in ignored}
        key = tuple(sorted(config.items(), key=lambda kv: kv[0]))
        groups.setdefault(key, Group(config, [])).runs.append(run)
    varying = varying_keys([g.config for g in groups.values()])
    for group in groups.values():
        group.label = " ".join(f"{k}={show(group.config.get(k))}" for k in varying) or "all runs"
    return list(groups.values()), varying


def varying_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({c.get(k) for c in configs}) > 1]


def _check_keys(runs: Sequence[Run], keys: Iterable[str], option: str) -> None:
    known = set().union(*(r.config for r in runs)) if runs else set()
    for key in keys:
        if key not in known:
            raise UsageError(
                f"{option} {key}: no run has this key; keys: {', '.join(sorted(known))}"
            )


def drop_repeats(runs: Sequence[Run]) -> tuple[list[Run], int]:
    """One run per (config, seed): a second run of the same config and seed is not an
    independent replicate (a completed one is kept over others)."""
    ranked = sorted(runs, key=lambda r: r.status != "completed")
    seen: set[tuple] = set()
    kept = []
    for run in ranked:
        identity = tuple(sorted((k, v) for k, v in run.config.items() if k not in BOOKKEEPING))
        if identity not in seen:
            seen.add(identity)
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


@dataclass
class Row:
    group: Group
    cells: dict[str, Cell]
    is_baseline: bool = False
    is_best: bool = False

    @property
    def n(self) -> int:
        return len(self.group.completed)

    def count(self, metric: str) -> int:
        """Replicates with a value of ``metric`` (completed runs that logged it)."""
        stats = self.cells[metric].stats
        return stats.n if stats else 0

    def tests(self) -> str:
        return "/".join(dict.fromkeys(c.diff.test for c in self.cells.values() if c.diff)) or ""


@dataclass
class Comparison:
    metrics: list[str]
    at: str
    varying: list[str]
    rows: list[Row]
    baseline: Row | None
    notes: list[str] = field(default_factory=list)

    @property
    def main(self) -> str:
        return self.metrics[0]

    @property
    def n_runs(self) -> int:
        return sum(len(r.group.runs) for r in self.rows)


def compare(
    paths: Sequence[Path],
    metrics: Sequence[str] = (),
    at: str = "final",
    over: Sequence[str] = (),
    baseline: str | None = None,
) -> Comparison:
    """Read the runs under ``paths`` and compare their groups (see the module docstring)."""
    parse_at(at)
    runs, repeats = drop_repeats(find_runs(paths))
    groups, varying = group_runs(runs, over)
    metrics = _pick_metrics(runs, metrics, varying)
    rows = [Row(g, {m: _cell(g, m, at) for m in metrics}) for g in groups]
    rows.sort(key=lambda r: _rank(r, metrics[0]))
    notes = []
    if repeats:
        notes.append(f"{repeats} run(s) repeat another run's config and seed; counted once")
    base, note = pick_baseline(rows, varying, baseline)
    if note:
        notes.append(note)
    if base is not None:
        base.is_baseline = True
        for row in rows:
            for metric, cell in row.cells.items():
                base_cell = base.cells[metric]
                if row is not base and cell.values and base_cell.values:
                    cell.diff = difference(cell.values, base_cell.values)
    if rows and rows[0].cells[metrics[0]].stats is not None:
        rows[0].is_best = True
    notes += _replicate_notes(rows, metrics[0])
    return Comparison(list(metrics), at, varying, rows, base, notes)


def _pick_metrics(
    runs: Sequence[Run], metrics: Sequence[str], varying: Sequence[str] = ()
) -> list[str]:
    columns = list(dict.fromkeys(k for r in runs for row in r.rows[:1] for k in row))
    columns = [c for c in columns if c not in NOT_METRICS]
    if metrics:
        missing = [m for m in metrics if m not in columns]
        if missing:
            raise UsageError(
                f"--metric {missing[0]}: no run logged it; metrics: {', '.join(columns) or 'none'}"
            )
        return list(dict.fromkeys(metrics))
    chosen = [m for m in DEFAULT_METRICS if m in columns]
    chosen = chosen or [c for c in columns if c.startswith("test_")] or columns[:1]
    if set(varying) & PENALTY_KEYS:  # a penalty study: show what the penalties did to weights
        chosen += [m for m in WEIGHT_METRICS if m in columns]
    if not chosen:
        raise UsageError("none of the runs has metrics yet (no metrics.csv rows)")
    return chosen


def _cell(group: Group, metric: str, at: str) -> Cell:
    values = []
    for run in group.completed:
        value = value_at(run.rows, metric, at)
        if value is not None:
            values.append((run.seed, value))
    return Cell(values, describe([v for _, v in values]) if values else None)


def _rank(row: Row, metric: str) -> tuple[bool, float]:
    stats = row.cells[metric].stats
    if stats is None:
        return (True, 0.0)
    return (False, -stats.mean if higher_is_better(metric) else stats.mean)


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
        wanted = parse_assignments(spec)
        _check_keys([r for row in rows for r in row.group.runs], dict(wanted), "--baseline")
        matches = [r for r in rows if all(_equal(r.group.config.get(k), v) for k, v in wanted)]
        if len(matches) != 1:
            labels = "; ".join(r.group.label for r in rows)
            how = "no group" if not matches else f"{len(matches)} groups"
            raise UsageError(f"--baseline {spec!r} matches {how}; groups: {labels}")
        return matches[0], ""
    plain = [r for r in rows if _unregularized(r.group.config)]
    if len(plain) == 1:
        return plain[0], ""
    if not plain:
        return None, "no group without regularization: no baseline (choose one with --baseline)"
    labels = "; ".join(r.group.label for r in plain)
    return None, f"several groups without regularization ({labels}); choose one with --baseline"


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


def _equal(value: Any, wanted: Any) -> bool:
    if isinstance(value, int | float) and isinstance(wanted, int | float):
        return not isinstance(value, bool) and float(value) == float(wanted)
    return value == wanted


def _unregularized(config: Mapping[str, Any]) -> bool:
    return all(_equal(config[k], 0) for k in REGULARIZATION if k in config)


# ----------------------------------------------------------------------------- formatting
def show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _num(x: float, signed: bool = False, digits: int = 4) -> str:
    if math.isnan(x):
        return "—"
    return f"{x:+.{digits}g}" if signed else f"{x:.{digits}g}"


def _interval(ci: tuple[float, float], digits: int = 4) -> str:
    if any(math.isnan(c) for c in ci):
        return "—"
    return f"[{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"


def _p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def header(comparison: Comparison) -> list[str]:
    columns = [*comparison.varying, "n"]
    for metric in comparison.metrics:
        columns += [f"{metric} mean ± std", "95% CI"]
        if comparison.baseline is not None:
            columns += ["Δ vs baseline [95% CI]", "p"]
    if comparison.baseline is not None:
        columns.append("test")
    return [*columns, "notes"]


def cells(comparison: Comparison, row: Row) -> list[str]:
    """One table row as text (shared by the terminal, Markdown and LaTeX tables)."""
    out = [show(row.group.config.get(k)) for k in comparison.varying]
    out.append(str(row.n))
    for metric in comparison.metrics:
        cell = row.cells[metric]
        stats = cell.stats
        if stats:
            out += [f"{_num(stats.mean)} ± {_num(stats.std, digits=2)}", _interval(stats.ci)]
        else:
            out += ["—", "—"]
        if comparison.baseline is not None:
            if row.is_baseline:
                out += ["baseline", ""]
            elif cell.diff:
                diff = cell.diff
                out += [f"{_num(diff.value, signed=True)} {_interval(diff.ci, 2)}", _p(diff.p)]
            else:
                out += ["—", "—"]
    if comparison.baseline is not None:
        out.append(_test_text(row))
    notes = [row.group.status_note()] if row.group.status_note() else []
    if row.n < MIN_REPLICATES:
        notes.append(f"n<{MIN_REPLICATES}")
    if row.is_best:
        notes.insert(0, "best")
    return [*out, ", ".join(notes)]


def _test_text(row: Row) -> str:
    if row.is_baseline:
        return ""
    diffs = [c.diff for c in row.cells.values() if c.diff]
    if not diffs or not diffs[0].test:
        return "—"
    first = diffs[0]
    return f"paired ({first.n} seeds)" if first.test == "paired" else "Welch"


def caption(comparison: Comparison) -> str:
    at = {"final": "at the final evaluation", "best": "at each run's best epoch"}.get(
        comparison.at, f"at {comparison.at}"
    )
    goal = "highest" if higher_is_better(comparison.main) else "lowest"
    text = (
        f"{comparison.n_runs} runs in {len(comparison.rows)} groups; metrics {at}; mean and "
        f"sample std over seeds, 95% CI of the mean (Student t). Best = {goal} mean "
        f"{comparison.main}."
    )
    if comparison.baseline is not None:
        text += (
            f" Δ = group mean - baseline ({comparison.baseline.group.label}) with its 95% CI; "
            "p from a paired t-test over the seeds both share, Welch's t-test otherwise."
        )
    return text


def rich_table(comparison: Comparison) -> Any:
    from rich.table import Table

    table = Table(title="comparison over seeds", caption=caption(comparison))
    for name in header(comparison):
        table.add_column(name, justify="left" if name in ("notes", "test") else "right")
    for row in comparison.rows:
        style = "bold green" if row.is_best else ("cyan" if row.is_baseline else None)
        table.add_row(*cells(comparison, row), style=style)
    return table


def markdown(comparison: Comparison) -> str:
    names = header(comparison)
    lines = ["# Comparison over seeds", "", caption(comparison), ""]
    lines.append("| " + " | ".join(names) + " |")
    lines.append("|" + "|".join("---" if n == "notes" else "---:" for n in names) + "|")
    for row in comparison.rows:
        texts = cells(comparison, row)
        if row.is_best:
            texts = [f"**{t}**" if t else t for t in texts]
        lines.append("| " + " | ".join(texts) + " |")
    if comparison.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in comparison.notes]
    return "\n".join(lines) + "\n"


def latex(comparison: Comparison) -> str:
    names = header(comparison)
    lines = [
        "% " + caption(comparison),
        "\\begin{tabular}{" + "r" * (len(names) - 1) + "l}",
        "\\toprule",
        " & ".join(_tex(n) for n in names) + " \\\\",
        "\\midrule",
    ]
    for row in comparison.rows:
        texts = [_tex(t) for t in cells(comparison, row)]
        if row.is_best:
            texts = [f"\\textbf{{{t}}}" if t else t for t in texts]
        lines.append(" & ".join(texts) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for char, escaped in (
        ("\\", "\\textbackslash{}"),
        ("_", "\\_"),
        ("%", "\\%"),
        ("&", "\\&"),
        ("#", "\\#"),
        ("Δ", "$\\Delta$"),
        ("—", "--"),
        ("<", "$<$"),
        ("±", "$\\pm$"),
    ):
        text = text.replace(char, escaped)
    return text


def csv_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """Machine-readable: full-precision numbers, one row per group."""
    out = []
    for row in comparison.rows:
        record: dict[str, Any] = {k: show(row.group.config.get(k)) for k in comparison.varying}
        seeds = sorted(str(r.seed) for r in row.group.completed)
        record.update(
            group=row.group.label,
            n=row.n,
            seeds=" ".join(seeds),
            baseline=row.is_baseline,
            best=row.is_best,
            not_counted=row.group.status_note(),
        )
        for metric, cell in row.cells.items():
            record.update(_csv_metric(metric, cell))
        out.append(record)
    return out


def _csv_metric(metric: str, cell: Cell) -> dict[str, Any]:
    stats, diff = cell.stats, cell.diff
    return {
        f"{metric}_n": stats.n if stats else 0,
        f"{metric}_mean": stats.mean if stats else NAN,
        f"{metric}_std": stats.std if stats else NAN,
        f"{metric}_ci_low": stats.ci[0] if stats else NAN,
        f"{metric}_ci_high": stats.ci[1] if stats else NAN,
        f"{metric}_diff": diff.value if diff else NAN,
        f"{metric}_diff_ci_low": diff.ci[0] if diff else NAN,
        f"{metric}_diff_ci_high": diff.ci[1] if diff else NAN,
        f"{metric}_p": diff.p if diff else NAN,
        f"{metric}_test": diff.test if diff else "",
    }


def write_tables(comparison: Comparison, out_dir: Path, tex: bool = False) -> list[Path]:
    """comparison.md and comparison.csv (and comparison.tex) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path, tex_path = (out_dir / name for name in TABLE_FILES)
    md.write_text(markdown(comparison))
    rows = csv_rows(comparison)
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["group"])
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
    written = [md, csv_path]
    if tex:
        tex_path.write_text(latex(comparison))
        written.append(tex_path)
    return written


def _csv_value(value: Any) -> Any:
    # repr round-trips floats exactly, so the CSV can be checked against a direct computation.
    return repr(value) if isinstance(value, float) else value
