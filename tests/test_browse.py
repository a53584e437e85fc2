"""A sweep folder people can browse: by-settings/ holds a readable name for each job folder
(`dropout=0.5,seed=2 -> ../<hash>-seed=2`), which regbench never writes through and which
`compare` never counts twice; the naming rules on literal values."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from regbench.core.errors import Notice, UsageError
from regbench.core.rundir import RunDir
from regbench.sweeps.browse import MAX_NAME, link_names, shortened, write_links
from regbench.sweeps.plan import job_state
from tests.test_compare import read_csv

TINY = ("model=regression", "epochs=2", "threads=1", "device=cpu")
KEY = re.compile(r"[0-9a-f]{10}-seed=\d+")


def names(sweep: Path) -> dict[str, str]:
    """by-settings/'s links: name -> target as written."""
    return {p.name: os.readlink(p) for p in (sweep / "by-settings").iterdir() if p.is_symlink()}


def settings_of(job: Path) -> str:
    config = yaml.safe_load((job / "config.yaml").read_text())
    return f"dropout={config['dropout']:g},seed={config['seed']}"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- a sweep
@pytest.mark.slow
def test_a_sweep_names_its_jobs_and_each_run_is_counted_once(cli, tmp_path: Path) -> None:
    result = cli("sweep", *TINY, "dropout=0,0.5", "seed=1,2", "--dir", "D", "-q")
    assert result.exit_code == 0, result.stderr
    sweep = tmp_path / "D"
    links = names(sweep)
    expected = {"dropout=0,seed=1", "dropout=0,seed=2", "dropout=0.5,seed=1", "dropout=0.5,seed=2"}
    assert set(links) == expected
    for name, target in links.items():
        assert target.startswith("../") and KEY.fullmatch(target[3:])  # relative, in the sweep
        assert settings_of(sweep / "by-settings" / name) == name
    assert [r["n"] for r in read_csv(sweep / "comparison.csv")] == ["2", "2"]  # the sweep's own

    assert cli("compare", "D", "--no-plots").exit_code == 0
    assert [r["n"] for r in read_csv(sweep / "comparison.csv")] == ["2", "2"]  # 4 runs, not 8

    # A readable name opens the job folder it names: a redraw writes there, the link stays.
    link = sweep / "by-settings" / "dropout=0.5,seed=1"
    job = sweep / links["dropout=0.5,seed=1"][3:]
    (job / "loss_curve.png").unlink()
    assert RunDir.open(link).path == job.resolve()
    assert cli("plot", str(link)).exit_code == 0
    assert (job / "loss_curve.png").is_file() and link.is_symlink()

    # Relative links: a copy of the folder names its own job folders.
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy, symlinks=True)
    assert (copy / "by-settings" / "dropout=0,seed=1").resolve().parent == copy.resolve()


@pytest.mark.slow
def test_an_old_sweep_grows_names_and_planted_links_are_not_followed(cli, tmp_path: Path) -> None:
    assert cli("sweep", *TINY, "dropout=0,0.5", "seed=1", "--dir", "D", "-q").exit_code == 0
    sweep, outside = tmp_path / "D", tmp_path / "outside"
    assert set(names(sweep)) == {"dropout=0", "dropout=0.5"}  # one seed: it does not vary
    shutil.rmtree(sweep / "by-settings")  # a sweep made before readable names
    assert cli("compare", "D", "--no-plots").exit_code == 0  # compares as it did
    assert [r["n"] for r in read_csv(sweep / "comparison.csv")] == ["1", "1"]

    # A received folder with links planted: names regbench is to write, pointing at a run
    # elsewhere and at a file; a name not regbench's; a link beside the job folders.
    shutil.copytree(next(p for p in sweep.iterdir() if KEY.fullmatch(p.name)), outside / "run")
    (outside / "notes.txt").write_text("mine\n")
    before = snapshot(outside)
    browse = sweep / "by-settings"
    browse.mkdir()
    (browse / "dropout=0,seed=1").symlink_to(outside / "run")
    (browse / "dropout=0.5,seed=1").symlink_to(outside / "notes.txt")
    (browse / "elsewhere").symlink_to(outside / "run")
    (sweep / "elsewhere").symlink_to(outside / "run")

    grown = cli("sweep", *TINY, "dropout=0,0.5", "seed=1,2", "--dir", "D", "-q")
    assert grown.exit_code == 0, grown.stderr
    assert "skipped" in grown.stderr
    links = names(sweep)  # every job, old and new, named; now the seed varies
    expected = {"dropout=0,seed=1", "dropout=0,seed=2", "dropout=0.5,seed=1", "dropout=0.5,seed=2"}
    assert set(links) == {*expected, "elsewhere"}
    assert all(links[name].startswith("../") for name in expected)  # the links replaced
    assert links["elsewhere"] == str(outside / "run")  # not regbench's: left as it is
    assert snapshot(outside) == before  # nothing written through a link
    assert [r["n"] for r in read_csv(sweep / "comparison.csv")] == ["2", "2"]  # not the outside
    assert cli("compare", "D", "--no-plots").exit_code == 0
    assert [r["n"] for r in read_csv(sweep / "comparison.csv")] == ["2", "2"]


