"""The configuration reference (docs/reference/configuration.md), made from the declarations.

Every key's meaning, type, range, role and flags come from its declaration (core/config.py and
each study's and data source's config); defaults come from the config files; each study's
metrics from its metric declarations (core/metrics.py). Nothing here is written by hand, so
the page cannot drift: tests/test_reference.py fails when the file and this output differ.
Regenerate it with ``python -m regbench.compose.reference > docs/reference/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from regbench.compose.hydra import config_dir
from regbench.core.config import (
    NO_EARLY_STOP,
    ROLES,
    EarlyStopConfig,
    Expectation,
    ExperimentConfig,
    Key,
    Settings,
    declaration,
)
from regbench.core.metrics import COMMON_METRICS, Metric
from regbench.core.overrides import override_value
from regbench.data import source_config, source_names
from regbench.studies import study_class, study_config, study_names

NESTED = ("model", "data", "experiment", "early_stop")


def configuration_reference() -> str:
    """The whole page, as Markdown."""
    root = config_dir()
    top = _read(root / "config.yaml")
    parts = [_intro(), _keys_table(Settings, "", top, skip=NESTED)]
    parts.append("## Early stopping (`early_stop.*`)\n")
    parts.append(_early_stop_text())
    parts.append(_keys_table(EarlyStopConfig, "early_stop.", top.get("early_stop") or {}))
    for name in study_names():
        parts.append(_study_section(name, root))
    for name in source_names():
        parts.append(_source_section(name, root))
    parts.append("## Experiment keys (`+experiment=NAME`)\n")
    parts.append(_keys_table(ExperimentConfig, "experiment.", {}, defaults=False))
    parts.append("### Expectations (each item of `experiment.expect`)\n")
    parts.append(_expectations_text())
    parts.append(_keys_table(Expectation, "", {}, defaults=False))
    parts.append(_metrics_section("Metrics every study logs", COMMON_METRICS))
    return "\n".join(parts).rstrip() + "\n"


def _intro() -> str:
    roles = "\n".join(f"| {role} | {meaning} |" for role, meaning in ROLES.items())
    return (
        "# Configuration reference\n\n"
        "Generated from the key and metric declarations (`python -m regbench.compose.reference"
        " > docs/reference/configuration.md`); a test fails when this page and the code differ."
        " Every key is typed and range-checked before any work starts: a bad value gets one "
        "line naming the key and what is allowed, exit code 2, and no run folder.\n\n"
        "Columns: **stack** = may differ between the members of one `--stacked` stack; "
        "**resume** = may change between a run and its `regbench resume`; **off** = a "
        'regularizer, and the value at which it does nothing (what compare calls "no '
        'regularization" when it looks for a baseline); **legacy** = the value a run folder '
        "made before the key existed is read with (a key at its legacy value stays out of the "
        "job key, so older sweeps keep their folder names).\n\n"
        "| role | what it means |\n|---|---|\n" + roles + "\n"
    )


def _expectations_text() -> str:
    return (
        "Each item is one test of a part of the claim; the comparison's first line answers "
        "the claim: supported (every expectation shown), partly (some) or not shown (none), "
        "and why. A claim is a conjunction, and a conjunction of level-alpha tests is a "
        "level-alpha test of the whole, so nothing further is corrected; a middle group chosen "
        "by the data is held to alpha over the number of middle groups. An arm the runs lack, "
        "or too few groups for a shape, is answered not shown, with the reason. Example:\n\n"
        "```yaml\nexpect:\n"
        "  - {metric: test_acc, test: middle_beats_ends, along: dropout}\n"
        "  - {metric: test_acc, test: higher, arm: 'dropout=0.5 max_norm=3', "
        "than: 'dropout=0.5 max_norm=null'}\n"
        "  - {metric: test_acc, test: equal, margin: 0.01, arm: dropout_impl=vanilla}\n```\n"
    )


def _early_stop_text() -> str:
    legacy = ", ".join(f"`{k}={_show(v)}`" for k, v in NO_EARLY_STOP.items())
    return (
        "The block as a whole has a legacy value (" + legacy + "): at it, a run is keyed as "
        "one made before early stopping existed. Its role is identity: it changes how long a "
        "run trains.\n"
    )


def _study_section(name: str, root: Path) -> str:
    model = _read(root / "model" / f"{name}.yaml")
    own = model.get("model", {}) if isinstance(model.get("model"), Mapping) else {}
    sets = {k: v for k, v in model.items() if k not in ("model", "defaults")}
    data = _data_default(model)
    study = study_class(name)
    lines = [f"## `model={name}`\n", _first_line(study_config(name).__doc__), ""]
    if data or sets:
        changed = [f"`data={data}`"] if data else []
        changed += [f"`{k}={_show(v)}`" for k, v in sets.items()]
        lines.append("Its config also sets " + ", ".join(changed) + ".\n")
    lines.append(_keys_table(study_config(name), "model.", own, skip=("name",)))
    primary = f"Primary metric: `{study.primary}`."
    lines.append(_metrics_section(f"Metrics of `model={name}`", study.metrics, primary))
    return "\n".join(lines)


def _source_section(name: str, root: Path) -> str:
    path = root / "data" / f"{name}.yaml"
    values = _read(path) if path.is_file() else {}
    schema = source_config(name)
    head = f"## `data={name}`\n\n{_first_line(schema.__doc__)}\n"
    return head + "\n" + _keys_table(schema, "data.", values, skip=("name",))


def _keys_table(
    schema: type,
    prefix: str,
    values: Mapping[str, Any],
    skip: tuple[str, ...] = (),
    defaults: bool = True,
) -> str:
    hints = typing.get_type_hints(schema)
    head = ["key", "type", *(["default"] if defaults else []), "role"]
    head += ["stack", "resume", "off", "legacy", "meaning"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in dataclasses.fields(schema):
        if spec.name in skip:
            continue
        declared = declaration(spec)
        cells = [f"`{prefix}{spec.name}`", _type(hints[spec.name], declared)]
        if defaults:
            cells.append(f"`{_show(values[spec.name])}`" if spec.name in values else "")
        cells += [declared.role, _yes(declared.member), _yes(declared.resumable)]
        cells += [_value(declared.off, declared.regularizer)]
        cells += [_value(declared.legacy, declared.has_legacy), _escape(declared.help)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _metrics_section(title: str, metrics: tuple[Metric, ...], lead: str = "") -> str:
    rows = [f"### {title}\n"] + ([lead, ""] if lead else [])
    rows += ["| metric | split | better | range | meaning |", "|---|---|---|---|---|"]
    better = {"min": "lower", "max": "higher", "none": "neither"}
    for metric in metrics:
        span = f"[{_bound(metric.lo, '-∞')}, {_bound(metric.hi, '∞')}]"
        cells = [f"`{metric.name}`", metric.split, better[metric.direction], span]
        rows.append("| " + " | ".join([*cells, _escape(metric.meaning)]) + " |")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------- text
def _type(hint: Any, declared: Key) -> str:
    """The type in words, with its range: ``int ≥ 1``, ``float in [0, 1)``, ``a | b``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return _type(inner, declared) + " or null"
    words = _type_words(hint)
    lo, hi = declared.lo, declared.hi
    if lo is not None and hi is not None:
        opening = "(" if declared.lo_open else "["
        words += f" in {opening}{_show(lo)}, {_show(hi)}{')' if declared.hi_open else ']'}"
    elif lo is not None:
        words += f" {'>' if declared.lo_open else '≥'} {_show(lo)}"
    return words


def _type_words(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_type_words(a) for a in inner) + " or null"
    if origin is Literal:
        return " \\| ".join(map(str, args))
    if origin is tuple:
        return f"list of {_type_words(args[0])}"
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def _value(value: Any, present: bool) -> str:
    return f"`{_show(value)}`" if present else ""


def _show(value: Any) -> str:
    return override_value(value)


def _bound(value: float | None, open_end: str) -> str:
    return open_end if value is None else _show(value)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _first_line(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _read(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _data_default(model: Mapping[str, Any]) -> str | None:
    for entry in _defaults(model):
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                if key.removeprefix("override ").strip("/") == "data":
                    return str(value)
    return None


def _defaults(model: Mapping[str, Any]) -> Iterator[Any]:
    yield from model.get("defaults") or ()


if __name__ == "__main__":
    print(configuration_reference(), end="")
