"""`regbench report PATH`: one self-contained, printable HTML page for a run or a sweep.

Everything is inside the file: the comparison table, every figure (PNG as base64 data URIs) and
the resolved configs; it needs no network, no other files and no JavaScript. It says what a
paper's methods section needs: the command, the grid, the versions, the data (source, split,
sizes) and how each run's value was chosen. The table scrolls inside its own box, figures are as
wide as the page and a click shows one at full size (a CSS toggle on the same embedded image).

Size budget: up to FULL_RUNS runs, every run's figures at full size; past that, each run's
figures are downscaled to THUMB_WIDTH pixels and folded away (one click opens a run); past
LOSS_ONLY_RUNS, only each run's loss curve is kept. The page says which applied.
"""

from __future__ import annotations

import base64
import html
import io
import shlex
import time
from pathlib import Path
from typing import Any

from regbench.analysis.comparison import Comparison, compare, show
from regbench.analysis.tables import (
    caption,
    cells,
    claim_lines,
    expectation_lines,
    header,
    verdicts,
    write_tables,
)
from regbench.core.rundir import CONFIG, MAX_YAML_BYTES, RunDir, atomic_text, read_regular
from regbench.figures.axes import value_order

REPORT = "report.html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 32 << 20  # far above any figure regbench draws (a few hundred KB)
FULL_RUNS = 12  # up to this many runs, each run's figures are embedded as drawn
LOSS_ONLY_RUNS = 60  # past this many, a run keeps only its loss curve
THUMB_WIDTH = 640  # pixels: a folded run's figures, downscaled
PALETTE = 64  # colours of a downscaled figure
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1180px; margin: 1.5em auto;
  padding: 0 1.2em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.scroll { overflow-x: auto; max-width: 100%; border: 1px solid #ddd; margin: 1em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
td:first-child, th:first-child { position: sticky; left: 0; background: #fafafa; text-align: left; }
tr.best td { background: #e8f6e8; font-weight: 600; } tr.baseline td { background: #f5f5ff; }
dl.methods { display: grid; grid-template-columns: max-content 1fr; gap: .25em 1em; }
dl.methods dt { font-weight: 600; } dl.methods dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 1em 0; } figcaption { font-size: 12px; color: #555; }
figure img { width: 100%; height: auto; border: 1px solid #ddd; cursor: zoom-in; }
.zoom input { display: none; }
.zoom input:checked + img { position: fixed; inset: 0; width: auto; height: auto;
  max-width: none; max-height: 100vh; margin: auto; z-index: 10; cursor: zoom-out;
  box-shadow: 0 0 0 100vmax rgba(0, 0, 0, .75); background: white; overflow: auto; }
pre { background: #f7f7f7; padding: .6em; font-size: 12px; overflow-x: auto; }
.notes li { color: #7a5a00; } .budget { color: #555; font-style: italic; }
@media print { figure img { width: 100%; } details { display: block; } summary { display: none; }
  h2 { page-break-after: avoid; } figure { page-break-inside: avoid; } }
"""


def write_report(
    path: Path, comparison: Comparison | None = None, plots: list[Path] | None = None
) -> Path:
    """Write ``report.html`` into the run or sweep folder ``path``; return its path. A
    ``comparison`` of ``path`` already made, and the comparison ``plots`` already drawn, are
    used as they are (the end of a sweep has both) instead of being made again."""
    from regbench.analysis.compare_plots import write_plots

    comparison = comparison or compare([path])
    if plots is None:
        plots = write_plots(comparison, path) if not (path / CONFIG).is_file() else []
    page = render(path, comparison, plots)
    target = path / REPORT
    atomic_text(target, page)  # replaces a link planted under the name, never writes through it
    return target


def write_comparison(
    comparison: Comparison, out: Path, tex: bool = False, plots: bool = True
) -> list[Path]:
    """comparison.md/.csv (and .tex) and, with ``plots``, the comparison figures, into ``out``."""
    from regbench.analysis.compare_plots import write_plots

    written = write_tables(comparison, out, tex=tex)
    return written + write_plots(comparison, out) if plots else written


def write_sweep_comparison(
    sweep_dir: Path, comparison: Comparison, tex: bool = False
) -> tuple[list[Path], Path | None]:
    """What every sweep ends in, from the CLI or the API: its comparison's tables and figures in
    the sweep folder, and for an experiment's sweep its report (the report's path, else None)."""
    written = write_comparison(comparison, sweep_dir, tex=tex)
    if comparison.experiment is None:
        return written, None
    figures = [p for p in written if p.suffix == ".png"]
    return written, write_report(sweep_dir, comparison, figures)


def render(path: Path, comparison: Comparison, comparison_plots: list[Path]) -> str:
    runs = [(row, run) for row in comparison.rows for run in row.group.runs]
    pngs = [p for p in comparison_plots if p.suffix == ".png"]
    parts = [
        f"<h1>regbench report: {html.escape(path.name)}</h1>",
        f"<p>{html.escape(str(path.resolve()))} · {len(runs)} run(s) · written "
        f"{time.strftime('%Y-%m-%d %H:%M')}</p>",
        *(f"<p><b>{html.escape(line)}</b></p>" for line in claim_lines(comparison)),
        "<h2>Methods</h2>",
        _methods(path, comparison),
        "<h2>Comparison</h2>",
        _table(comparison),
        f"<p>{html.escape(caption(comparison))}</p>",
        _verdicts(verdicts(comparison), ", ".join(comparison.metrics)),
        _expectations(expectation_lines(comparison)),
        _notes(comparison.notes),
    ]
    if pngs:
        parts += ["<h2>Comparison figures</h2>", *(_figure(p, p.stem) for p in pngs)]
    parts += ["<h2>Runs</h2>", f"<p class='budget'>{html.escape(budget_text(len(runs)))}</p>"]
    for row, run in runs:
        heading = _run_heading(row.group.label, run)
        parts.append(_run_section(run.path, run.status, heading, len(runs)))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>regbench report: {html.escape(path.name)}</title><style>{STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def budget_text(runs: int) -> str:
    """What the size budget did to the runs' figures (module docstring)."""
    if runs <= FULL_RUNS:
        return f"{runs} run(s): every run's figures at full size (budget: up to {FULL_RUNS})."
    if runs <= LOSS_ONLY_RUNS:
        return (
            f"{runs} runs, more than {FULL_RUNS}: each run's figures are folded (click a run) "
            f"and downscaled to {THUMB_WIDTH} px wide to keep this page small; the run folders "
            "hold them at full size."
        )
    return (
        f"{runs} runs, more than {LOSS_ONLY_RUNS}: each run shows only its loss curve, folded "
        f"and downscaled to {THUMB_WIDTH} px; the run folders hold every figure."
    )


def _run_heading(label: str, run: Any) -> str:
    """A run by its settings: its group's varying keys and its seed (the folder in small)."""
    settings = label if label != "all runs" else "run"
    return f"{settings} · seed {show(run.seed)}"


def _methods(path: Path, comparison: Comparison) -> str:
    """What a methods section needs: the command, the grid, versions, data, split, selection."""
    first = next((run for row in comparison.rows for run in row.group.runs), None)
    summary = RunDir(first.path).summary_or_none() if first is not None else None
    environment = (summary.environment if summary else None) or {}
    data = (summary.data if summary else None) or {}
    items = [
        ("command", _commands(path, comparison)),
        ("grid", _grid(path, comparison)),
        ("versions", _versions(environment, summary)),
        ("data", _data_text(data, comparison)),
        ("split", str(data.get("split") or "as the data source defines it")),
        ("each run's value", _selection(comparison)),
        ("groups", f"{len(comparison.rows)} groups of runs equal in every setting but the seed"),
    ]
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f"<dl class='methods'>{rows}</dl>"


def _commands(path: Path, comparison: Comparison) -> str:
    """The commands that made the runs, each once (a sweep's own record first)."""
    import json

    from regbench.core.jobs import SWEEP_FILE

    found: list[str] = []
    record = read_regular(path / SWEEP_FILE, MAX_YAML_BYTES)
    if record is not None:
        try:
            for invocation in json.loads(record).get("invocations", []):
                found.append(_argv_text(invocation.get("argv") or []))
        except (ValueError, AttributeError):
            pass
    for row in comparison.rows:
        for run in row.group.runs:
            summary = RunDir(run.path).summary_or_none()
            argv = ((summary.environment if summary else None) or {}).get("argv")
            found.append(_argv_text(argv or []))
    distinct = [c for c in dict.fromkeys(found) if c]
    shown = "; ".join(distinct[:3])
    return shown + (f"; and {len(distinct) - 3} more" if len(distinct) > 3 else "") or "unknown"


def _argv_text(argv: list[Any]) -> str:
    if not argv:
        return ""
    words = [str(a) for a in argv]
    words[0] = Path(words[0]).name  # the venv's path says nothing to a reader
    return shlex.join(words)


def _grid(path: Path, comparison: Comparison) -> str:
    """Each varying key's values in order, and the seeds."""
    values: dict[str, list[str]] = {}
    for key in comparison.varying:
        in_order = value_order([row.group.config.get(key) for row in comparison.rows])
        values[key] = [show(v) for v in in_order]
    seeds = value_order([run.seed for row in comparison.rows for run in row.group.runs])
    values["seed"] = [show(seed) for seed in seeds]
    return "; ".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in values.items())


def _versions(environment: dict[str, Any], summary: Any) -> str:
    shown = [f"{k} {environment[k]}" for k in ("regbench", "torch", "python") if environment.get(k)]
    device = (summary.device if summary else None) or "?"
    gpu = environment.get("gpu")
    shown.append(f"device {device}" + (f" ({gpu})" if gpu else ""))
    if environment.get("platform"):
        shown.append(str(environment["platform"]))
    return ", ".join(shown)


def _data_text(data: dict[str, Any], comparison: Comparison) -> str:
    used = {str(row.group.config.get("data.used")) for row in comparison.rows}
    sizes = f"train {data.get('n_train', '?')}, validation {data.get('n_val', 0)}, test " + str(
        data.get("n_test", "?")
    )
    text = f"{data.get('name', '?')}: {data.get('source') or ''} ({sizes} examples)"
    if len(used) > 1:
        text += f"; the groups differ in data: {', '.join(sorted(used))}"
    return text


def _selection(comparison: Comparison) -> str:
    if comparison.at == "best" and comparison.select is not None:
        rule = "max" if comparison.select.direction == "max" else "min"
        return (
            f"at the epoch with the best {comparison.select.name} ({rule}imum, validation "
            "data); every metric reported at that epoch, test data never used to choose"
        )
    if comparison.at == "final":
        return "at each run's final evaluation (no selection)"
    return f"at {comparison.at} (the same epoch for every run)"


def _table(comparison: Comparison) -> str:
    """The comparison table in its own scrolling box: nothing of it is cut, however wide."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header(comparison))
    rows = []
    for row in comparison.rows:
        css = "best" if row.is_best else "baseline" if row.is_baseline else ""
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells(comparison, row))
        rows.append(f"<tr class='{css}'>{tds}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f"<div class='scroll'>{table}</div>"


def _verdicts(found: list[str], metrics: str) -> str:
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(v)}</li>" for v in found)
    return f"<h3>Verdicts ({html.escape(metrics)} against the baseline)</h3><ul>{items}</ul>"


def _expectations(found: list[str]) -> str:
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in found)
    return f"<h3>Expectations (experiment.expect)</h3><ul>{items}</ul>"


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    return "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"


def _run_section(run: Path, status: str, heading: str = "", runs: int = 1) -> str:
    """A run headed by its settings: its figures (within the size budget) and its config."""
    pngs = sorted(run.glob("*.png"))
    if runs > LOSS_ONLY_RUNS:
        pngs = [p for p in pngs if p.stem == "loss_curve"]
    width = THUMB_WIDTH if runs > FULL_RUNS else None
    figures = "".join(_figure(p, p.stem, width) for p in pngs)
    config = html.escape(_config_text(run / CONFIG))
    title = (
        f"{html.escape(heading or run.name)} — {html.escape(str(status))} "
        f"<small>({html.escape(run.parent.name)}/{html.escape(run.name)})</small>"
    )
    details = f"<details><summary>resolved config</summary><pre>{config}</pre></details>"
    if width is not None:
        return f"<details><summary><b>{title}</b></summary>{figures}{details}</details>"
    return f"<h3>{title}</h3>{figures}{details}"


def _config_text(path: Path) -> str:
    """config.yaml as text, when it is a regular file of the run folder (not a link)."""
    data = read_regular(path, MAX_YAML_BYTES)
    if data is None:
        return f"(not shown: {path.name} is not a regular file of at most {MAX_YAML_BYTES} bytes)"
    return data.decode("utf-8", errors="replace")


def _figure(png: Path, label: str, width: int | None = None) -> str:
    """``png`` embedded, when it is a regular file (not a link, which could point anywhere, say
    at a key) that is a PNG by its first bytes; nothing otherwise. ``width``: downscaled to
    that many pixels (the size budget). A click shows it at full size (a CSS toggle: no
    script, no second copy)."""
    content = read_regular(png, MAX_PNG_BYTES)
    if content is None or not content.startswith(PNG_SIGNATURE):
        return ""
    if width is not None:
        content = _downscaled(content, width)
    data = base64.b64encode(content).decode("ascii")
    return (
        f"<figure><label class='zoom'><input type='checkbox'>"
        f"<img alt='{html.escape(label)}' src='data:image/png;base64,{data}'></label>"
        f"<figcaption>{html.escape(label)} (click to enlarge)</figcaption></figure>"
    )


def _downscaled(content: bytes, width: int) -> bytes:
    """The PNG ``content`` at most ``width`` pixels wide, in a palette of PALETTE colours
    (line figures need few: a quarter of the bytes or less)."""
    from PIL import Image

    image = Image.open(io.BytesIO(content)).convert("RGB")
    if image.width > width:
        height = round(image.height * width / image.width)
        image = image.resize((width, height), Image.LANCZOS)
    out = io.BytesIO()
    image.quantize(colors=PALETTE).save(out, format="PNG", optimize=True)
    return out.getvalue()
