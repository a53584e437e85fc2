"""regbench in a real Jupyter kernel (nbclient): after ``regbench.run`` the notebook's inline
plots still render, and the kernel's torch threads, determinism flags and RNGs are its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import regbench

# The notebook's own state, before and after a run that sets all of it (threads=1,
# deterministic=true, seed=3): a JSON dict of which items came back unchanged.
SETUP = """\
%matplotlib inline
import json, random
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

torch.set_num_threads(2)
random.seed(7); np.random.seed(7); torch.manual_seed(7)

def state():
    return {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "fill_uninitialized_memory": torch.utils.deterministic.fill_uninitialized_memory,
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state()[1].tolist(),
        "torch_rng": torch.get_rng_state().tolist(),
        "backend": matplotlib.get_backend(),
    }

before = state()
"""
RUN = """\
import regbench
result = regbench.run({overrides!r})
after = state()
print(json.dumps({{
    "unchanged": {{key: after[key] == before[key] for key in before}},
    "backend": after["backend"],
    "status": result.summary.status,
    "regbench": regbench.__file__,
}}))
"""
PLOT = """\
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [1, 4, 9])
plt.show()
"""


def kernel_here(tmp_path: Path) -> Path:
    """A ``python3`` kernelspec that runs this interpreter with this tree first on its path,
    found before any other (JUPYTER_PATH is searched first): the kernel tests this checkout."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    tree = str(Path(regbench.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")]))
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "regbench under test",
        "language": "python",
        "env": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return tmp_path / "jupyter"


@pytest.mark.slow
def test_inline_plots_render_after_a_run_in_a_real_kernel(
    mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_here(tmp_path)))
    overrides = [
        "model=regression",
        "epochs=1",
        "data.n_train=32",
        "threads=1",
        "deterministic=true",
        "seed=3",
        f"out_dir={tmp_path / 'outputs'}",
    ]
    cells = [SETUP, RUN.format(overrides=overrides), PLOT]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=300, startup_timeout=120
    )
    client.execute(cwd=str(tmp_path))

    run_cell, plot_cell = notebook.cells[1], notebook.cells[2]
    report = json.loads("".join(o["text"] for o in run_cell.outputs if o.get("name") == "stdout"))
    assert Path(report["regbench"]).resolve() == Path(regbench.__file__).resolve()
    assert report["status"] == "completed"
    assert "inline" in report["backend"]
    assert report["unchanged"] == dict.fromkeys(report["unchanged"], True)
    assert set(report["unchanged"]) >= {"threads", "deterministic", "python_rng", "torch_rng"}
    images = [o for o in plot_cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, plot_cell.outputs
