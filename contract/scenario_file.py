"""Scenario files: YAML text in, a validated `Scenario` out (the YAML edge of the contract).

`load_scenario` reads a file, applies `--set` overrides and a seed to the raw mapping, and
validates it with `contract.scenario.validate_scenario`, handing it `read_yaml` to read a
machine profile named by `machine: NAME`. Every problem (a missing file, a YAML syntax
error, a wrong type, a timer the runtime cannot use) is a `ScenarioError` with one line
naming the file, the field and what is allowed. `parse_override` reads the value of
`--set path=value` as YAML, so `--set profiler.timer=null` and `--set x=[1, 2]` mean
what they would in the file.

This module and the other format edges are the contract's only users of PyYAML; the
simulator's core and the browser build take plain mappings through `contract.scenario`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from contract.scenario import Scenario, ScenarioError, apply_override, validate_scenario

__all__ = ["load_scenario", "parse_override", "read_yaml"]


def read_yaml(path: Path) -> Any:
    """The YAML document in `path`, or ScenarioError naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}: YAML syntax error at {where}{problem}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.0.c=value` -> (["a", "b", "0", "c"], parsed value)."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected dotted.path=value")
    path, _, value = text.partition("=")
    keys = path.strip().split(".")
    if not path.strip() or any(not k for k in keys):
        raise ScenarioError(f"--set {text!r}: empty field name in the dotted path")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return keys, parsed


def load_scenario(
    path: str | os.PathLike[str], overrides: Iterable[str] = (), seed: int | None = None
) -> Scenario:
    """Read, override and validate a scenario file."""
    path = Path(path)
    raw = read_yaml(path)
    if isinstance(raw, dict):
        for text in overrides:
            keys, value = parse_override(text)
            apply_override(raw, keys, value)
        if seed is not None:
            raw["seed"] = seed
    return validate_scenario(raw, str(path), path, read_profile=read_yaml)
