"""Scenario field values as sweeps and their figures compare them.

A value swept with `--vary` is a number, a string, a boolean or a list, as it came out of
YAML. Numbers are equal across int and float (`250` and `250.0` name one point); a
boolean is never a number; everything else is equal only within its type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(a: Any, b: Any) -> bool:
    """Equal as scenario values: numbers by value, anything else within its type."""
    if is_number(a) and is_number(b):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def unique(values: Iterable[Any]) -> list[Any]:
    """First-seen order, by `same_value`; works for unhashable values such as lists."""
    seen: list[Any] = []
    for value in values:
        if not any(same_value(value, s) for s in seen):
            seen.append(value)
    return seen
