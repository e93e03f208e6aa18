"""Overrides: a dotted path and a value (`profiler.rate_hz=250`,
`workload.threads.0.count=4`) set in a scenario's raw mapping before it is validated.

`apply_override` sets one path, creating mappings on the way; `with_overrides` applies
several to a validated scenario and validates the result again, so an override is checked
exactly like a value written in a file (`contract.scenario.validate_scenario`, the one
door). The `--set` text is parsed into a path and a value by `contract.scenario_file`.
Standard library only, like `contract.scenario`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract.scenario import (
    ProfileReader,
    Scenario,
    ScenarioError,
    scenario_to_dict,
    validate_scenario,
)


def apply_override(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set one dotted path in the raw mapping, creating mappings on the way."""
    node: Any = raw
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ScenarioError(
                    f"--set {'.'.join(keys)}: {where}: list index out of range "
                    f"(the list has {len(node)} items)"
                )
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if key == "machine" and isinstance(node.get(key), str):
                    raise ScenarioError(
                        f"--set {'.'.join(keys)}: machine is the profile name "
                        f"{node[key]!r}; set machine=NAME or give the whole machine"
                    )
                node = node.setdefault(key, {})
        else:
            raise ScenarioError(f"--set {'.'.join(keys)}: {where} is not a mapping or a list")


def with_overrides(
    scenario: Scenario,
    overrides: Mapping[str, Any],
    read_profile: ProfileReader | None = None,
) -> Scenario:
    """A copy of `scenario` with dotted-path overrides applied, validated again.

    An override `machine=NAME` names a machine profile, a YAML file: `read_profile`
    (`contract.scenario_file.read_yaml`) reads it, as in `validate_scenario`."""
    raw = scenario_to_dict(scenario)
    for dotted, value in overrides.items():
        apply_override(raw, dotted.split("."), value)
    return validate_scenario(
        raw, f"{scenario.name} with {dict(overrides)}", read_profile=read_profile
    )
