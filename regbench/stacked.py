"""The stacked sweep launcher: train K configurations of one study together, as one model.

A regularization sweep is many small runs of one architecture (grid x seeds). Run one after
another, every run pays Python's and the dispatcher's per-step cost on its own. Stacked, each
parameter of the K members is one ``[K, ...]`` tensor (``torch.func.stack_module_state``), and a
training step is one forward through a copy of the network whose layers run all members at once
(regbench/stacked_net.py: batched matrix products), one backward and one optimizer update for
all members, so that cost is paid once for K.

Members may differ in ``seed``, ``dropout``, ``l1``, ``l2``, ``weight_decay`` and ``lr`` (and in
``name``/``out_dir``); these become per-member tensors.
Jobs that agree on everything else (model, data, batch size, epochs, optimizer, ...) form a
group; a group is split into chunks that fit a memory budget. A job that cannot be stacked (a
study without a stacked form, e.g. the GAN, or a group of one) runs the normal way, with a note.

Each member behaves like its solo run:

- its weights start as the solo run's: its own Study is built after seeding with its seed;
- its batches come from its own data-order generator seeded with its seed;
- its dropout masks come from its own generator, which starts where the solo run's global torch
  RNG stands after building the model and draws the same masks in the same order (on the CPU
  they are the solo run's masks);
- its update is torch's Adam/AdamW/SGD maths with its own lr and weight_decay;
- evaluation, metrics rows, weights.csv, checkpoints, model.pt, plots and summary go through the
  member's own Study and RunDir with the helpers the solo path uses, so ``compare``, ``rerun``,
  ``resume`` and ``plot`` cannot tell a stacked run from a solo one; ``summary.json`` says
  ``"stacked": true``. A member's checkpoint resumes through the normal (solo) path.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from regbench import runner
from regbench.jobs import Job
from regbench.progress import Reporter
from regbench.rundir import RunDir, Status
from regbench.seeding import capture_rng, restore_rng
from regbench.stacked_net import (
    NotStackable,
    StackedParameters,
    check_forward,
    solo_loss,
    stacked_template,
)
from regbench.train import (
    FINITE_CHECK_EVERY,
    Diverged,
    DivergenceGuard,
    _accumulate,
    _checkpoint,
)

if TYPE_CHECKING:
    from regbench.config import DataConfig, Settings
    from regbench.data import DataBundle
    from regbench.models.base import Study

# Settings that may differ between the members of one stack; every other key must agree.
MEMBER_KEYS = ("seed", "dropout", "l1", "l2", "weight_decay", "lr", "name", "out_dir")
NETWORK = "model"  # the one network (and optimizer) a stackable study trains
CPU_BUDGET_FRACTION = 0.5  # of MemAvailable, when no budget is given
CUDA_BUDGET_FRACTION = 0.8  # of free device memory
FALLBACK_BUDGET = 4 * 2**30  # when the available memory cannot be read
# Optimizer options whose maths the stacked optimizer does not implement, at their plain values.
PLAIN_OPTIMIZER = {"amsgrad": False, "maximize": False, "nesterov": False, "dampening": 0}
ACTIVATION_FACTOR = 2  # saved activations, plus as much again for their gradients
# Parameter-sized tensors a member holds besides its optimizer state (counted twice: the stack's
# and the copy exported to the member's own optimizer): the stacked leaf, its gradient, the
# member's own network, and a penalty temporary.
PARAMETER_COPIES = 4
SAFETY = 1.5  # allocator slack and what the estimate leaves out (measured: benchmarks/bench.py)


def group_key(settings: Settings) -> str:
    """Jobs with equal keys can be stacked: everything but the per-member settings agrees."""
    config = settings.to_dict()
    for key in MEMBER_KEYS:
        config.pop(key, None)
    return json.dumps(config, sort_keys=True, default=str)


def group_jobs(jobs: Sequence[Job]) -> list[list[int]]:
    """Indices of ``jobs`` by group, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(group_key(job.settings), []).append(i)
    return list(groups.values())


