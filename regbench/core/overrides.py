"""Reading override strings as users type them (``+experiment=foo``, ``~dropout``,
``dropout=0,0.5``), where regbench needs their key before Hydra parses them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def override_key(item: str) -> str:
    """The key an override sets, without Hydra's ``+``/``++``/``~`` prefixes."""
    return item.split("=", 1)[0].lstrip("+~")


def override_value(value: Any) -> str:
    """A config value as an override (and the configuration reference) writes it: null, true,
    [a,b] (Hydra's grammar for a list)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    return str(value)


def override_pairs(overrides: Sequence[str]) -> list[tuple[str, str]]:
    """The ``key=value`` overrides as (key, value), in order (a bare ``~key`` has none)."""
    return [(item.split("=", 1)[0], item.split("=", 1)[1]) for item in overrides if "=" in item]


# Unicode categories that a terminal does not show as themselves: control characters (\r, \n,
# ESC, ...), invisible format characters (bidirectional overrides) and line separators. In a
# value they make the printed command line (a sweep's resume line, a run's overrides) differ
# from what ran.
UNSHOWN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def refuse_unshown_characters(overrides: Sequence[str]) -> None:
    """One line naming the key of the first override holding such a character (escaped, so
    the message itself shows it), before anything is composed."""
    from regbench.core.config import ConfigError

    for item in overrides:
        bad = next((c for c in item if _unshown(c)), None)
        if bad is not None:
            key = override_key(item)
            where = "key" if bad in key else "value of"
            raise ConfigError(
                f"the {where} {escaped(key)} holds the control character {bad!a} "
                f"({escaped(item)}); give printable text: a terminal would show something else "
                f"than what runs"
            )


def escaped(text: str) -> str:
    """``text`` with each character a terminal would not show written as its escape (\\r)."""
    return "".join(ascii(c)[1:-1] if _unshown(c) else c for c in text)


def _unshown(character: str) -> bool:
    import unicodedata

    return unicodedata.category(character) in UNSHOWN_CATEGORIES
