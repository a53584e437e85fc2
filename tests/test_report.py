"""`regbench report`: one self-contained HTML page, checked as text and in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_dirs

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture
def runs_folder(cli, mnist_root: Path, tmp_path: Path) -> Path:
    for dropout in (0.0, 0.5):
        for seed in (1, 2):
            args = (f"dropout={dropout}", f"seed={seed}", "epochs=2", "model.hidden=[16]")
            result = cli("run", *args, f"data.root={mnist_root}", "out_dir=study", "-q")
            assert result.exit_code == 0, result.stderr
    return tmp_path / "study"


def test_report_is_self_contained(cli, runs_folder: Path) -> None:
    result = cli("report", str(runs_folder))
    assert result.exit_code == 0, result.stderr
    page = (runs_folder / "report.html").read_text()
    assert "<table>" in page and "test_loss mean ± std" in page and "95% CI" in page
    # The verdict of the one group against the baseline, with its Holm-adjusted p (issue 15).
    # One per metric compared (issue 15: verdicts beyond the first metric).
    assert "Verdicts (test_loss, test_acc against the baseline)" in page and "p (Holm)" in page
    assert page.count("<li>dropout=0.5 ") == 2 and ("Holm p = " in page or "no test" in page)
    images = re.findall(r"<img [^>]*src='data:image/png;base64,", page)
    per_run = sum(len(list(r.glob("*.png"))) for r in run_dirs(runs_folder))
    assert len(images) >= per_run + 1  # every run's plots plus the comparison figures
    assert page.count("resolved config") == 4 and "dropout: 0.5" in page
    # Runs headed by their settings; what a methods section needs; the table in its own box.
    assert "dropout=0.5 · seed 2" in page and "dropout=0 · seed 1" in page
    for item in ("command", "grid", "versions", "data", "split", "each run&#x27;s value"):
        assert f"<dt>{item}</dt>" in page, item
    assert "dropout ∈ {0, 0.5}; seed ∈ {1, 2}" in page and "torch " in page
    assert "<div class='scroll'><table>" in page
    assert "every run&#x27;s figures at full size" in page  # the size budget, said
    # Nothing is loaded from elsewhere: no external src/href at all.
    assert not re.search(r"(src|href)=['\"](?!data:)", page)


def test_report_on_a_single_run(cli, runs_folder: Path) -> None:
    run = run_dirs(runs_folder)[0]
    assert cli("report", str(run)).exit_code == 0
    assert "loss_curve" in (run / "report.html").read_text()


def test_report_of_a_folder_without_runs(cli, tmp_path: Path) -> None:
    result = cli("report", str(tmp_path))
    assert result.exit_code == 2 and "no regbench runs" in result.stderr


def test_report_size_budget_folds_and_downscales_many_runs(cli, runs_folder, monkeypatch) -> None:
    from regbench.analysis import report

    monkeypatch.setattr(report, "FULL_RUNS", 2)  # four runs are "many" here
    assert cli("report", str(runs_folder)).exit_code == 0
    page = (runs_folder / "report.html").read_text()
    assert "more than 2: each run&#x27;s figures are folded" in page
    assert page.count("<details><summary><b>") == 4
    import base64
    import io

    from PIL import Image

    thumbs = re.findall(r"<details><summary><b>.*?src='data:image/png;base64,([^']+)'", page)
    assert thumbs and all(
        Image.open(io.BytesIO(base64.b64decode(t))).width <= report.THUMB_WIDTH for t in thumbs
    )


def test_report_renders_in_a_headless_browser(cli, runs_folder: Path, tmp_path: Path) -> None:
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    assert cli("report", str(runs_folder)).exit_code == 0
    shot = tmp_path / "report.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1600",
    ]
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", (runs_folder / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    from matplotlib import image

    pixels = image.imread(str(shot))
    assert pixels.shape[1] == 1280
    assert pixels.std() > 0.05  # text, table and figures, not a uniform colour
    # Nothing runs past the page at 1280 px: the right margin is blank (the table scrolls in
    # its own box, figures are as wide as the page, not wider).
    margin = pixels[:, -40:, :3]
    assert margin.min() > 0.95, "something reaches the right edge at 1280 px"


# ----------------------------------------------------------------------------- tables
def test_the_console_table_fits_120_columns_and_cuts_nothing(cli, runs_folder: Path) -> None:
    from rich.console import Console

    from regbench.analysis.comparison import compare
    from regbench.analysis.tables import header, rich_table

    comparison = compare([runs_folder], metrics=["test_loss", "test_acc", "train_loss"])
    console = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(rich_table(comparison))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 120 and "…" not in text
    wide = Console(width=1000, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    wide.print(rich_table(comparison, full=True))
    every = wide.export_text()
    missing = [name for name in header(comparison) if name not in every]
    assert not missing
    columns = {}
    for args in ((), ("--all-columns",)):
        result = cli("compare", str(runs_folder), "--no-plots", *args)
        assert result.exit_code == 0, result.stderr
        columns[args] = max(line.count("│") for line in result.stdout.splitlines())
    assert columns[("--all-columns",)] > columns[()]


def test_markdown_and_latex_escape_their_special_characters() -> None:
    from regbench.analysis import tables

    assert tables._md("a|b") == "a\\|b"
    assert tables._tex("50% of $x_1$ & {y} ~ #2 ^ \\") == (
        "50\\% of \\$x\\_1\\$ \\& \\{y\\} \\textasciitilde{} \\#2 \\textasciicircum{} "
        "\\textbackslash{}"
    )
