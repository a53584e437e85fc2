"""`regbench report`: one self-contained HTML page, checked as text and in a real browser."""

from __future__ import annotations

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
    # Nothing is loaded from elsewhere: no external src/href at all.
    assert not re.search(r"(src|href)=['\"](?!data:)", page)


def test_report_on_a_single_run(cli, runs_folder: Path) -> None:
    run = run_dirs(runs_folder)[0]
    assert cli("report", str(run)).exit_code == 0
    assert "loss_curve" in (run / "report.html").read_text()


def test_report_of_a_folder_without_runs(cli, tmp_path: Path) -> None:
    result = cli("report", str(tmp_path))
    assert result.exit_code == 2 and "no regbench runs" in result.stderr


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
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1600",
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
    assert pixels.std() > 0.05  # text, table and figures, not a uniform colour
