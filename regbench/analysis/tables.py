"""The comparison as text: the terminal (rich), Markdown, LaTeX and CSV tables.

The terminal, Markdown, LaTeX and HTML (report.py) tables share ``header`` and ``cells``, so they
always show the same numbers rounded the same way; the CSV keeps full precision for scripts.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from regbench.analysis.comparison import MIN_REPLICATES, Cell, Comparison, Row, show
from regbench.analysis.expectations import answer
from regbench.analysis.stats import CONFIDENCE, CONFIDENCE_MIN_N, MAX_SEEDS, NAN, Effect
from regbench.core.rundir import atomic_text

TABLE_FILES = ("comparison.md", "comparison.csv", "comparison.tex")


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


# With a baseline, each metric gets these columns after its mean and CI.
VERSUS = ("Δ vs baseline [95% CI]", "Δ %", "d", "P(better)", "p (Holm)", "seeds needed")


def header(comparison: Comparison) -> list[str]:
    """The column names of the text tables; the Δ, effect, p and test columns only with a
    baseline."""
    columns = [*comparison.varying, "n"]
    for metric in comparison.metrics:
        columns += [f"{metric} mean ± std", "95% CI"]
        if comparison.baseline is not None:
            columns += list(VERSUS)
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
            interval = _interval(stats.ci) + INTERVAL_MARKS.get(stats.interval, "")
            out += [f"{_num(stats.mean)} ± {_num(stats.std, digits=2)}", interval]
        else:
            out += ["—", "—"]
        if comparison.baseline is not None:
            out += _versus(row, cell)
    if comparison.baseline is not None:
        out.append(_test_text(row))
    notes = [row.group.status_note()] if row.group.status_note() else []
    if row.n < MIN_REPLICATES:
        notes.append(f"n<{MIN_REPLICATES}")
    if row.is_best:
        notes.insert(0, "best")
    return [*out, ", ".join(notes)]


def _versus(row: Row, cell: Cell) -> list[str]:
    """The VERSUS columns of one cell."""
    if row.is_baseline:
        return ["baseline", *[""] * (len(VERSUS) - 1)]
    diff, effect = cell.diff, cell.effect
    if diff is None or effect is None:
        return ["—"] * len(VERSUS)
    return [
        f"{_num(diff.value, signed=True)} {_interval(diff.ci, 2)}",
        _percent(effect.relative),
        _num(effect.d, signed=True, digits=2),
        _num(effect.prob_improvement, digits=2),
        _p(cell.p_adjusted),
        _seeds(cell),
    ]


def _percent(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:+.1f}%"


def _seeds(cell: Cell) -> str:
    """Seeds per group that would show the difference, then in brackets the range the CI of d
    implies (∞: it includes 0), e.g. "17 (9-∞)": blank when shown, — when no estimate."""
    seeds = cell.seeds_range
    if cell.shown:
        return ""
    if seeds is None or not seeds.estimated:
        return "—"
    observed = "∞" if cell.effect is not None and cell.effect.d == 0 else _count(seeds.observed)
    high = "∞" if seeds.unbounded else _count(seeds.high)
    return f"{observed} ({_count(seeds.low)}-{high})"


def _count(seeds: int | None) -> str:
    return f">{MAX_SEEDS}" if seeds is None else str(seeds)


def seeds_note(cell: Cell) -> str:
    """Why the seeds-needed columns hold no number: "shown", "no estimate" (no test, or no d),
    "no finite number" (the CI of d includes 0, so no n is sure to be enough) or "more than
    MAX_SEEDS"; blank for a finite range, and for a row not compared (the baseline)."""
    seeds = cell.seeds_range
    if cell.diff is None:
        return ""
    if cell.shown:
        return "shown"
    if seeds is None or not seeds.estimated:
        return "no estimate"
    if seeds.unbounded:
        return "no finite number"
    return f"more than {MAX_SEEDS}" if seeds.high is None else ""


def _test_text(row: Row) -> str:
    if row.is_baseline:
        return ""
    diffs = [c.diff for c in row.cells.values() if c.diff]
    if not diffs or not diffs[0].test:
        return "—"
    first = diffs[0]
    return f"paired ({first.n} seeds)" if first.test == "paired" else "Welch"


