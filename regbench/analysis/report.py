"""`regbench report PATH`: one self-contained, printable HTML page for a run or a sweep.

Everything is inside the file: the comparison table, every plot (PNG as base64 data URIs) and the
resolved configs; it needs no network, no other files and no JavaScript.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from regbench.analysis.comparison import Comparison, compare
from regbench.analysis.tables import caption, cells, claim_lines, header, verdicts, write_tables
from regbench.core.rundir import CONFIG, MAX_YAML_BYTES, atomic_text, read_regular

REPORT = "report.html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 32 << 20  # far above any figure regbench draws (a few hundred KB)
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f2f2f2; } tr.best td { background: #e8f6e8; font-weight: 600; }
tr.baseline td { background: #f5f5ff; }
figure { display: inline-block; margin: .5em; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #ddd; }
figcaption { font-size: 12px; color: #555; text-align: center; }
pre { background: #f7f7f7; padding: .6em; font-size: 12px; overflow-x: auto; }
.notes li { color: #7a5a00; }
@media print { figure img { max-width: 45%; } details { display: block; } summary { display: none; }
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
    runs = [run for row in comparison.rows for run in row.group.runs]
    parts = [
        f"<h1>regbench report: {html.escape(path.name)}</h1>",
        f"<p>{html.escape(str(path.resolve()))} · {len(runs)} run(s) · written "
        f"{time.strftime('%Y-%m-%d %H:%M')}</p>",
        *(f"<p><b>{html.escape(line)}</b></p>" for line in claim_lines(comparison)),
        "<h2>Comparison</h2>",
        _table(comparison),
        f"<p>{html.escape(caption(comparison))}</p>",
        _verdicts(verdicts(comparison), ", ".join(comparison.metrics)),
        _notes(comparison.notes),
    ]
    if comparison_plots:
        parts += ["<h2>Comparison plots</h2>", *(_figure(p, p.stem) for p in comparison_plots)]
    parts.append("<h2>Runs</h2>")
    for run in runs:
        parts.append(_run_section(run.path, run.status))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>regbench report: {html.escape(path.name)}</title><style>{STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _table(comparison: Comparison) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header(comparison))
    rows = []
    for row in comparison.rows:
        css = "best" if row.is_best else "baseline" if row.is_baseline else ""
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells(comparison, row))
        rows.append(f"<tr class='{css}'>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _verdicts(found: list[str], metrics: str) -> str:
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(v)}</li>" for v in found)
    return f"<h3>Verdicts ({html.escape(metrics)} against the baseline)</h3><ul>{items}</ul>"


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    return "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"


def _run_section(run: Path, status: str) -> str:
    figures = "".join(_figure(p, p.stem) for p in sorted(run.glob("*.png")))
    config = html.escape(_config_text(run / CONFIG))
    return (
        f"<h3>{html.escape(run.parent.name)}/{html.escape(run.name)} — {html.escape(status)}</h3>"
        f"{figures}<details><summary>resolved config</summary><pre>{config}</pre></details>"
    )


def _config_text(path: Path) -> str:
    """config.yaml as text, when it is a regular file of the run folder (not a link)."""
    data = read_regular(path, MAX_YAML_BYTES)
    if data is None:
        return f"(not shown: {path.name} is not a regular file of at most {MAX_YAML_BYTES} bytes)"
    return data.decode("utf-8", errors="replace")


def _figure(png: Path, label: str) -> str:
    """``png`` embedded, when it is a regular file (not a link, which could point anywhere, say
    at a key) that is a PNG by its first bytes; nothing otherwise."""
    content = read_regular(png, MAX_PNG_BYTES)
    if content is None or not content.startswith(PNG_SIGNATURE):
        return ""
    data = base64.b64encode(content).decode("ascii")
    return (
        f"<figure><img alt='{html.escape(label)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{html.escape(label)}</figcaption></figure>"
    )
