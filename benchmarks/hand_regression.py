"""The hand-written baseline of benchmark [5]: what ``regbench run model=regression dropout=0.5
threads=1 --quiet`` trains, written as a user would write it in one script, with no regbench.

Same data (20 + 20 points of y = x + 0.3 N(0, 1) from a generator seeded 0), same network
(1-300-300-1, ReLU, inverted dropout 0.5 after each hidden layer), Adam lr 0.01, 500 full-batch
epochs, an evaluation every 50 epochs (train and test MSE in eval mode); it writes the metrics
as a CSV and one loss-curve PNG into the folder given (default: the current one).

    python benchmarks/hand_regression.py OUT_DIR [EPOCHS EVAL_EVERY]   # bench.py --tiny: fewer
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

LR, P, NOISE, N = 0.01, 0.5, 0.3, 20


class Dropout(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x * torch.empty_like(x).bernoulli_(1 - P) / (1 - P)


def noisy_line(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-1.0, 1.0, N).unsqueeze(1)
    return x, x + NOISE * torch.randn(N, 1, generator=generator)


def main(out: Path, epochs: int = 500, eval_every: int = 50) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    (x, y), (test_x, test_y) = noisy_line(generator), noisy_line(generator)
    net = nn.Sequential(
        nn.Linear(1, 300), nn.ReLU(), Dropout(), nn.Linear(300, 300), nn.ReLU(), Dropout(),
        nn.Linear(300, 1),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    rows, total, start = [], torch.zeros(()), time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        loss = F.mse_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.detach()
        if epoch % eval_every == 0:
            net.eval()
            with torch.no_grad():
                train_eval, test = F.mse_loss(net(x), y), F.mse_loss(net(test_x), test_y)
            rows.append(
                {
                    "epoch": epoch,
                    "train_loss": total.item() / eval_every,
                    "train_eval_loss": train_eval.item(),
                    "test_loss": test.item(),
                    "seconds": time.perf_counter() - start,
                }
            )
            total, start = torch.zeros(()), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    epochs = [row["epoch"] for row in rows]
    for column in ("train_loss", "test_loss"):
        ax.plot(epochs, [row[column] for row in rows], marker="o", markersize=3, label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.savefig(out / "loss_curve.png", dpi=110)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else Path("."), *(int(a) for a in args[1:3]))
