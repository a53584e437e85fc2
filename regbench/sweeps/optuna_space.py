"""``hydra/sweeper=optuna``'s settings, checked before anything is written: the search space in
Hydra's override grammar turned into Optuna distributions, the sampler group
(configs/hydra/sweeper/sampler) turned into an Optuna sampler, and the storage URL.

Hydra's grammar as the plugin read it: ``interval(a,b)`` is a float between a and b,
``tag(log,interval(a,b))`` the same on a log scale, ``range(a,b,step)`` the integers Hydra's
range gives (stop excluded, as in a grid), ``choice(x,y)`` and ``x,y`` a categorical choice.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.core.errors import UsageError

SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "grid": "GridSampler",
}
PRUNERS = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
}
JOURNAL = "journal://"


@dataclass(frozen=True)
class OptunaSettings:
    """What an Optuna search needs besides the Search: its space and how to sample it."""

    n_trials: int
    distributions: dict[str, Any]  # searched key -> optuna distribution
    fixed: tuple[str, ...]  # the overrides every trial shares (model=..., epochs=...)
    sampler: str  # a key of SAMPLERS
    sampler_options: dict[str, Any] = field(default_factory=dict)
    storage: str | None = None
    study_name: str | None = None
    max_failure_rate: float = 0.0
    pruner: str = "none"  # a key of PRUNERS
    pruner_options: dict[str, Any] = field(default_factory=dict)

    def make_sampler(self, seed_offset: int = 0, seed: int | None = None) -> Any:
        """The sampler; ``seed_offset`` moves its seed on (a study that already has trials),
        ``seed`` replaces it (a process that joins others on one study draws its own)."""
        import optuna

        cls = getattr(optuna.samplers, SAMPLERS[self.sampler])
        options = dict(self.sampler_options)
        if seed is not None:
            options["seed"] = seed
        elif options.get("seed") is not None:
            options["seed"] = int(options["seed"]) + seed_offset
        if self.sampler == "grid":
            options["search_space"] = grid_space(self.distributions)
            cls = _grid_class()
        return _construct(cls, options, "hydra.sweeper.sampler")

    def make_pruner(self) -> Any:
        """The pruner (hydra/sweeper/pruner); an option it does not take is one line."""
        import optuna

        cls = getattr(optuna.pruners, PRUNERS[self.pruner])
        return _construct(cls, dict(self.pruner_options), "hydra.sweeper.pruner")

    @property
    def prunes(self) -> bool:
        return self.pruner != "none"

    def open_storage(self) -> Any:
        """The storage object (None: in memory); a URL that cannot be opened is one line."""
        return open_storage(self.storage)


def _grid_class() -> Any:
    """Optuna's grid sampler without its ``study.stop()`` once the grid is done: that works
    only inside ``study.optimize``; regbench's loop asks no more than the grid holds."""
    from optuna.samplers import GridSampler

    class Grid(GridSampler):
        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            pass

    Grid.__name__ = "GridSampler"
    return Grid


def _construct(cls: Any, options: dict[str, Any], where: str) -> Any:
    """``cls(**options)``; an option it does not take, or a value it refuses, is one line."""
    taken = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for name in options:
        if name not in taken and name != "search_space":
            raise UsageError(
                f"{where}.{name}: not an option of optuna {cls.__name__}; it takes "
                f"{', '.join(taken) or 'none'}"
            )
    try:
        return cls(**options)
    except (ValueError, TypeError) as exc:
        given = " ".join(f"{where}.{k}={v}" for k, v in options.items() if k != "search_space")
        raise UsageError(f"{given}: {_first_line(exc)}") from exc


def open_storage(url: str | None) -> Any:
    """Optuna's storage for ``url``: ``journal:///abs/path.log`` is Optuna's journal file; any
    other URL goes to SQLAlchemy (``sqlite:///rel.db`` is relative to the working folder)."""
    if url is None:
        return None
    import optuna

    where = f"hydra.sweeper.storage={url}"
    if url.startswith(JOURNAL):
        return _journal(url.removeprefix(JOURNAL), where)
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy's and the drivers' errors have no common base
        raise UsageError(f"{where} cannot be opened: {_first_line(exc)}") from exc


def _journal(path: str, where: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not Path(path).is_absolute():
        raise UsageError(f"{where}: a journal file is an absolute path, journal:///abs/path.log")
    if not Path(path).parent.is_dir():
        raise UsageError(f"{where} cannot be opened: no folder {Path(path).parent}")
    try:
        return JournalStorage(JournalFileBackend(path))
    except OSError as exc:
        raise UsageError(f"{where} cannot be opened: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ----------------------------------------------------------------------------- the space
def distributions(parsed: Sequence[Any]) -> dict[str, Any]:
    """Each searched override (Hydra's parsed ones; fixed ones are left out) as a distribution.
    Values come back as override text (:func:`as_text`)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, Any] = {}
    for override in parsed:
        if not override.is_sweep_override():
            continue
        key, value = override.get_key_element(), override.value()
        if override.is_interval_sweep():
            found[key] = FloatDistribution(value.start, value.end, log="log" in value.tags)
            continue
        values = list(override.sweep_string_iterator())
        step = _int_step(override)
        if step is not None and len(values) > 1:
            found[key] = IntDistribution(int(values[0]), int(values[-1]), step=step)
        else:  # choices are kept as the user typed them, so the override reads the same
            found[key] = CategoricalDistribution(values)
    return found


def _int_step(override: Any) -> int | None:
    """An increasing integer range()'s step (Optuna samples it as an integer); else None."""
    if not override.is_range_sweep():
        return None
    value = override.value()
    numbers = (value.start, value.stop, value.step)
    if value.shuffle or not all(isinstance(v, int) for v in numbers) or value.step <= 0:
        return None
    return int(value.step)


def grid_space(found: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid sampler's lists; an interval has none, so it is refused."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    space: dict[str, list[Any]] = {}
    for key, dist in found.items():
        if isinstance(dist, CategoricalDistribution):
            space[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution):
            space[key] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            raise UsageError(
                f"hydra/sweeper/sampler=grid takes lists, choice() and range(); {key} is an "
                f"interval: give values, e.g. '{key}=choice({dist.low:g},{dist.high:g})'"
            )
    return space


def grid_size(found: Mapping[str, Any]) -> int:
    size = 1
    for values in grid_space(found).values():
        size *= len(values)
    return size


def as_text(value: Any) -> str:
    """A sampled value as override text (an integer without a point, a float in full)."""
    return repr(value) if isinstance(value, float) else str(value)


def from_text(dist: Any, text: str) -> Any:
    """Override text back into ``dist``'s value (sweep.json keeps params as text); None when
    ``dist`` does not hold it (the folder's space was another)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    try:
        if isinstance(dist, CategoricalDistribution):
            value: Any = text
        elif isinstance(dist, FloatDistribution):
            value = float(text)
        else:
            value = int(text)
    except ValueError:
        return None
    if isinstance(dist, CategoricalDistribution):
        return value if value in dist.choices else None
    return value if dist._contains(dist.to_internal_repr(value)) else None