def caption(comparison: Comparison) -> str:
    at = {"final": "at the final evaluation", "best": _selected_text(comparison)}.get(
        comparison.at, f"at {comparison.at}"
    )
    method = "BCa bootstrap" if comparison.ci == "bootstrap" else "Student t"
    text = (
        f"{comparison.n_runs} runs in {len(comparison.rows)} groups; metrics {at}; mean and "
        f"sample std over seeds, 95% CI of the mean ({method}; none with fewer than "
        f"{CONFIDENCE_MIN_N} seeds){_interval_methods(comparison)}."
    )
    if comparison.baseline is None:
        return text + " No baseline, so no tests and no best claimed."
    sizes = ", ".join(f"{m}: {k}" for m, k in comparison.family.items())
    base = comparison.baseline.group.label
    if comparison.within:
        base = f"the baseline group of the same {comparison.within}, e.g. {base}"
    return text + (
        f" Δ = group mean - baseline ({base}) with its 95% CI "
        f"({method}); Δ % of the baseline mean; d = Cohen's d_z (mean / std of the paired "
        "differences) for paired tests, Cohen's d (pooled std) for Welch; P(better) = share of "
        "seed pairs where the group beats the baseline (ties 1/2). p from a paired t-test over "
        "the seeds both share, Welch's t-test otherwise, Holm-adjusted over the family of every "
        f"group against the baseline, one family per metric ({sizes} comparisons); shown = "
        f"adjusted p < {comparison.alpha}. Seeds needed (per group) = the n at which the t-test "
        f"shows the observed d with 80% power at alpha {comparison.alpha}/m, for differences "
        f"not shown; in brackets the n for the ends of d's {CONFIDENCE:.0%} CI (noncentral t), "
        "∞ when it includes 0: the observed d alone makes the number optimistic. "
        + _best_text(comparison)
    )


# How an interval that would have left its metric's range was made (stats.bounded).
INTERVAL_MARKS = {"t, log scale": "†", "t, logit scale": "†", "t, clipped": "‡"}


def _interval_methods(comparison: Comparison) -> str:
    """The caption's words for the marked intervals, when the table has any."""
    used = {
        cell.stats.interval
        for row in comparison.rows
        for cell in row.cells.values()
        if cell.stats is not None
    }
    parts = []
    if used & {"t, log scale", "t, logit scale"}:
        parts.append(
            "† the t interval would leave the metric's range, so it was computed on the log "
            "(one bound) or logit (two bounds) scale of the values and mapped back"
        )
    if "t, clipped" in used:
        parts.append("‡ clipped at the metric's bound, which some values lie on")
    return "; " + "; ".join(parts) if parts else ""


def _best_text(comparison: Comparison) -> str:
    spec = comparison.spec(comparison.main)
    if not spec.has_direction:
        return f"No best: {spec.name} has no direction (neither lower nor higher is better)."
    goal = "highest" if spec.direction == "max" else "lowest"
    return f"Best = {goal} mean {comparison.main}, only when shown."


def _selected_text(comparison: Comparison) -> str:
    chosen = comparison.select.name if comparison.select else comparison.main
    return f"at each run's selected epoch (its best {chosen})"


def verdicts(comparison: Comparison, metric: str | None = None) -> list[str]:
    """One sentence per group and metric (or only ``metric``) against the baseline, metric by
    metric: the difference, its relative size and CI, the Holm p and whether it is shown (else
    the seeds needed); with an equivalence margin, the first metric's TOST verdict first."""
    if comparison.baseline is None:
        return []
    out = []
    for name in [metric] if metric else comparison.metrics:
        for row in comparison.rows:
            if row.is_baseline:
                continue
            if name == comparison.main and comparison.margin is not None:
                out.append(_equivalence_verdict(comparison, row, name))
            out.append(_verdict(comparison, row, name))
    return out


def _label(comparison: Comparison, row: Row) -> str:
    """A group's name in verdicts; with several baselines, which one it is held against."""
    if comparison.within and row.versus is not None:
        return f"{row.group.label} (vs {row.versus.group.label})"
    return row.group.label


