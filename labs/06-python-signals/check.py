"""Lab 6 check: the naive Python handler's samples per second of wall time in the
simulated cpython-main-thread scenario (the check re-runs it)."""

from __future__ import annotations

from labs import REPO_DIR
from labs.common import number, simulate, want_args

USAGE = "SAMPLES_PER_SECOND   (naive handler, scenarios/cpython-main-thread.yaml, simulated)"


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    answer = number(args[0], "SAMPLES_PER_SECOND")
    got = simulate(REPO_DIR / "scenarios/cpython-main-thread.yaml", [])
    per_second = got.samples_in_profile / got.wall_seconds
    if abs(answer - per_second) <= 1.0:
        return True, (
            f"{got.samples_in_profile} samples in {got.wall_seconds:g} s = {per_second:.1f}/s: "
            "about one per wake-up of the main thread (every 250 ms), whatever the timer "
            f"rate; {got.signals_merged} signals were merged into those runs"
        )
    if answer >= 50:
        return False, (
            f"{answer:g}/s is about the timer's rate: the signals do arrive, but CPython "
            "runs the Python handler only when the main thread next executes bytecode, and "
            "merges everything that arrived meanwhile. How often does the main thread run?"
        )
    return False, (
        f"not {answer:g}/s: count samples_in_profile / wall_seconds in "
        "`python -m sim scenarios/cpython-main-thread.yaml --json`; the samples all belong "
        "to the main thread"
    )
