"""Scenario files: YAML text in, a validated `Scenario` out (the YAML edge of the contract).

`load_scenario` reads a file, applies `--set` overrides and a seed to the raw mapping, and
validates it with `contract.scenario.validate_scenario`, handing it `read_yaml` to read a
machine profile named by `machine: NAME`. Every problem (a missing file, a YAML syntax
error, a wrong type, a timer the runtime cannot use) is a `ScenarioError` with one line
naming the file, the line of the offending key when the file has it (PyYAML's node
marks; not for a value that `--set` or the seed put there), the field and what is
allowed. `parse_override` reads the value of `--set path=value` as YAML, so
`--set profiler.timer=null` and `--set x=[1, 2]` mean what they would in the file.

A scenario is also found by the name of a shipped one (`go117-many-threads`, `.yaml`
optional; `scenarios/NAME.yaml` too, from any directory): `find_scenario` looks in
`shipped_scenarios_dir()`, the repository's `scenarios/` in a checkout or an editable
install, the copy shipped inside this package (its `scenarios` folder, package data) in an
installed wheel. A path that exists always wins over a shipped name.

This module and the other format edges are the contract's only users of PyYAML; the
simulator's core and the browser build take plain mappings through `contract.scenario`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from contract.fields import close_match
from contract.overrides import apply_override
from contract.scenario import Scenario, ScenarioError, validate_scenario

__all__ = [
    "find_scenario",
    "load_scenario",
    "parse_override",
    "read_yaml",
    "shipped_scenarios",
    "shipped_scenarios_dir",
]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None


def read_yaml(path: Path) -> Any:
    """The YAML document in `path`, or ScenarioError naming the file and the problem."""
    return _parse_yaml(_read_text(path), path)


def _parse_yaml(text: str, path: Path) -> Any:
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


def _field_lines(text: str) -> dict[tuple[str, ...], int]:
    """Each field's dotted path (as strings) -> the 1-based line of its key or list item."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, loc: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*loc, str(key.value))
                lines.setdefault(here, key.start_mark.line + 1)
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                here = (*loc, str(index))
                lines[here] = item.start_mark.line + 1
                walk(item, here)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # read once already; a line is a courtesy, never a new error
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _line_finder(text: str, overridden: list[tuple[str, ...]]):
    """`line_of` for `validate_scenario`: the line of a field, or of its nearest ancestor
    written in the file (a missing key's mapping); None for a value set on the command line."""

    def line_of(loc: tuple[Any, ...]) -> int | None:
        path = tuple(str(part) for part in loc)
        if any(path[: len(keys)] == keys for keys in overridden):
            return None
        lines = _field_lines(text)
        for end in range(len(path), 0, -1):
            if path[:end] in lines:
                return lines[path[:end]]
        return None

    return line_of


def shipped_scenarios_dir() -> Path:
    """The shipped scenario library: package data when installed, `scenarios/` in a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "scenarios"
    return packaged if packaged.is_dir() else here.parent / "scenarios"


def shipped_scenarios() -> dict[str, Path]:
    """Name -> file of every shipped scenario, sorted by name."""
    folder = shipped_scenarios_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def find_scenario(path: str | os.PathLike[str]) -> Path:
    """The file a scenario argument names: a path that exists, or a shipped scenario's name.

    A bare name (`go117-many-threads`, `quickstart.yaml`) or `scenarios/NAME.yaml` that is
    not a file here is looked up among the shipped scenarios; an unknown name is a
    ScenarioError that lists them.
    """
    path = Path(path)
    if path.exists():
        return path
    bare = len(path.parts) == 1 or (len(path.parts) == 2 and path.parts[0] == "scenarios")
    if not bare or path.suffix not in ("", ".yaml"):
        return path  # read_yaml says "no such file"
    name = path.name.removesuffix(".yaml")
    shipped = shipped_scenarios()
    if name in shipped:
        return shipped[name]
    guess = close_match(name, tuple(shipped))
    hint = f"; did you mean {guess}?" if guess else ""
    raise ScenarioError(
        f"{path}: no such file, and no shipped scenario of that name{hint} "
        f"(shipped: {', '.join(shipped) or 'none found'})"
    )


def load_scenario(
    path: str | os.PathLike[str], overrides: Iterable[str] = (), seed: int | None = None
) -> Scenario:
    """Read, override and validate a scenario file (or a shipped scenario, by name)."""
    path = find_scenario(path)
    text = _read_text(path)
    raw = _parse_yaml(text, path)
    overridden: list[tuple[str, ...]] = []
    if isinstance(raw, dict):
        for override in overrides:
            keys, value = parse_override(override)
            apply_override(raw, keys, value)
            overridden.append(tuple(keys))
        if seed is not None:
            raw["seed"] = seed
            overridden.append(("seed",))
    return validate_scenario(
        raw, str(path), path, read_profile=read_yaml, line_of=_line_finder(text, overridden)
    )
