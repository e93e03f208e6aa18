"""Helpers shared by the labs' checkers (`labs/NN-slug/check.py`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


class Usage(Exception):
    """Malformed arguments (exit 2)."""


def shown(value: Any) -> str:
    """A number as a person writes it: 0.975, not 0.9750000000000001 (six significant
    digits hold every tolerance the labs state); anything else as repr."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Usage(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise Usage(f"{what} must be a finite number, got {text!r}")
    return value


def want_args(args: list[str], count: int) -> None:
    if len(args) != count:
        raise Usage(f"expected {count} argument(s), got {len(args)}")


def simulate(scenario: str | Path, overrides: list[str], seed: int | None = None) -> Any:
    """Run the simulator in this process; returns the Report."""
    from contract.scenario_file import load_scenario
    from sim.model import simulate as run

    return run(load_scenario(str(scenario), overrides, seed)).report


def playground_reading(
    args: list[str],
    *,
    scenario: str,
    overrides: list[str],
    field: str,
    what: str,
    tolerance: float,
) -> tuple[bool, str]:
    """The check of a lab's playground step: the learner predicts `field` of the report
    of a shipped `scenario` with `overrides` (the change the step makes with the
    playground's controls), then reads it off the page. The playground runs the same
    simulator with the same seed, so its number is the command line's; `tolerance`
    (absolute) allows for a prediction from the model's formula and for rounding."""
    want_args(args, 1)
    answer = number(args[0], what)
    got = getattr(simulate(scenario, overrides), field)
    low, high = got - tolerance, got + tolerance
    command = f"python -m sim {scenario} " + " ".join(f"--set {o}" for o in overrides)
    if low <= answer <= high:
        return True, (
            f"{field} is {got:g} (accepted {low:g} to {high:g}); the playground and "
            f"`{command}` show the same number."
        )
    direction = "more" if answer > high else "less"
    # The page shows a ratio as a percent ("Capture ratio 99.5%"): say so to whoever
    # typed the percent.
    hint = ""
    if what == "RATIO" and low <= answer / 100 <= high:
        ratio = answer / 100
        hint = f" {answer:g} looks like the percent the page shows: give it as a ratio, {ratio:g}."
    return False, (
        f"{answer:g} is {direction} than the run shows: in the playground, open {scenario}, "
        f"set {', '.join(overrides)} and read {field} in the report.{hint}"
    )