def _equivalence_verdict(comparison: Comparison, row: Row, metric: str) -> str:
    """ "equivalent within ±margin (TOST p = ...)" only when TOST rejects after Holm; never
    because a difference was not shown."""
    cell, label = row.cells[metric], _label(comparison, row)
    result, margin = cell.equivalence, f"±{comparison.margin:g}"
    if result is None:
        return f"{label}: no {metric} to test for equivalence with the baseline"
    confidence = round(100 * (1 - 2 * comparison.alpha))
    seeds = f"{result.n} {'paired ' if result.test == 'paired' else ''}seed{'s' * (result.n != 1)}"
    interval = _ci_text(f"{confidence}% CI of Δ", result.ci)[1:-1]
    if math.isnan(cell.tost_adjusted):
        return f"{label}: {metric} not shown equivalent within {margin}: no TOST with {seeds}"
    holm = " (Holm)" if comparison.family.get(metric, 1) > 1 else ""
    tost = f"TOST p{holm} = {_p(cell.tost_adjusted)}, {interval}, {seeds}"
    if cell.equivalent:
        return f"{label}: {metric} equivalent to the baseline within {margin} ({tost})"
    return f"{label}: {metric} not shown equivalent within {margin} ({tost})"


def _verdict(comparison: Comparison, row: Row, metric: str) -> str:
    cell, label = row.cells[metric], _label(comparison, row)
    diff, effect = cell.diff, cell.effect
    if diff is None or effect is None:
        return f"{label}: no {metric} to compare with the baseline"
    if diff.value == 0:
        return f"{label} leaves {metric} unchanged (Δ = 0)"
    verb = "raises" if diff.value > 0 else "lowers"
    better = comparison.spec(metric).improves(diff.value)
    judged = "" if better is None else f", {'better' if better else 'worse'}"
    # Without a direction there is no "better": the share of pairs where the group is higher.
    chance = "P(higher)" if better is None else "P(better)"
    method = "BCa CI" if comparison.ci == "bootstrap" else "CI"
    text = (
        f"{label} {verb} {metric} by {abs(diff.value):.3g} ({_percent(effect.relative)}"
        f"{judged}) {_ci_text(f'95% {method}', diff.ci)}, "
        f"{'d_z' if effect.paired else 'd'} = {_num(effect.d, signed=True, digits=2)}, "
        f"{chance} = {_num(effect.prob_improvement, digits=2)}"
    )
    seeds = f"{diff.n} {'paired ' if diff.test == 'paired' else ''}seed{'s' * (diff.n != 1)}"
    gone = cell.left_out + row.versus.cells[metric].left_out if row.versus else cell.left_out
    if gone:  # the rest of the runs only: said where the claim is read
        seeds += f" ({len(gone)} seed(s) left out, their values unusable: see the notes)"
    if math.isnan(cell.p_adjusted):
        return f"{text}: no test with {seeds}"
    text += f", Holm p = {_p(cell.p_adjusted)}"
    if cell.shown:
        return f"{text}: shown with {seeds}"
    return f"{text}: not shown with {seeds}; {_seeds_verdict(cell, effect)}"


def _seeds_verdict(cell: Cell, effect: Effect) -> str:
    """The seeds needed in words: for the observed effect, then the range its CI allows, e.g.
    "about 17 needed if the true effect is as observed; at least 9 by these seeds [95% CI of
    d_z -0.2, 1.8], possibly no finite number"."""
    seeds = cell.seeds_range
    if seeds is None or not seeds.estimated:
        return "no estimate of the seeds needed"
    beyond = f"more than {MAX_SEEDS}"
    observed = beyond if seeds.observed is None else f"about {seeds.observed}"
    ci = _ci_text(f"{CONFIDENCE:.0%} CI of {'d_z' if effect.paired else 'd'}", effect.ci)
    if seeds.low is None:
        span = f"{beyond} by these seeds {ci}"
    elif seeds.unbounded:
        span = f"at least {seeds.low} by these seeds {ci}, possibly no finite number"
    else:
        span = f"{seeds.low} to {_count(seeds.high).replace('>', 'more than ')} by these seeds {ci}"
    return f"{observed} needed if the true effect is as observed; {span}"


def _ci_text(name: str, ci: tuple[float, float]) -> str:
    """``[95% CI a, b]``, or ``[no CI]`` when there is none (too few values)."""
    interval = _interval(ci, 2)
    return "[no CI]" if interval == "—" else f"[{name} {interval[1:-1]}]"


def claim_lines(comparison: Comparison) -> list[str]:
    """The experiment's question above its table: its name, the claim and what is compared."""
    experiment = comparison.experiment
    if experiment is None:
        return []
    margin = f"; equivalence margin ±{comparison.margin:g}" if comparison.margin else ""
    found = answer(comparison)
    return [
        f"Experiment {experiment.name}: {experiment.claim}",
        *([found.line] if found else []),
        f"Compared: {', '.join(comparison.metrics)} at {comparison.at}{margin}.",
    ]