def run_stacked(
    jobs: Sequence[Job | Settings],
    reporter: Reporter | None = None,
    memory_budget: int | None = None,
    on_failure: Callable[[Job, Exception], None] | None = None,
) -> list[runner.RunResult | None]:
    """Run ``jobs`` stacked where they can be, one by one where not; results in job order.

    ``memory_budget`` (bytes) bounds what one stacked chunk may allocate; by default half the
    available memory on the CPU, 80% of the free memory on CUDA. Without ``on_failure`` an error
    stops everything, as it stops ``regbench run``; with it, each job an error hit is handed to
    it with the error, its result is None, and the other jobs go on (a sweep's way).
    """
    jobs = [job if isinstance(job, Job) else Job(job) for job in jobs]
    reporter = reporter or Reporter()
    results: dict[int, runner.RunResult | None] = {}
    for indices in group_jobs(jobs):
        # Members with an l1 (an l2) penalty side by side: penalties cost a slice of the stack.
        indices.sort(key=lambda i: (jobs[i].settings.l1 > 0, jobs[i].settings.l2 > 0))
        group = [jobs[i] for i in indices]
        outcome = _run_group(group, reporter, memory_budget, on_failure)
        results.update(zip(indices, outcome, strict=True))
    return [results[i] for i in range(len(jobs))]


