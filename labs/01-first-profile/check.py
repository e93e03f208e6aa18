"""Lab 1 check: the report.json of the quickstart simulated at 250 Hz.

The report must come from `scenarios/quickstart.yaml` in the simulator at 250 Hz with
nothing else changed; the check re-runs that simulation with the report's seed and
compares the profile's sample count, so an edited or hand-made report fails.
"""

from __future__ import annotations

from labs import REPO_DIR
from labs.common import report, simulate, want_args

USAGE = "out/lab01-250/report.json"


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    got = report(args[0])
    if got.world != "sim" or got.scenario != "quickstart":
        return False, (
            f"this is a {got.world} report of {got.scenario!r}; the job is the quickstart in "
            "the simulator: python -m sim scenarios/quickstart.yaml --set profiler.rate_hz=250 "
            "--out out/lab01-250"
        )
    if got.rate_hz != 250:
        return False, (
            f"this report is at {got.rate_hz:g} Hz; the job asks for 250 Hz: add "
            "--set profiler.rate_hz=250 to the command and pass the new report.json"
        )
    problems = got.conservation_errors()
    if problems:
        return False, f"the funnel does not add up ({problems[0]}): was the file edited?"
    again = simulate(REPO_DIR / "scenarios/quickstart.yaml", ["profiler.rate_hz=250"], got.seed)
    if again.samples_in_profile != got.samples_in_profile:
        return False, (
            f"the quickstart at 250 Hz (seed {got.seed}) gives {again.samples_in_profile} "
            f"samples, this report {got.samples_in_profile}: change only the rate"
        )
    parse = next(f for f in got.functions if f.name == "main.parse")
    return True, (
        f"{got.samples_in_profile} samples of {got.expected_samples:.0f} expected "
        f"(capture {got.capture_ratio:.3f}); main.parse {parse.share:.1%} of the profile "
        f"for {parse.true_share:.1%} of the CPU. {got.signals_dropped_pending} process-timer "
        "expiries found SIGPROF pending and were dropped, and it did not matter: the "
        "per-thread timers carry the profile, the process timer's signals are duplicates."
    )
