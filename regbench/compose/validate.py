"""Validation of a composed config: the one place that knows both registries.

:func:`validate` picks the model's and the data's schema by name from the study and data-source
registries, checks every key with config.py's machinery, and checks that the model trains on
that data; any problem is a one-line :class:`~regbench.core.config.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from regbench.core.config import (
    NO_EARLY_STOP,
    ConfigError,
    EarlyStopConfig,
    ExperimentConfig,
    Key,
    Settings,
    SourceConfig,
    StudyConfig,
    build_config,
    settings_declarations,
)
from regbench.core.metrics import Metric, selection_problem
from regbench.data import source_config, source_names
from regbench.studies import study_class, study_config, study_names

if TYPE_CHECKING:
    from regbench.studies.base import Study


def validate(raw: Mapping[str, Any]) -> Settings:
    """Check a composed config and return typed settings, or raise ConfigError (one line)."""
    model_schema = _pick_schema(raw, "model", study_names(), study_config)
    data_schema = _pick_schema(raw, "data", source_names(), source_config)
    prebuilt = {
        "model": build_config(model_schema, raw["model"], "model."),
        "data": build_config(data_schema, raw["data"], "data."),
        "experiment": validate_experiment(raw.get("experiment")),
        # A run folder made before early stopping existed has no such block: it never stopped.
        "early_stop": build_config(
            EarlyStopConfig, raw.get("early_stop", NO_EARLY_STOP), "early_stop."
        ),
    }
    settings = build_config(Settings, raw, "", prebuilt=prebuilt)
    check_pairing(settings.model, settings.data)
    check_early_stop(settings)
    return settings


def validate_experiment(raw: Any) -> ExperimentConfig | None:
    """The ``experiment`` block (configs/experiment/<name>.yaml), or None without one: run
    folders written before experiments existed have no such key, and stay valid."""
    if raw is None:
        return None
    metrics = raw.get("metrics", [None]) if isinstance(raw, Mapping) else [None]
    if not isinstance(metrics, list | tuple) or not metrics:
        # config.py's example list is for layer sizes ([512,256]); a metric list looks so:
        raise ConfigError(
            f"experiment.metrics={metrics!r} must be a non-empty list of metric names, e.g. "
            f"experiment.metrics=[test_loss]"
        )
    return build_config(ExperimentConfig, raw, "experiment.")


def declared_keys(model: str | None, data: str | None) -> dict[str, Key]:
    """Every key a run of study ``model`` on source ``data`` has, dotted, with its declaration;
    a name no registry knows (a plug-in not imported here) contributes only the base keys."""
    model_schema = study_config(model) if model in study_names() else StudyConfig
    data_schema = source_config(data) if data in source_names() else SourceConfig
    return settings_declarations(model_schema, data_schema)


def check_early_stop(settings: Settings) -> None:
    """Early stopping needs validation data and a validation metric with a direction that the
    study logs: a test metric would choose the epoch on the data it is then reported on."""
    if not settings.early_stop.on:
        return
    data = settings.data
    if data.holds_out() is False:
        raise ConfigError(
            f"early_stop.patience={settings.early_stop.patience} needs validation data, and "
            f"data={data.name} here has none; set {data.validation_key} (see "
            f"docs/reference/configuration.md)"
        )
    study = study_class(settings.model.name)
    check_selection_metric(
        "early_stop.metric", settings.early_stop.metric or study.selection_metric(), study
    )


def check_selection_metric(option: str, name: str, study: type[Study]) -> Metric:
    """``name``, a metric that can select (an epoch, a trial): one the study logs on the
    validation split, with a direction. Anything else is one line that names what to use."""
    declared = study.declared_metrics()
    validation = [m for m, spec in declared.items() if spec.split == "val" and spec.has_direction]
    metric = declared.get(name)
    if metric is None:
        raise ConfigError(
            f"{_said(option, name)}: the {study_name(study)} study logs no such metric; validation "
            f"metrics: {', '.join(validation)}"
        )
    problem = selection_problem(metric, _said(option, name), validation)
    if problem:
        raise ConfigError(problem)
    return metric


def _said(option: str, value: str) -> str:
    """How the user wrote it: ``--objective val_loss`` or ``early_stop.metric=val_loss``."""
    return f"{option} {value}" if option.startswith("--") else f"{option}={value}"


def study_name(study: type[Study]) -> str:
    return next((n for n in study_names() if study_class(n) is study), study.__name__)


def check_pairing(model: StudyConfig, data: SourceConfig) -> None:
    """Each model trains on the data sources its schema lists (e.g. the RNN on ``sine``)."""
    allowed = model.data_sources
    if allowed is not None and data.name not in allowed:
        raise ConfigError(
            f"model={model.name} cannot train on data={data.name}; use data="
            + " or data=".join(allowed)
        )


def _pick_schema(
    raw: Mapping[str, Any], group: str, names: list[str], schema_of: Callable[[str], type]
) -> type:
    node = raw.get(group)
    if not isinstance(node, Mapping) or "name" not in node:
        raise ConfigError(f"{group} must be one of {', '.join(names)} (e.g. {group}=...)")
    name = node["name"]
    if name not in names:
        raise ConfigError(f"unknown {group} '{name}'; available: {', '.join(names)}")
    return schema_of(name)
