"""The folder tree is the architecture: a folder imports only folders below it.

Every ``regbench`` import is read from the source (imports inside functions count too), so a
move that breaks the order fails here, not in a review."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "regbench"
# Bottom to top. A folder may import its own modules and any folder of a lower rank.
LAYERS = {
    "core": 0,  # config declarations, errors, run folders, jobs, seeding, registry
    "figures": 1,  # drawing in workers, axes, titles
    "regularization": 2,  # dropout, penalties, weight statistics, MC dropout
    "data": 2,  # data sources and their splits
    "studies": 3,  # one module per study
    "compose": 4,  # Hydra: configs + overrides -> Settings (the only user of hydra._internal)
    "training": 5,  # the run life cycle: session, loop, loggers
    "stacked": 6,  # the stacked launcher
    "analysis": 6,  # runs table, statistics, comparison, tables, report
    "sweeps": 7,  # plans, launchers, searches
    "": 8,  # regbench/*.py: the workflow, the API and the public import paths
    "cli": 9,  # the command line
}
# The public import paths for plug-in studies: the outside world's, never imported inside.
FACADES = {"regbench.config", "regbench.regularize"}


def folder_of(module: str) -> str:
    """The layer folder of a module name ("" for regbench/*.py; ``python -m regbench`` is the
    command line's)."""
    first = module.split(".")[1:2]
    if first == ["__main__"]:
        return "cli"
    return first[0] if first and (PACKAGE / first[0]).is_dir() else ""


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("regbench")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "regbench":
                names |= {f"regbench.{a.name}" for a in node.names}
            elif node.module.startswith("regbench."):
                names.add(node.module)
    return names


def test_every_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS), f"give these folders a layer: {folders - set(LAYERS)}"


def test_a_folder_imports_only_folders_below_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for name in imported(path):
            if name in FACADES:
                upward.append(f"{here} imports the public facade {name}")
                continue
            mine, theirs = folder_of(here), folder_of(name)
            if mine != theirs and LAYERS[theirs] >= LAYERS[mine]:
                upward.append(f"{here} ({mine or 'top'}) imports {name} ({theirs or 'top'})")
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)


def test_hydra_internals_are_used_in_one_module():
    users = sorted(
        module_name(p) for p in PACKAGE.rglob("*.py") if "hydra._internal" in p.read_text()
    )
    assert users == ["regbench.compose.hydra"], users