# ----------------------------------------------------------------------------- groups
def _run_group(
    group: list[Job],
    reporter: Reporter,
    memory_budget: int | None,
    on_failure: Callable[[Job, Exception], None] | None,
) -> list[runner.RunResult | None]:
    def guarded(jobs: list[Job], work: Callable[[], list[Any]]) -> list[Any]:
        if on_failure is None:
            return work()
        try:
            return work()
        except NotStackable:
            raise
        except Exception as exc:  # the sweep records it per job and goes on
            for job in jobs:
                on_failure(job, exc)
            return [None] * len(jobs)

    def solo(job: Job, note: str) -> list[runner.RunResult]:
        return guarded([job], lambda: [_solo(job, reporter, note)])

    if len(group) == 1:
        note = "no other job shares its model, data and schedule"
        reporter.notice(f"stacked: a {group[0].settings.model.name} run runs alone ({note})")
        return solo(group[0], note)
    data, notices = _SharedData(), _NoticeOnce(reporter)
    try:
        per_member = guarded(group, lambda: [member_bytes(group[0], notices, data)])[0]
    except NotStackable as exc:
        reporter.notice(
            f"stacked: {len(group)} {group[0].settings.model.name} runs cannot be stacked "
            f"({exc}); running them one by one"
        )
        return [result for job in group for result in solo(job, str(exc))]
    if per_member is None:
        return [None] * len(group)
    budget = memory_budget or default_budget(_device_of(group[0].settings))
    chunks = split_chunks(len(group), max(1, budget // per_member))
    if len(chunks) > 1:
        reporter.notice(
            f"stacked: {len(group)} runs in {len(chunks)} chunks (about {per_member / 2**20:.1f} "
            f"MiB a member, memory budget {budget / 2**20:.0f} MiB)"
        )
    results: list[runner.RunResult | None] = []
    for chunk in chunks:
        jobs = [group[i] for i in chunk]
        results += guarded(
            jobs,
            lambda jobs=jobs: _train_chunk(
                [_Member.build(j, notices, data) for j in jobs], reporter
            ),
        )
    return results


def member_bytes(
    job: Job, reporter: Reporter | None = None, data: _SharedData | None = None
) -> int:
    """Estimated memory one member of ``job``'s stack needs (what the budget is divided by);
    raises NotStackable, saying why, for a job that cannot be stacked."""
    member = _Member.build(job, reporter or Reporter(), data or _SharedData())
    return _Stack([member]).bytes_per_member()


def _solo(job: Job, reporter: Reporter, note: str) -> runner.RunResult:
    """The normal path, with the reason it was not stacked in the summary."""
    extra = {"stacked": False, "stack_note": note}
    return runner.execute(
        job.settings, list(job.overrides), reporter, extra_summary=extra, run_path=job.folder
    )


def split_chunks(n: int, most: int) -> list[list[int]]:
    """0..n-1 in the fewest chunks of at most ``most``, as even as possible."""
    count = math.ceil(n / most)
    size, extra = divmod(n, count)
    chunks, start = [], 0
    for c in range(count):
        end = start + size + (c < extra)
        chunks.append(list(range(start, end)))
        start = end
    return chunks


def default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_BUDGET_FRACTION)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(int(line.split()[1]) * 1024 * CPU_BUDGET_FRACTION)
    except OSError:
        pass
    return FALLBACK_BUDGET


def _device_of(settings: Settings) -> torch.device:
    return runner.resolve_device(settings.device)


class _SharedData:
    """Loads each (data config, seed) once, and hands out one bundle for equal data, so members
    of a stack share tensors (MNIST does not depend on the seed; generated data does)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[Any, int], DataBundle] = {}
        self.distinct: list[DataBundle] = []

    def load(self, config: DataConfig, seed: int) -> DataBundle:
        from regbench.data import load_data

        key = (config, seed)
        if key not in self.by_key:
            bundle = load_data(config, seed)
            same = next((b for b in self.distinct if _same_data(b, bundle)), None)
            if same is None:
                self.distinct.append(bundle)
            self.by_key[key] = same or bundle
        return self.by_key[key]


def _same_data(a: DataBundle, b: DataBundle) -> bool:
    if a.describe() != b.describe():
        return False
    return all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in ((a.train, b.train), (a.test, b.test))
    )


class _NoticeOnce(Reporter):
    """Passes each distinct notice on once (K members would repeat a data fallback K times)."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(reporter.console)
        self.reporter, self.seen = reporter, set()

    def notice(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            self.reporter.notice(text)


# ----------------------------------------------------------------------------- members
@dataclass
class _Member:
    """One job of a stack: its solo Study (for evaluation, checkpoints and outputs), its own
    data-order and dropout-mask generators, and the global RNG states it owns."""

    job: Job
    study: Study
    data_gen: torch.Generator
    mask_gen: torch.Generator
    rng: dict[str, Any]
    guard: DivergenceGuard
    run_dir: RunDir | None = None
    loggers: Any = None  # the run's loggers (TensorBoard, MLflow: regbench/loggers.py)
    summary: Any = None  # its Summary, once its run folder is open
    rows: list[dict[str, Any]] = field(default_factory=list)
    status: Status = Status.RUNNING
    started: float = 0.0  # when its stack started (time.time())

    @property
    def settings(self) -> Settings:
        return self.job.settings

    @classmethod
    def build(cls, job: Job, notices: Reporter, data: _SharedData) -> _Member:
        """Exactly the solo run's start: seed, data, seed, Study (runner._prepare)."""
        _, study = runner._prepare(job.settings, notices, load=data.load)
        mask_gen = torch.Generator(study.device)
        mask_gen.set_state(_default_generator(study.device).get_state())
        data_gen = torch.Generator().manual_seed(job.settings.seed)
        return cls(
            job, study, data_gen, mask_gen, capture_rng(data_gen),
            DivergenceGuard(job.settings.diverge_factor),
        )  # fmt: skip

    @contextmanager
    def own_rng(self) -> Iterator[None]:
        """The global RNGs as the solo run would have them (its evaluation, e.g. MC dropout, and
        its checkpoint's RNG capture use them); the device's stream is the mask generator's."""
        restore_rng(self.rng, torch.Generator())  # globals only: the data generator is live
        device_gen = _default_generator(self.study.device)
        device_gen.set_state(self.mask_gen.get_state())
        try:
            yield
        finally:
            self.mask_gen.set_state(device_gen.get_state())
            self.rng = capture_rng(self.data_gen)


def _default_generator(device: torch.device) -> torch.Generator:
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index or torch.cuda.current_device()]
    return torch.default_generator


# ----------------------------------------------------------------------------- the stack
@dataclass(frozen=True)
class _Call:
    """One dropout call of a training forward: which module, and its mask's shape and strides
    (those of ``empty_like(x)``: how the solo run's mask maps random draws to units)."""

    index: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _Stack:
    """K members' network as stacked parameters (``stack_module_state``: one [K, ...] leaf per
    parameter), the stacked forward and loss (regbench/stacked_net.py), per-member dropout
    masks, penalties and optimizer."""

    def __init__(self, members: list[_Member]) -> None:
        from torch.func import stack_module_state

        from regbench.regularize import split_parameters

        study = members[0].study
        settings = members[0].settings
        self.members, self.device, self.k = members, study.device, len(members)
        loss = study.stack_loss()
        if loss is None:
            raise NotStackable(f"the {settings.model.name} study has no stacked form")
        if set(study.networks) != {NETWORK} or set(study.optimizers) != {NETWORK}:
            raise NotStackable("it trains more than one network")
        net = study.networks[NETWORK]
        self.loss = loss
        self.params = StackedParameters()
        self.template, masked = stacked_template(net, self.params)
        self.dropouts = list(masked.values())
        self.dropout_names = list(masked)
        penalized, _ = split_parameters([net], settings.penalize)
        names = {id(p): n for n, p in net.named_parameters()}
        self.penalized = [names[id(p)] for p in penalized]  # in the solo penalty's order
        # The optimizer's tensors; the network sees them through ``views`` (see _adopt_layouts).
        self.leaves, _ = stack_module_state([m.study.networks[NETWORK] for m in members])
        self.orders: dict[str, tuple[int, ...]] | None = None
        self.data = _StackedData(members)
        self._check_forward()
        self.l1 = self._per_member(lambda s: s.l1)
        self.l2 = self._per_member(lambda s: s.l2)
        self.l1_runs = _runs([m.settings.l1 > 0 for m in members])
        self.l2_runs = _runs([m.settings.l2 > 0 for m in members])
        self.optimizer = StackedOptimizer(
            settings.optimizer,
            study.optimizers[NETWORK].param_groups[0],
            [m.settings.lr for m in members],
            [m.settings.weight_decay for m in members],
            self.leaves,
            set(self.penalized),
        )
        self.calls: dict[int, list[_Call]] = {}
        self.active: list[int] = []
        self.p: list[list[float]] = []
        self.keep: list[torch.Tensor] = []

    def _per_member(self, value: Callable[[Settings], float]) -> torch.Tensor:
        return torch.tensor([value(m.settings) for m in self.members], device=self.device)

    def _check_forward(self) -> None:
        """The stacked loss equals each member's solo loss on a first batch (stacked_net)."""
        size = min(self.members[0].settings.batch_size, self.data.n)
        rows = torch.arange(size, device=self.device).expand(self.k, size)
        self.params.tensors = self.leaves
        try:
            networks = [m.study.networks[NETWORK] for m in self.members]
            check_forward(self.loss, self.template, networks, self.data.batch(rows))
        finally:
            self.params.tensors = {}

    # ------------------------------------------------------------------ the step
    def step(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimization step of every member on its batch ``indices[k]``; [K] loss terms."""
        batch = self.data.batch(indices)
        self._set_masks(indices.shape[1])
        self.params.tensors = self.views()
        try:
            data_loss = self.loss(self.template, batch)
        finally:
            self.params.tensors = {}
            for module in self.dropouts:
                module.mask = module.keep = None
        # Members are independent: each parameter slice gets its own member's gradient. grad
        # rather than backward: accumulating into .grad would copy each gradient once more.
        leaves = list(self.leaves.values())
        grads = dict(zip(self.leaves, torch.autograd.grad(data_loss.sum(), leaves), strict=True))
        if self.orders is None:
            grads = self._adopt_layouts(grads)
        data_loss = data_loss.detach()
        l1_term, l2_term = self._penalties(grads)
        total = data_loss + l1_term + l2_term
        self.optimizer.update(grads)
        return {
            "train_loss": data_loss,
            "l1_penalty": l1_term.detach(),
            "l2_penalty": l2_term.detach(),
            "total_loss": total.detach(),
        }

    def views(self) -> dict[str, torch.Tensor]:
        """The stacked parameters in their modules' shapes (views of the leaves)."""
        if not self.orders:
            return self.leaves
        return {
            name: leaf.permute(_inverse(self.orders[name])) if name in self.orders else leaf
            for name, leaf in self.leaves.items()
        }

    def _adopt_layouts(self, grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Store each parameter in the memory order its gradient arrives in (a stacked linear
        layer multiplies by its weight transposed, so the weight's gradient arrives transposed),
        so that every later gradient is contiguous like its leaf: the fused optimizer would
        otherwise copy it, every step."""
        self.orders = {}
        for name, grad in grads.items():
            order = tuple(sorted(range(grad.dim()), key=lambda d: -grad.stride()[d]))
            if order == tuple(range(grad.dim())) or not grad.permute(order).is_contiguous():
                continue
            self.orders[name] = order
            leaf = self.leaves[name].detach().permute(order).contiguous()
            self.leaves[name] = leaf.requires_grad_(True)
            grads[name] = grad.permute(order)
        self.optimizer.relayout(self.leaves)
        return grads

    @torch.no_grad()
    def _penalties(self, grads: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """l1 * sum|w| and l2 * sum w^2 over each member's penalized parameters, and their
        gradients l1 * sign(w) and 2 * l2 * w added to ``grads`` (what autograd adds in the
        solo path), for the members that have them only: a stack mixing penalized and
        unpenalized members would otherwise pay for all. Exact zeros for strength 0."""
        l1_term, l2_term = self.l1.new_zeros(self.k), self.l2.new_zeros(self.k)
        for run in self.l1_runs:
            strength, total = self.l1[run], 0
            for name in self.penalized:
                weight = self.leaves[name][run]
                total = total + weight.flatten(1).abs().sum(1)  # torch's sum: solo's rounding
                grads[name][run].addcmul_(weight.sign(), _broadcast(strength, weight))
            l1_term[run] = strength * total
        for run in self.l2_runs:
            strength, total = self.l2[run], 0
            for name in self.penalized:
                weight = self.leaves[name][run]
                total = total + weight.flatten(1).pow(2).sum(1)
                grads[name][run].addcmul_(weight, _broadcast(2 * strength, weight))
            l2_term[run] = strength * total
        return l1_term, l2_term

    # ------------------------------------------------------------------ dropout
    def set_epoch(self, epoch: int) -> None:
        """Read each member's dropout p for ``epoch`` (after the loop's schedule hook)."""
        from regbench.dropout import apply_schedule

        for m in self.members:
            apply_schedule(m.study.networks.values(), m.settings, epoch)
        modules = [dict(m.study.networks[NETWORK].named_modules()) for m in self.members]
        self.p = [[float(mods[name].p) for mods in modules] for name in self.dropout_names]
        self.active = [i for i, ps in enumerate(self.p) if any(p > 0 for p in ps)]
        self.keep = [
            torch.tensor([1.0 - p for p in ps], dtype=torch.float32, device=self.device)
            for ps in self.p
        ]

    def _set_masks(self, batch_size: int) -> None:
        """Each member's masks from its own generator, in the order the forward uses them and
        laid out as the solo run's (``empty_like(x).bernoulli_(1 - p)`` fills memory in x's
        memory order); no draw when p is 0, as in the solo run."""
        for call in self._calls(batch_size):
            if call.index not in self.active:
                continue
            module = self.dropouts[call.index]
            mask = torch.empty_strided(
                (self.k, *call.shape), (math.prod(call.shape), *call.stride), device=self.device
            )
            for k, member in enumerate(self.members):
                p = self.p[call.index][k]
                if p == 0:
                    mask[k].fill_(1.0)
                    continue
                mask[k].bernoulli_(1.0 - p, generator=member.mask_gen)
                if module.kind == "torch":
                    mask[k].div_(1.0 - p)
            module.mask = mask
            module.keep = self.keep[call.index].view(-1, *[1] * len(call.shape))

    def _calls(self, batch_size: int) -> list[_Call]:
        if batch_size not in self.calls:
            self.calls[batch_size], _ = self._probe(batch_size)
        return self.calls[batch_size]

    def _probe(self, batch_size: int) -> tuple[list[_Call], int]:
        """The dropout calls of one solo training forward on a batch of ``batch_size`` (member
        0's real network, its RNG restored afterwards), and the bytes it saves for backward."""
        study = self.members[0].study
        net = study.networks[NETWORK]
        index = {name: i for i, name in enumerate(self.dropout_names)}
        names = {module: name for name, module in net.named_modules() if name in index}
        calls: list[_Call] = []
        saved = 0

        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0]
            calls.append(_Call(index[names[module]], tuple(x.shape), torch.empty_like(x).stride()))

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal saved
            saved += t.numel() * t.element_size()
            return t

        hooks = [module.register_forward_pre_hook(record) for module in names]
        devices = [study.device.index or 0] if study.device.type == "cuda" else []
        was_training = net.training
        try:
            with (
                torch.random.fork_rng(devices=devices),
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            ):
                net.train(True)
                solo_loss(self.loss, net, self.data.first(batch_size), 0)
        finally:
            net.train(was_training)
            for hook in hooks:
                hook.remove()
        if len({call.index for call in calls}) != len(calls):
            raise NotStackable("a dropout module is used more than once per forward")
        return calls, saved

    # ------------------------------------------------------------------ memory
    def bytes_per_member(self) -> int:
        """An estimate of what one more member adds to a stacked step: parameters, gradients,
        optimizer state and temporaries, saved activations and their gradients, masks, batch."""
        settings = self.members[0].settings
        batch_size = min(settings.batch_size, self.members[0].study.n_train)
        calls, saved = self._probe(batch_size)
        self.calls[batch_size] = calls
        params = sum(p[0].numel() * p.element_size() for p in self.leaves.values())
        copies = PARAMETER_COPIES + 2 * self.optimizer.states
        masks = sum(math.prod(call.shape) * 4 for call in calls)
        batch = sum(t[:batch_size].numel() * t.element_size() for t in self.data.tensors.values())
        return int(SAFETY * (params * copies + ACTIVATION_FACTOR * saved + masks + batch))

    # ------------------------------------------------------------------ members
    @torch.no_grad()
    def load_member(self, k: int) -> None:
        """Member k's current weights and optimizer state into its own Study (for evaluation,
        weights.csv, checkpoints and outputs)."""
        study = self.members[k].study
        optimizer = study.optimizers[NETWORK]
        views = self.views()
        for name, param in study.networks[NETWORK].named_parameters():
            param.copy_(views[name][k])
            state = self.optimizer.state_of(k, name, (self.orders or {}).get(name))
            if state:
                optimizer.state[param] = state


def _runs(flags: Sequence[bool]) -> list[slice]:
    """Slices of the consecutive True entries of ``flags``."""
    runs, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append(slice(start, i))
            start = None
    return runs


def _broadcast(column: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-member values [k] shaped to broadcast over ``like`` [k, ...]."""
    return column.view(-1, *[1] * (like.dim() - 1))


def _inverse(order: Sequence[int]) -> tuple[int, ...]:
    inverse = [0] * len(order)
    for position, dim in enumerate(order):
        inverse[dim] = position
    return tuple(inverse)


class _StackedData:
    """The training tensors of all members: shared when every member has the same data, else
    stacked [K, N, ...]; ``batch`` gathers member k's examples ``indices[k]``."""

    def __init__(self, members: list[_Member]) -> None:
        first = members[0].study.data.train
        self.shared = all(m.study.data.train[key] is first[key] for m in members for key in first)
        n = members[0].study.n_train
        if any(m.study.n_train != n for m in members):
            raise NotStackable("members have different numbers of training examples")
        if self.shared:
            self.tensors = dict(first)
        else:  # [K * N, ...]: member k's example i is row k * N + i
            self.tensors = {
                key: torch.cat([m.study.data.train[key] for m in members]) for key in first
            }
        device = members[0].study.device
        self.offsets = (torch.arange(len(members), device=device) * n)[:, None]
        self.n = n

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = indices if self.shared else indices + self.offsets
        return {key: t[rows] for key, t in self.tensors.items()}

    def first(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Member 0's first ``batch_size`` examples, as a stack of one [1, batch_size, ...]."""
        return {key: t[None, :batch_size] for key, t in self.tensors.items()}


class StackedOptimizer:
    """torch's Adam, AdamW and SGD on stacked parameters ([K, ...] tensors, member k at index
    k), with per-member lr and weight_decay; weight decay only on the ``decayed`` parameters
    (the solo run's penalized group). Adam and AdamW run torch's fused kernels, one pass over
    the parameters instead of the unfused update's ten or so, one call per distinct
    (lr, weight_decay); SGD is its formula, vectorised over members."""

    def __init__(
        self,
        kind: str,
        group: dict[str, Any],
        lr: Sequence[float],
        weight_decay: Sequence[float],
        params: dict[str, torch.Tensor],
        decayed: set[str],
    ) -> None:
        odd = [key for key, plain in PLAIN_OPTIMIZER.items() if group.get(key, plain) != plain]
        if odd or kind not in ("adam", "adamw", "sgd"):
            raise NotStackable(f"optimizer {kind} with {', '.join(odd)} has no stacked form")
        self.kind, self.params, self.decayed = kind, params, decayed
        self.lr, self.weight_decay, self.step_count = list(lr), list(weight_decay), 0
        self.state: dict[str, dict[str, torch.Tensor]] = {name: {} for name in params}
        self.columns: dict[tuple[Any, ...], torch.Tensor] = {}
        if kind == "sgd":
            self.momentum = group["momentum"]
            self.states = 1 if self.momentum else 0
            return
        self.beta1, self.beta2 = group["betas"]
        self.eps = group["eps"]
        self.states = 2
        for name, param in params.items():
            zeros = torch.zeros_like(param, memory_format=torch.contiguous_format)
            self.state[name] = {"exp_avg": zeros, "exp_avg_sq": torch.zeros_like(zeros)}
        self.step = torch.zeros((), dtype=torch.float32, device=next(iter(params.values())).device)
        self.calls = self._plan_calls()

    def _plan_calls(self) -> dict[tuple[float, float], list[tuple[str, int | None]]]:
        """(lr, weight_decay) -> the (parameter, member) pieces one fused call updates; member
        None: every member's at once (the whole stacked tensor)."""
        calls: dict[tuple[float, float], list[tuple[str, int | None]]] = {}
        members = list(range(len(self.lr)))
        for name in self.params:
            by_setting: dict[tuple[float, float], list[int]] = {}
            for k in members:
                wd = self.weight_decay[k] if name in self.decayed else 0.0
                by_setting.setdefault((self.lr[k], wd), []).append(k)
            for key, ks in by_setting.items():
                pieces = [(name, None)] if ks == members else [(name, k) for k in ks]
                calls.setdefault(key, []).extend(pieces)
        return calls

    @torch.no_grad()
    def update(self, grads: dict[str, torch.Tensor]) -> None:
        """One step, given each stacked parameter's gradient."""
        self.step_count += 1
        if self.kind == "sgd":
            self._sgd(grads)
        else:
            # The fused kernels read memory as contiguous.
            self._adam({name: grad.contiguous() for name, grad in grads.items()})

    def relayout(self, params: dict[str, torch.Tensor]) -> None:
        """Take ``params`` (the same parameters, stored in another memory order) before the
        first step."""
        assert self.step_count == 0, "parameters are relaid out before the first step only"
        self.params.update(params)
        for name, state in self.state.items():
            for key, value in state.items():
                state[key] = torch.zeros_like(self.params[name]) if key != "step" else value

    def _sgd(self, grads: dict[str, torch.Tensor]) -> None:
        for name, param in self.params.items():
            grad = grads[name]
            if name in self.decayed and any(self.weight_decay):
                grad = grad + self._column("weight_decay", self.weight_decay, param) * param
            if self.momentum:
                buffer = self.state[name].get("momentum_buffer")
                if buffer is None:
                    buffer = self.state[name]["momentum_buffer"] = grad.clone()
                else:
                    buffer.mul_(self.momentum).add_(grad)
                grad = buffer
            param.add_(self._column("-lr", [-lr for lr in self.lr], param) * grad)

    def _column(self, key: str, values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        """Per-member scalars shaped to broadcast over ``like`` (Python floats cast to float32,
        as torch casts its scalar hyperparameters); made once per shape, not every step."""
        cache_key = (key, like.dim(), like.dtype)
        if cache_key not in self.columns:
            column = torch.tensor(list(values), dtype=like.dtype, device=like.device)
            self.columns[cache_key] = column.view(-1, *[1] * (like.dim() - 1))
        return self.columns[cache_key]

    def _adam(self, grads: dict[str, torch.Tensor]) -> None:
        """torch's fused kernels (they read memory as contiguous: the gradients must be)."""
        fused = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
        self.step += 1
        for (lr, wd), pieces in self.calls.items():
            tensors = [self._piece(name, k, grads[name]) for name, k in pieces]
            fused(
                *zip(*tensors, strict=True),
                [],
                [self.step] * len(pieces),
                amsgrad=False,
                lr=lr,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=wd,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    def _piece(self, name: str, k: int | None, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(param, grad, exp_avg, exp_avg_sq) of one member, or of all (k None)."""
        param, state = self.params[name], self.state[name]
        tensors = (param, grad, state["exp_avg"], state["exp_avg_sq"])
        return tensors if k is None else tuple(t[k] for t in tensors)  # type: ignore[index]

    def state_of(
        self, k: int, name: str, order: tuple[int, ...] | None = None
    ) -> dict[str, torch.Tensor]:
        """Member k's state for parameter ``name``, as torch's optimizer keeps it (``order``:
        the memory order the parameter is stored in, see _Stack._adopt_layouts)."""
        back = _inverse(order) if order else None
        state = {
            key: (value.permute(back) if back else value)[k].contiguous().clone()
            for key, value in self.state[name].items()
        }
        if self.kind != "sgd":
            state["step"] = torch.tensor(float(self.step_count))
        return state


# ----------------------------------------------------------------------------- training
def _train_chunk(members: list[_Member], reporter: Reporter) -> list[runner.RunResult]:
    """Train one chunk stacked; every member's run folder written as a solo run's."""
    stack = _Stack(members)
    started = time.time()
    for k, member in enumerate(members):
        _open_run(member, k, len(members), started)
    status = Status.FAILED
    try:
        with runner._sigterm_as_interrupt():
            _loop(stack, reporter)
        reporter.stop()
        for k, member in enumerate(members):
            if member.status == Status.RUNNING:
                stack.load_member(k)
                with member.own_rng():
                    runner._write_outputs(
                        member.settings, member.study, member.run_dir, member.rows
                    )
        status = Status.COMPLETED
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
        raise
    except Exception as exc:
        for member in members:
            member.summary.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        reporter.stop()
        for member in members:
            if member.status == Status.RUNNING:
                member.status = status
                _close_run(member)
    return [runner.RunResult(m.run_dir, m.summary, m.rows) for m in members]


def _open_run(member: _Member, k: int, size: int, started: float) -> None:
    from regbench.loggers import build_loggers

    settings = member.settings
    member.run_dir = RunDir.create(settings.out_dir, settings.run_name, path=member.job.folder)
    member.run_dir.write_config(settings.to_dict(), list(member.job.overrides))
    member.summary = runner._summary(
        settings, member.study, member.run_dir, member.job.overrides, started
    )
    member.started = started
    member.summary.stacked, member.summary.stack = True, {"size": size, "member": k}
    member.run_dir.write_summary(member.summary)
    member.loggers = build_loggers(settings)
    member.loggers.start(member.run_dir.path, settings.to_dict())


def _close_run(member: _Member) -> None:
    """The final summary; wall_seconds is the member's share of the stack's time so far."""
    assert member.run_dir is not None
    rows = member.rows or member.run_dir.read_metrics()
    stack_wall = time.time() - member.started
    runner.set_results(member.summary, member.study, rows)
    member.summary.status, member.summary.finished_at = member.status, runner._now()
    member.summary.wall_seconds = stack_wall / member.summary.stack["size"]
    member.summary.stack["wall_seconds"] = stack_wall
    member.run_dir.write_summary(member.summary)
    if member.loggers is not None:
        member.loggers.finish(member.run_dir.path, member.status)


def _loop(stack: _Stack, reporter: Reporter) -> None:
    members = stack.members
    settings = members[0].settings
    n, batch_size = stack.data.n, settings.batch_size
    reporter.start(settings.epochs, math.ceil(n / batch_size))
    sums: dict[str, torch.Tensor] = {}
    steps, window_start = 0, time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        stack.set_epoch(epoch)
        order = torch.stack([torch.randperm(n, generator=m.data_gen) for m in members])
        for indices in order.to(stack.device).split(batch_size, dim=1):
            terms = stack.step(indices)
            if steps == 0:
                for k, member in enumerate(members):
                    member.guard.observe_first({key: v[k] for key, v in terms.items()})
            _accumulate(sums, terms)
            steps += 1
            if steps % FINITE_CHECK_EVERY == 0:
                _check(members, sums, steps, epoch)
            reporter.batch_done()
        reporter.epoch_done(epoch)
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        _check(members, sums, steps, epoch)
        if not any(m.status == Status.RUNNING for m in members):
            return
        share = (time.perf_counter() - window_start) / len(members)
        means = {key: (v / steps).tolist() for key, v in sums.items()}
        for k, member in enumerate(members):
            if member.status == Status.RUNNING:
                _record(stack, k, {key: v[k] for key, v in means.items()}, epoch, share, reporter)
        sums, steps, window_start = {}, 0, time.perf_counter()


def _check(members: list[_Member], sums: dict[str, torch.Tensor], steps: int, epoch: int) -> None:
    """The solo divergence check, member by member; a diverged member stops there alone."""
    for k, member in enumerate(members):
        if member.status != Status.RUNNING:
            continue
        try:
            member.guard.check({key: v[k] for key, v in sums.items()}, steps, epoch)
        except Diverged as exc:
            member.status = Status.DIVERGED
            member.summary.error, member.summary.diverged_epoch = str(exc), exc.epoch
            _close_run(member)


def _record(
    stack: _Stack,
    k: int,
    means: dict[str, float],
    epoch: int,
    train_share: float,
    reporter: Reporter,
) -> None:
    """Member k's metrics row, weights rows and checkpoint, as train.train writes them."""
    from regbench.diagnostics import add_gap, weight_rows

    member = stack.members[k]
    study, settings, run_dir = member.study, member.settings, member.run_dir
    assert run_dir is not None
    start = time.perf_counter()
    stack.load_member(k)
    row: dict[str, Any] = {"epoch": epoch, **means}
    with member.own_rng():
        study.train_mode(False)
        with torch.no_grad():
            row.update(study.evaluate())
        add_gap(row)
        row["seconds"] = train_share + time.perf_counter() - start
        member.rows.append(row)
        run_dir.append_weights(weight_rows(epoch, study.networks, settings.weight_threshold))
        run_dir.append_metrics(row)
        run_dir.save_checkpoint(_checkpoint(study, member.data_gen, member.rows, member.guard))
    reporter.row({"epoch": epoch, "member": f"{k + 1}/{stack.k}", **row})
    member.loggers.log_row(row, study.networks)