# The console table's columns by default (it fits 120 columns): per metric its mean ± std, and
# for the first metric also its CI, Δ % and Holm p; every column with ``full`` (compare
# --all-columns), as comparison.md and .csv always have.
SHORT_FIRST = ("mean ± std", "95% CI", "Δ %", "p (Holm)")


def short_columns(comparison: Comparison) -> list[int]:
    """Indices of ``header``'s columns the console shows by default."""
    keep = list(range(len(comparison.varying) + 1))  # the varying keys and n
    position = len(keep)
    for i, _metric in enumerate(comparison.metrics):
        names = ["mean ± std", "95% CI"] + (list(VERSUS) if comparison.baseline else [])
        for name in names:
            if name in (SHORT_FIRST if i == 0 else SHORT_FIRST[:1]):
                keep.append(position)
            position += 1
    if comparison.baseline is not None:
        position += 1  # the test's name: in the caption's words already
    return [*keep, position]  # notes


def rich_table(comparison: Comparison, full: bool = False) -> Any:
    """The console table; without ``full`` the columns of ``short_columns``. No header or cell
    is cut: a column too narrow folds its text onto more lines."""
    from rich.table import Table

    names = header(comparison)
    shown = range(len(names)) if full else short_columns(comparison)
    extra = "" if full else " Console: fewer columns (compare --all-columns for every one)."
    table = Table(title="comparison over seeds", caption=caption(comparison) + extra)
    for i in shown:
        justify = "left" if names[i] in ("notes", "test") else "right"
        table.add_column(names[i], justify=justify, overflow="fold")
    for row in comparison.rows:
        style = "bold green" if row.is_best else ("cyan" if row.is_baseline else None)
        texts = cells(comparison, row)
        table.add_row(*(texts[i] for i in shown), style=style)
    return table


def markdown(comparison: Comparison) -> str:
    names = header(comparison)
    lines = ["# Comparison over seeds", ""]
    lines += [f"{line}\n" for line in claim_lines(comparison)]
    lines += [caption(comparison), ""]
    lines.append("| " + " | ".join(map(_md, names)) + " |")
    lines.append("|" + "|".join("---" if n == "notes" else "---:" for n in names) + "|")
    for row in comparison.rows:
        texts = [_md(t) for t in cells(comparison, row)]
        if row.is_best:
            texts = [f"**{t}**" if t else t for t in texts]
        lines.append("| " + " | ".join(texts) + " |")
    found = verdicts(comparison)
    if found:
        lines += ["", f"Verdicts ({', '.join(comparison.metrics)} against the baseline):", ""]
        lines += [f"- {verdict}" for verdict in found]
    expected = expectation_lines(comparison)
    if expected:
        lines += ["", "Expectations (experiment.expect):", ""] + [f"- {x}" for x in expected]
    if comparison.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in comparison.notes]
    return "\n".join(lines) + "\n"


def expectation_lines(comparison: Comparison) -> list[str]:
    """Each of the experiment's expectations, shown or not, with its numbers."""
    found = answer(comparison)
    if found is None:
        return []
    return [f"{'shown' if f.shown else 'not shown'}: {f.text}" for f in found.findings]


def _md(text: str) -> str:
    """A Markdown table cell: a ``|`` in it (a value like 'a|b') would end the cell."""
    return text.replace("|", "\\|")


