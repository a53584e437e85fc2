"""compare on a penalty sweep shows what L1 and L2 did to the weights (issues 5 and 8)."""

from __future__ import annotations

import csv
from pathlib import Path


def test_penalty_sweep_compare_shows_sparsity_norms_and_histograms(cli, tmp_path: Path) -> None:
    sweep = tmp_path / "penalties"
    result = cli(
        "sweep", "model=regression", "l1=0,1e-3", "weight_decay=0,1e-2", "seed=1,2",
        "model.hidden=[32,32]", "optimizer=sgd", "lr=0.05", "epochs=80", "eval_every=40",
        "--dir", str(sweep), "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr

    result = cli("compare", str(sweep))
    assert result.exit_code == 0, result.stderr
    lines = (sweep / "comparison.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| l1"))
    assert "weights_near_zero mean ± std" in header and "weights_l2 mean ± std" in header
    assert (sweep / "comparison_weight_hist.png").stat().st_size > 10_000

    with (sweep / "comparison.csv").open() as f:
        rows = {(float(r["l1"]), float(r["weight_decay"])): r for r in csv.DictReader(f)}
    sparsity = {key: float(r["weights_near_zero_mean"]) for key, r in rows.items()}
    norm = {key: float(r["weights_l2_mean"]) for key, r in rows.items()}
    assert sparsity[(1e-3, 0.0)] > sparsity[(0.0, 0.0)]  # L1 drives weights to zero
    assert norm[(0.0, 1e-2)] < norm[(0.0, 0.0)]  # weight decay shrinks them