def test_names_follow_the_grid_as_it_grows(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    jobs = {
        f"{h * 10}-seed={s}": {"overrides": ["dropout=0", f"seed={s}"]} for h, s in ("a1", "b2")
    }
    for key in jobs:
        (sweep / key).mkdir(parents=True)
    write_links(sweep, jobs)
    assert set(names(sweep)) == {"seed=1", "seed=2"}
    (sweep / "by-settings" / ".seed=1.0badf00d").symlink_to("../aaaaaaaaaa-seed=1")  # a killed
    (sweep / "cccccccccc-seed=1").mkdir()  # sweep's leftover; a new dropout value
    jobs["cccccccccc-seed=1"] = {"overrides": ["dropout=0.5", "seed=1"]}
    write_links(sweep, jobs)
    assert names(sweep) == {
        "dropout=0,seed=1": "../aaaaaaaaaa-seed=1",
        "dropout=0,seed=2": "../bbbbbbbbbb-seed=2",
        "dropout=0.5,seed=1": "../cccccccccc-seed=1",
    }


def test_a_job_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    planted = tmp_path / "0123456789-seed=1"
    planted.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="is a link; regbench writes no run through a link"):
        job_state(planted)


def test_a_by_settings_that_is_not_a_folder_is_left_alone(tmp_path: Path) -> None:
    sweep, outside = tmp_path / "sweep", tmp_path / "outside"
    (sweep / "0123456789-seed=1").mkdir(parents=True)
    outside.mkdir()
    (sweep / "by-settings").symlink_to(outside)
    jobs = {"0123456789-seed=1": {"overrides": ["seed=1"]}, "../../x-seed=1": {}}
    with pytest.warns(Notice, match="is not a folder"):
        write_links(sweep, jobs)
    assert list(outside.iterdir()) == []
    (sweep / "by-settings").unlink()
    (sweep / "by-settings").mkdir()
    (sweep / "by-settings" / "seed=1").mkdir()  # a real folder under a name regbench writes
    with pytest.warns(Notice, match="not a link regbench made"):
        write_links(sweep, jobs)
    assert (sweep / "by-settings" / "seed=1").is_dir()
    assert [p.name for p in (sweep / "by-settings").iterdir()] == ["seed=1"]  # no ../../x link


# ----------------------------------------------------------------------------- the names
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.0001", "0.0001"),
        ("1e-05", "1e-05"),
        ("0.123456", "0.1235"),
        ("0.5", "0.5"),
        ("3", "3"),
        ("100000", "100000"),
        ("[0.123456,2]", "[0.1235,2]"),
        ("adam", "adam"),
        ("nan", "nan"),
    ],
)
def test_values_keep_four_significant_digits(value: str, shown: str) -> None:
    assert shortened(value) == shown


def test_names_hold_the_varying_keys_in_order() -> None:
    jobs = {
        "aaaaaaaaaa-seed=1": ["epochs=2", "dropout=0", "seed=1"],
        "bbbbbbbbbb-seed=2": ["epochs=2", "dropout=0", "seed=2"],
        "cccccccccc-seed=1": ["epochs=2", "dropout=0.5", "seed=1"],
    }
    assert list(link_names(jobs).values()) == [
        "dropout=0,seed=1",
        "dropout=0,seed=2",
        "dropout=0.5,seed=1",
    ]
    assert link_names({"aaaaaaaaaa-seed=7": ["model=mlp", "seed=7"]}) == {
        "aaaaaaaaaa-seed=7": "seed=7"  # one job: its seed
    }


def test_unsafe_characters_are_escaped() -> None:
    jobs = {"a-seed=1": ["data/source=a b", "seed=1"], "b-seed=1": ["data/source=50%", "seed=1"]}
    assert list(link_names(jobs).values()) == ["data%2Fsource=a%20b", "data%2Fsource=50%25"]


def test_long_and_clashing_names_get_a_hash_suffix() -> None:
    long = {f"k{i}-seed=1": [f"tag={'é' * 100}{i}", "seed=1"] for i in range(2)}
    cut = list(link_names(long).values())
    assert all(len(n.encode()) <= MAX_NAME and re.search(r"~[0-9a-f]{8}$", n) for n in cut)
    assert cut[0] != cut[1]
    # 4 significant digits make two values one name; and Adam/adam, one on macOS.
    clash = {
        "a-seed=1": ["l2=0.00012341"],
        "b-seed=1": ["l2=0.00012342"],
        "c-seed=1": ["l2=0.5"],
        "d-seed=1": ["l2=Adam"],
        "e-seed=1": ["l2=adam"],
    }
    named = link_names(clash)
    assert named["c-seed=1"] == "l2=0.5"
    for key in ("a-seed=1", "b-seed=1"):
        assert re.fullmatch(r"l2=0\.0001234~[0-9a-f]{8}", named[key])
    assert len({n.casefold() for n in named.values()}) == 5