def latex(comparison: Comparison) -> str:
    """A tabular with booktabs rules (\\usepackage{booktabs} in the preamble)."""
    names = header(comparison)
    lines = [
        "% needs \\usepackage{booktabs} (\\toprule, \\midrule, \\bottomrule)",
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
    """``text`` with LaTeX's special characters escaped (one pass: an escape's own braces and
    backslashes are never escaped again)."""
    special = {
        "\\": "\\textbackslash{}",
        "_": "\\_",
        "%": "\\%",
        "&": "\\&",
        "#": "\\#",
        "$": "\\$",
        "{": "\\{",
        "}": "\\}",
        "~": "\\textasciitilde{}",
        "^": "\\textasciicircum{}",
    }
    text = "".join(special.get(char, char) for char in text)
    for char, escaped in (
        ("Δ", "$\\Delta$"),
        ("—", "--"),
        ("∞", "$\\infty$"),
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
            ci_method=comparison.ci,
        )
        for metric, cell in row.cells.items():
            record.update(_csv_metric(metric, cell))
        out.append(record)
    return out


def _csv_metric(metric: str, cell: Cell) -> dict[str, Any]:
    stats, diff = cell.stats, cell.diff
    return {
        f"{metric}_n": stats.n if stats else 0,
        f"{metric}_seeds": " ".join(str(seed) for seed, _ in cell.values),
        f"{metric}_seeds_left_out": " ".join(str(seed) for seed, _ in cell.left_out),
        f"{metric}_mean": stats.mean if stats else NAN,
        f"{metric}_std": stats.std if stats else NAN,
        f"{metric}_ci_low": stats.ci[0] if stats else NAN,
        f"{metric}_ci_high": stats.ci[1] if stats else NAN,
        # t, or how it was kept inside the metric's range (log/logit scale, clipped); "": none
        f"{metric}_ci_kind": stats.interval if stats else "",
        f"{metric}_diff": diff.value if diff else NAN,
        f"{metric}_diff_ci_low": diff.ci[0] if diff else NAN,
        f"{metric}_diff_ci_high": diff.ci[1] if diff else NAN,
        f"{metric}_p": diff.p if diff else NAN,
        f"{metric}_test": diff.test if diff else "",
        **_csv_effect(metric, cell),
    }


def _csv_effect(metric: str, cell: Cell) -> dict[str, Any]:
    effect = cell.effect
    return {
        f"{metric}_p_holm": cell.p_adjusted,
        f"{metric}_shown": cell.shown,
        f"{metric}_rel_change_pct": effect.relative if effect else NAN,
        f"{metric}_effect_size": effect.d if effect else NAN,
        f"{metric}_effect_size_kind": ("d_z" if effect.paired else "d") if effect else "",
        f"{metric}_prob_improvement": effect.prob_improvement if effect else NAN,
        **_csv_seeds(metric, cell),
        **_csv_equivalence(metric, cell),
    }


def _csv_seeds(metric: str, cell: Cell) -> dict[str, Any]:
    """The seeds needed, the range the CI of d implies (integers, blank for none) and a note
    that says why a blank is blank; with the CI of d itself."""
    seeds, effect = cell.seeds_range, cell.effect
    counted = seeds is not None and seeds.estimated

    def count(n: int | None) -> int | str:
        return n if counted and n is not None else ""

    return {
        f"{metric}_effect_size_ci_low": effect.ci[0] if effect else NAN,
        f"{metric}_effect_size_ci_high": effect.ci[1] if effect else NAN,
        f"{metric}_seeds_needed": count(cell.seeds_needed),
        f"{metric}_seeds_needed_low": count(seeds.low if seeds else None),
        f"{metric}_seeds_needed_high": count(seeds.high if seeds else None),
        f"{metric}_seeds_needed_note": seeds_note(cell),
    }


def _csv_equivalence(metric: str, cell: Cell) -> dict[str, Any]:
    """TOST columns, only for the metric that has an equivalence margin."""
    result = cell.equivalence
    if result is None:
        return {}
    return {
        f"{metric}_margin": result.margin,
        f"{metric}_tost_p": result.p,
        f"{metric}_tost_p_holm": cell.tost_adjusted,
        f"{metric}_equivalent": cell.equivalent,
    }


def write_tables(comparison: Comparison, out_dir: Path, tex: bool = False) -> list[Path]:
    """comparison.md and comparison.csv (and comparison.tex) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path, tex_path = (out_dir / name for name in TABLE_FILES)
    # Each replaced whole (atomic_text): a link planted under a name is never written through.
    atomic_text(md, markdown(comparison))
    rows = csv_rows(comparison)
    text = io.StringIO(newline="")
    # Every row's keys: TOST columns exist only for groups tested against the baseline.
    names = list(dict.fromkeys(k for r in rows for k in r)) or ["group"]
    writer = csv.DictWriter(text, fieldnames=names, restval="")
    writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
    atomic_text(csv_path, text.getvalue())
    written = [md, csv_path]
    if tex:
        atomic_text(tex_path, latex(comparison))
        written.append(tex_path)
    return written


def _csv_value(value: Any) -> Any:
    # repr round-trips floats exactly, so the CSV can be checked against a direct computation.
    return repr(value) if isinstance(value, float) else value
